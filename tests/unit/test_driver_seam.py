"""The emulated driver's side of the MANO seam (pure logic, no emulation): the testbed's
own exceptions cross into ``mano`` as ``MANOError`` classes, so mano's fallbacks run."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mano.errors import InfrastructureError, NotFoundError
from mano.nfvi import NfviDriver
from testbed.errors import ControllerError
from testbed.nfvi.emulated.driver import EmulatedDriver
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


class RefusingController:
    """A northbound client whose controller refuses every graph (as a real one does for an
    unknown hop)."""

    def put_graph(self, graph):
        raise ControllerError(f"graph {graph['name']}: no path from h1 to nowhere")

    def delete_graph(self, name):
        raise ControllerError("controller not reachable")


def _driver() -> EmulatedDriver:
    emu = SimpleNamespace(topology=load_topology(ROOT / "topologies" / "fat_tree4.yaml"),
                          ctl=RefusingController(), hosts={}, attachments={})
    return EmulatedDriver(emu, spares=0)   # no hosts here to keep spare


def test_controller_errors_become_infrastructure_errors():
    """A refused graph raises InfrastructureError naming the call and the reason."""
    drv = _driver()
    with pytest.raises(InfrastructureError, match="put_graph: graph web.fg1: no path"):
        drv.put_graph({"name": "web.fg1"})
    with pytest.raises(InfrastructureError, match="delete_graph: controller not reachable"):
        drv.delete_graph("web.fg1")


def test_unknown_instances_are_not_found_and_bad_requests_are_infrastructure_errors():
    """An instance the driver does not know is NotFoundError; an unknown compute node or
    program is an InfrastructureError that says what would be valid."""
    drv = _driver()
    with pytest.raises(NotFoundError, match="no instance 'x'"):
        drv.restart_instance("x")
    with pytest.raises(InfrastructureError, match="unknown compute node 'n99'"):
        drv.create_instance("x", "n99", None, SimpleNamespace(program="forwarder"))
    with pytest.raises(InfrastructureError, match="known: forwarder, firewall, nat, lb"):
        drv.create_instance("x", "n1", None, SimpleNamespace(program="vpp"))


def test_the_driver_declares_the_whole_protocol():
    """Every call of the NfviDriver Protocol exists on the emulated driver."""
    assert isinstance(_driver(), NfviDriver)


class ProcessEmulation(SimpleNamespace):
    """Just enough of an Emulation for create_instance: each VNF program is a real process
    (a stand-in that writes its stats file and sleeps)."""

    def add_host(self, name, switch, **_limits):
        self.attachments[name] = SimpleNamespace(ip="10.1.0.1", mac="02:00:00:00:00:01")

    def remove_host(self, name):
        self.attachments.pop(name, None)

    def host_iface(self, name):
        return f"{name}-eth0"

    def popen(self, host, argv, **_kw):
        stats = argv[argv.index("--stats") + 1]
        code = "import sys, time; open(sys.argv[1], 'w').write('{}'); time.sleep(60)"
        proc = subprocess.Popen([sys.executable, "-c", code, stats])
        self.procs.append(proc)
        return proc

    def stop_process(self, proc, timeout=5.0):
        proc.kill()
        return proc.wait(timeout)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux >= 5.3)")
def test_a_vnf_programs_death_is_pushed_at_once_not_at_the_next_rescan(tmp_path):
    """With a 30 s rescan interval, a killed VNF program is still reported as instance_down
    within half a second (its pidfd wakes the watcher), once."""
    emu = ProcessEmulation(topology=load_topology(ROOT / "topologies" / "fat_tree4.yaml"),
                           ctl=RefusingController(), hosts={}, attachments={},
                           run_dir=tmp_path, procs=[])
    drv = EmulatedDriver(emu, watch_interval=30.0, spares=0)
    got: list = []
    drv.subscribe(got.append)
    try:
        drv.create_instance("fwd_1", "n1", SimpleNamespace(vcpu=None, memory_mb=None),
                            SimpleNamespace(program="forwarder", params={}))
        t = time.monotonic()
        drv.kill_instance("fwd_1")
        while not got and time.monotonic() - t < 5:
            time.sleep(0.01)
        assert [(e.kind, e.subject) for e in got] == [("instance_down", "fwd_1")]
        assert got[0].time - t < 0.5
        drv.restart_instance("fwd_1")           # the new process is watched too
        t = time.monotonic()
        drv.kill_instance("fwd_1")
        while len(got) < 2 and time.monotonic() - t < 5:
            time.sleep(0.01)
        assert len(got) == 2 and got[1].time - t < 0.5
    finally:
        drv.close()
        for p in emu.procs:
            p.kill()
            p.wait()


def test_input_waiting_with_a_standing_counter_is_a_hang_and_a_moving_counter_ends_it(
        tmp_path, monkeypatch):
    """An instance whose socket has input waiting while its forwarded count stands still
    for hang_s is reported hung (once) and not alive; an idle one (nothing waiting) and an
    overloaded one (count moving) are not; a moving count ends the hang."""
    from testbed.nfvi.emulated import driver as drvmod

    queued = {"bytes": 0}
    monkeypatch.setattr(drvmod, "_queued_input", lambda pid: queued["bytes"])
    stats = tmp_path / "vnf-fwd_1.json"
    drv = EmulatedDriver(SimpleNamespace(topology=load_topology(
        ROOT / "topologies" / "fat_tree4.yaml")), hang_s=0.4, spares=0)
    proc = SimpleNamespace(pid=1, poll=lambda: None)
    inst = drvmod._Instance(SimpleNamespace(instance_id="fwd_1"), None, None, proc, stats)

    def tick(t: float, packets: int) -> bool:
        stats.write_text(f'{{"packets": {packets}}}')
        return drv._hang_check(inst, t)

    assert not any(tick(t, 5) for t in (0.0, 0.1, 0.2, 0.6, 1.0))     # idle: nothing waits
    queued["bytes"] = 4096
    assert not any(tick(t, 5 + i) for i, t in enumerate((1.1, 1.2, 1.6, 2.0)))  # busy
    assert [tick(t, 9) for t in (2.1, 2.2, 2.5, 2.65, 2.7)] == [False, False, False, True, False]
    assert inst.hung
    assert not tick(2.8, 10) and not inst.hung
    drv.close()
