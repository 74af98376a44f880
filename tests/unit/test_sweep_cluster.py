"""``testbed sweep --nfvi simulated`` on dask.distributed: on a scheduler and two workers
started by hand (real processes on this machine) it gives the local cluster's aggregate."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIO = str(ROOT / "scenarios/chaos_soak.py")
ARGS = ["--nfvi", "simulated", "--grid", "mtbf=6,12", "--seeds", "2", "--duration", "10"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"dask scheduler exited: {proc.stderr.read()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise AssertionError("dask scheduler did not listen in time")


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the processes this test started, by their recorded pids: the workers first,
    each waited for, and the scheduler last (a worker told to stop while its scheduler is
    going away waits ~20 s trying to reach it)."""
    for p in reversed(procs):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def _sweep(results: Path, *extra: str, tmpdir: Path | None = None
           ) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run([str(BIN / "testbed"), "sweep", SCENARIO, *ARGS, "--results",
                           str(results), *extra], capture_output=True, text=True,
                          timeout=600, check=False, env=env)


@pytest.fixture
def cluster(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes (one thread each)."""
    if not (BIN / "dask").exists():
        pytest.skip("the dask command is not installed in this environment")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "TMPDIR": str(tmp_path)}   # dask's lock files stay in tmp_path
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            cwd=tmp_path, env=env))
        _wait_port(port, procs[0])
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--name", f"w{i}", "--local-directory",
                 str(tmp_path / f"w{i}")], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=tmp_path, env=env))
        yield address
    finally:
        _stop(procs)


def test_sweep_on_a_scheduler_and_two_workers_equals_the_local_one(cluster, tmp_path):
    """The same grid and seeds of chaos_soak (faults drawn from the seed), swept on a
    scheduler with two worker processes and on the default local cluster, give byte-identical
    sweep.csv, sweep.md and the narrow table, and one plot per headline measure; the local
    cluster leaves nothing in the temporary folder."""
    remote = _sweep(tmp_path / "remote", "--scheduler", cluster, tmpdir=tmp_path)
    assert remote.returncode == 0, remote.stderr[-3000:]
    (tmp_path / "tmp").mkdir()
    local = _sweep(tmp_path / "local", "--workers", "2", tmpdir=tmp_path / "tmp")
    assert local.returncode == 0, local.stderr[-3000:]
    # the local cluster's scratch space (dask's lock files included) is gone with it
    assert list((tmp_path / "tmp").iterdir()) == []
    a = tmp_path / "remote/chaos_soak/sweep"
    b = tmp_path / "local/chaos_soak/sweep"
    for name in ("sweep.csv", "sweep.md", "brief.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # every run went through the cluster: 2 grid points x 2 seeds, each its own folder
    runs = [p for p in (tmp_path / "remote/chaos_soak").iterdir() if p.name != "sweep"]
    assert len(runs) == 4
    brief = (a / "brief.md").read_text().splitlines()
    assert len(brief) == 4 and max(map(len, brief)) <= 100
    assert (a / "outage_ms_median-vs-mtbf.png").stat().st_size > 0
    # the two grid points differ: the aggregate is not one run copied
    rows = (a / "sweep.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[3:] != rows[2].split(",")[3:]


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path):
    """--scheduler naming an address where nothing listens ends with exit code 2 and a
    message naming the address and how to start a scheduler."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = subprocess.run([str(BIN / "testbed"), "sweep", SCENARIO, *ARGS, "--results",
                          str(tmp_path), "--scheduler", address], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert address in out.stderr and "dask scheduler" in out.stderr
