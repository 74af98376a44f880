"""``testbed up``: a running testbed that the CLI acts on while the emulation is up.

One process owns the emulation (Mininet, OVS, controller) and serves the NFVI over loopback
(``testbed.infra_server``). It starts the NFVO (``python -m mano.nbi.server``, serving the
SOL005 NBI) as a child process of its own and restarts it if it dies, on the same port, so
the NFVO can be killed mid-operation and come back to reconcile from its database. The
state directory holds::

    infra.json   {"pid", "start", "url", "run_id", "topology"}   (while up)
    nfvo.json    {"pid", "url"}             (written by the NFVO; url is the NBI's)
    nfvo.db      the NFVO's SQLite database (kept after `testbed down`)
    nbi.db       the NBI's records: NSD/VNF package infos, NS names, tenants, clients (kept)
    clients/NAME.secret   client secrets (0600; admin's made on the first start)
    nfvo.log, daemon.log

``testbed down`` ends the daemon by its recorded pid; everything is torn down as on any
exit of an ``Emulation``.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed.emulator import Emulation, registry
from testbed.errors import TestbedError
from testbed.statedir import DEFAULT_STATE

log = logging.getLogger(__name__)
__all__ = ["DEFAULT_STATE", "nfvo_url", "run_daemon", "stop_daemon"]


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def daemon_info(state: Path) -> dict | None:
    """The running daemon's record, or None when no daemon of this state dir is alive."""
    info = read_json(state / "infra.json")
    if info and registry.proc_start_time(info["pid"]) == info.get("start"):
        return info
    return None


def nfvo_url(state: Path, timeout: float = 30.0) -> str:
    """The NFVO's API address, waiting for it (it may be restarting)."""
    if daemon_info(state) is None:
        raise TestbedError(f"no testbed is running with state directory {state}; start one "
                           f"with `testbed up [TOPOLOGY] --state {state}`")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_json(state / "nfvo.json")
        if info and registry.proc_start_time(info["pid"]) is not None:
            return info["url"]
        time.sleep(0.1)
    raise TestbedError(f"the NFVO of {state} did not come up within {timeout:.0f} s; see "
                       f"{state / 'nfvo.log'}")


class NfvoSupervisor:
    """Runs the NFVO process and restarts it when it dies."""

    def __init__(self, state: Path, infra_url: str, emu: Emulation, nbi_port: int = 0,
                 tls: tuple[str, str] | None = None):
        self.state, self.infra_url, self.emu = state, infra_url, emu
        self.nbi_port = nbi_port
        self.tls = tls          # (certificate file, key file): the NBI serves HTTPS
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        (self.state / "nfvo.json").unlink(missing_ok=True)
        with open(self.state / "nfvo.log", "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mano.nbi.server", "--state", str(self.state),
                 "--infra", self.infra_url, "--port", str(self.nbi_port),
                 *(["--tls-cert", self.tls[0], "--tls-key", self.tls[1]] if self.tls else [])],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.emu._record.add_process(self.proc.pid, "nfvo")

    def wait_url(self, timeout: float = 60.0) -> str:
        """The NBI's URL once the NFVO listens; its port is then kept for restarts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = read_json(self.state / "nfvo.json")
            if info and self.proc is not None and info.get("pid") == self.proc.pid:
                self.nbi_port = int(info["url"].rsplit(":", 1)[1])
                return info["url"]
            if self.proc is None or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise TestbedError(f"the NFVO did not come up; see {self.state / 'nfvo.log'}")

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            log.warning("NFVO exited (%s); restarting it", self.proc.returncode)
            self.emu._record.forget_process(self.proc.pid)
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        (self.state / "nfvo.json").unlink(missing_ok=True)


def run_daemon(topology, state: Path, *, nfvo: bool = True, nbi_port: int = 0,
               tls: tuple[str, str] | None = None) -> int:
    """Serve ``topology`` until SIGTERM; ``tls`` (certificate file, key file) makes the NBI
    serve HTTPS."""
    state.mkdir(parents=True, exist_ok=True)
    if daemon_info(state) is not None:
        raise TestbedError(f"a testbed is already running with state directory {state}")
    try:
        return _serve(topology, state, nfvo, nbi_port, tls)
    except SystemExit as exc:
        if exc.code in (128 + signal.SIGTERM, 128 + signal.SIGHUP):
            print("testbed down: everything removed", flush=True)
            return 0  # `testbed down` (SIGTERM) is the normal way to stop
        raise


def _serve(topology, state: Path, nfvo: bool, nbi_port: int, tls) -> int:
    from testbed.infra_server import InfraServer
    from testbed.nfvi.emulated import EmulatedDriver

    with Emulation(topology, run_dir=state / "run") as emu:
        driver = EmulatedDriver(emu)
        server = InfraServer(driver).start()
        url = f"http://127.0.0.1:{server.port}"
        sup = NfvoSupervisor(state, url, emu, nbi_port, tls) if nfvo else None
        try:
            pid = os.getpid()
            (state / "infra.json").write_text(json.dumps(
                {"pid": pid, "start": registry.proc_start_time(pid), "url": url,
                 "run_id": emu.run_id, "topology": topology.name}))
            if sup is not None:
                sup.start()
            print(f"testbed up: {topology.name}, NFVI at {url}, state {state}", flush=True)
            if sup is not None:
                print(f"NFVO northbound interface (ETSI SOL005): {sup.wait_url()} "
                      f"(OpenAPI at /docs)", flush=True)
                print(f"client 'admin': its secret is in {state / 'clients' / 'admin.secret'}; "
                      f"`testbed token --state {state}` prints a bearer token", flush=True)
            while True:
                time.sleep(0.2)
                if sup is not None:
                    sup.check()
        finally:
            if sup is not None:
                sup.stop()
            server.stop()
            driver.close()
            (state / "infra.json").unlink(missing_ok=True)
    return 0


def stop_daemon(state: Path, timeout: float = 120.0) -> bool:
    info = daemon_info(state)
    if info is None:
        return False
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while registry.proc_start_time(info["pid"]) == info["start"]:
        if time.monotonic() > deadline:
            raise TestbedError(f"the testbed daemon (pid {info['pid']}) did not stop within "
                               f"{timeout:.0f} s")
        time.sleep(0.1)
    return True
