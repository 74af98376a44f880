"""docs/tutorial.md cannot rot: its commands (fenced ``bash tutorial`` blocks; ``bash
tutorial-root`` for the emulated NFVI) are extracted and run as written."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs/tutorial.md"
FENCE = re.compile(r"^```(\S+)[ \t]+(tutorial(?:-root)?)[ \t]*\n(.*?)^```[ \t]*$",
                   re.MULTILINE | re.DOTALL)


def commands(kind: str) -> list[str]:
    """The commands of the tutorial's blocks marked ``kind``, in order (a line ending with
    a backslash continues on the next; comments and blank lines are left out)."""
    out = []
    for _lang, mark, body in FENCE.findall(TUTORIAL.read_text()):
        if mark != kind:
            continue
        body = re.sub(r"\\\n", " ", body)
        out += [ln.strip() for ln in body.splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    return out


def _workdir(tmp: Path) -> Path:
    """A folder laid out like the repository's top (scenarios, topologies, descriptors
    linked), so the tutorial's relative paths work and its results stay in ``tmp``."""
    for name in ("scenarios", "topologies", "descriptors"):
        (tmp / name).symlink_to(ROOT / name)
    return tmp


BUSY = "another testbed run is active"    # the machine holds one emulation at a time


def _run_all(cmds: list[str], cwd: Path, timeout: float, wait_busy=None) -> None:
    """Run each command with bash in ``cwd``; each must exit 0. ``wait_busy`` (emulated
    commands): called, and the command run again (up to 60 times), when it was refused
    because another user's emulation held the machine."""
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for cmd in cmds:
        for _attempt in range(60):
            out = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True,
                                 text=True, timeout=timeout, check=False)
            if out.returncode == 0 or wait_busy is None or BUSY not in out.stderr:
                break
            wait_busy()
        assert out.returncode == 0, f"{cmd}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


def test_the_tutorial_marks_commands_for_both_nfvis():
    """The tutorial has simulated commands (a run, a report and a sweep over five seeds of
    two healing policies) and emulated ones; the extraction finds them."""
    sim, emu = commands("tutorial"), commands("tutorial-root")
    assert any(c.startswith("testbed run ") for c in sim)
    assert any("testbed report" in c for c in sim)
    assert any("testbed sweep" in c and "--seeds 5" in c and "healer=liveness,datapath" in c
               for c in sim)
    assert all("--nfvi simulated" in c for c in sim if c.startswith(("testbed run",
                                                                     "testbed sweep")))
    assert emu and all("--nfvi simulated" not in c for c in emu)


def test_the_simulated_half_of_the_tutorial_runs(tmp_path):
    """Every simulated command of the tutorial exits 0 (no root needed), and the files the
    text points to exist: the run's plots, the comparison, the sweep's table and plot."""
    wd = _workdir(tmp_path)
    _run_all(commands("tutorial"), wd, timeout=600)
    res = wd / "results"
    assert list(res.glob("chain_heal_link/*/timeline.png"))
    assert (res / "compare/compare.png").exists()
    sweep = res / "compute_node_failure/sweep"
    assert (sweep / "brief.md").exists() and (sweep / "sweep.csv").exists()
    assert (sweep / "outage_ms_median-vs-healer.png").exists()
    rows = (sweep / "sweep.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",5," in r for r in rows[1:])   # five runs per policy


def _emulation_missing() -> str | None:
    if os.geteuid() != 0:
        return "the emulated half needs root (Mininet and Open vSwitch)"
    if shutil.which("ovs-vsctl") is None or shutil.which("mnexec") is None:
        return "the emulated half needs Open vSwitch and Mininet (scripts/install.sh)"
    try:
        import mininet.node  # noqa: F401
    except ImportError:
        return "the emulated half needs the mininet Python module"
    if subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True,
                      check=False).returncode != 0:
        return "the emulated half needs a running Open vSwitch"
    return None


@pytest.mark.integration
@pytest.mark.skipif(_emulation_missing() is not None, reason=str(_emulation_missing()))
def test_the_emulated_half_of_the_tutorial_runs(tmp_path):
    """Every emulated command of the tutorial exits 0 on a machine with root, Open vSwitch
    and Mininet, and the sweep writes its table and plots."""
    from testbed.emulator import registry  # only where Mininet is (see the skip)

    def wait_for_others():
        deadline = time.monotonic() + 600    # one emulation per machine: wait for others'
        while registry.live_runs() and time.monotonic() < deadline:
            time.sleep(2)
    wait_for_others()
    wd = _workdir(tmp_path)
    _run_all(commands("tutorial-root"), wd, timeout=1200, wait_busy=wait_for_others)
    sweep = wd / "results/compute_node_failure/sweep"
    assert (sweep / "brief.md").exists()
    assert (sweep / "outage_ms_median-vs-healer.png").exists()
