"""Spare hosts (``Emulation.keep_spares``, ``testbed.emulator.spares``): an instance is made
from a spare with its pre-started VNF program, the pool refills, and spares are removed at
close, at the end of the run (exit, exception, SIGTERM) and by `testbed clean` after a
SIGKILL; a spare taken by an add_host that fails goes with it."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import leftovers

from mano.nfvi import Flavour, Image
from testbed.emulator import Emulation, registry
from testbed.errors import EmulationError
from testbed.nfvi.emulated import EmulatedDriver
from testbed.topology.builders import fat_tree, linear


def _alive(pids) -> list[int]:
    return [p for p in pids if registry.proc_start_time(p) is not None]


def _until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(0.05)


def _recorded(emu) -> set[int]:
    return {p.pid for p in registry.RunRecord.load(emu._record.path).processes}


def test_instance_is_made_from_a_spare_and_the_pool_refills_and_closes():
    """A VNF instance takes a spare: its shell and pre-started program become the
    instance's, in its cgroup with the flavour's quota, and the program runs under the
    instance's name; the
    pool refills to its size; the driver's close ends every spare, unrecorded."""
    with Emulation(fat_tree(4)) as emu:
        drv = EmulatedDriver(emu, spares=2)
        try:
            _until(lambda: emu.spares.ready == 2)
            spare_pids = set(emu.spares.pids())
            assert len(spare_pids) == 4 and spare_pids <= _recorded(emu)
            info = drv.create_instance("fwd_1", min(emu.topology.computes),
                                       Flavour(0.5, 128), Image("forwarder"))
            host = emu.hosts["fwd_1"]
            proc = drv._instances["fwd_1"].proc
            assert {host.pid, proc.pid} <= spare_pids
            cg = emu.cgroups.get("fwd_1")
            assert {host.pid, proc.pid} <= set(cg.pids())
            if cg.version == 1:     # renamed for the instance, limited by its flavour
                assert {d.name for d in cg.dirs.values()} == {"fwd_1"}
                assert (cg.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
            else:
                assert (cg.dirs["unified"] / "cpu.max").read_text().split()[0] == "50000"
            stats = json.loads((emu.run_dir / "vnf-fwd_1.json").read_text())
            assert stats["name"] == "fwd_1" and stats["iface"] == emu.host_iface("fwd_1")
            assert info.alive and drv.instance_metrics("fwd_1").alive
            _until(lambda: emu.spares.ready == 2)
            fresh = set(emu.spares.pids())
            assert len(fresh - spare_pids) == 2 and fresh <= _recorded(emu)
            drv.delete_instance("fwd_1")
            assert _alive([host.pid, proc.pid]) == []
        finally:
            drv.close()
        assert emu.spares.ready == 0
        _until(lambda: _alive(fresh | spare_pids) == [])
        assert not (fresh | spare_pids) & _recorded(emu)
    assert leftovers() == []


def test_a_spare_taken_by_a_failing_add_host_goes_with_it():
    """add_host is all or nothing with a spare too: when it fails after taking one, the
    spare's shell and program end and nothing of the host stays."""
    with Emulation(linear(2)) as emu:
        emu.keep_spares(1, prestart=lambda h: h.popen(["sleep", "600"],
                                                     stdin=subprocess.PIPE),
                        what="sleeper")
        _until(lambda: emu.spares.ready == 1)
        pids = emu.spares.pids()

        def boom(_h):
            raise EmulationError("refused by the test")
        with pytest.raises(EmulationError, match="refused by the test"):
            emu.add_host("v1", "s1", cpu=0.2, on_link=boom)
        assert _alive(pids) == [] and "v1" not in emu.hosts and "v1" not in emu.attachments
        assert not set(pids) & _recorded(emu)
        assert emu.claim_prestarted("v1") is None
    assert leftovers() == []


SCRIPT = textwrap.dedent("""
    import json, sys, time
    from testbed.emulator import Emulation
    from testbed.nfvi.emulated import EmulatedDriver
    from testbed.topology.builders import linear
    mode = sys.argv[1]
    with Emulation(linear(2)) as emu:
        drv = EmulatedDriver(emu, spares=2)
        while emu.spares.ready < 2:
            time.sleep(0.05)
        print(json.dumps({"pids": emu.spares.pids(), "run": emu.run_id}), flush=True)
        if mode == "exit":
            sys.exit(0)
        if mode == "raise":
            raise RuntimeError("boom")
        time.sleep(600)
""")


def _run_until_spares(mode: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"script failed: {proc.stderr.read()}")
    info = json.loads(line)
    assert len(info["pids"]) == 4      # two shells, two pre-started programs
    return proc, info


@pytest.mark.parametrize("mode,sig", [("exit", None), ("raise", None),
                                      ("wait", signal.SIGTERM)])
def test_spares_are_removed_when_the_run_ends_or_crashes(mode, sig):
    """A run ending normally, by an exception or by SIGTERM (the driver never closed)
    ends its spares' shells and programs and leaves nothing."""
    proc, info = _run_until_spares(mode)
    if sig is not None:
        proc.send_signal(sig)
    proc.wait(60)
    assert _alive(info["pids"]) == []
    assert leftovers() == []


def test_spares_of_a_sigkilled_run_are_ended_by_testbed_clean():
    """After a SIGKILL the spares' processes are in the run record, and `testbed clean`
    ends them by their recorded pids."""
    proc, info = _run_until_spares("wait")
    proc.kill()
    proc.wait(10)
    rec = registry.RunRecord.load(registry.REGISTRY_DIR / f"{info['run']}.json")
    assert set(info["pids"]) <= {p.pid for p in rec.processes}
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "clean"], check=False,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    _until(lambda: _alive(info["pids"]) == [], timeout=10)
    assert leftovers() == []
    assert not Path(rec.path).exists()
