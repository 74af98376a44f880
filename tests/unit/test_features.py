"""The emulator's datapath choice by name."""
import os

import pytest

from testbed.emulator import features


def test_open_vswitch_datapath_names_are_accepted_and_bad_ones_refused():
    """'netdev' is the userspace datapath; an unknown name is refused naming the valid ones."""
    assert features.choose_datapath("netdev") == "user"
    assert features.choose_datapath("user") == "user"
    with pytest.raises(ValueError, match=r"auto, kernel \(system\) or user \(netdev\)"):
        features.choose_datapath("dpdk")


def _serve_unix(path):
    import socket
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(16)
    return srv


def test_a_stopped_open_vswitch_is_named_with_how_to_start_it(tmp_path, monkeypatch):
    """No database socket: ovsdb-server is named; a database but no live ovs-vswitchd (a
    pid file of a process that exited): the switch daemon is named. Both say how to start
    OVS. The lookup follows OVS_RUNDIR, as OVS's own tools do."""
    import subprocess

    from testbed.errors import KernelFeatureMissing

    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))
    with pytest.raises(KernelFeatureMissing, match=r"database server does not answer on "
                       + str(tmp_path) + r"/db.sock .*ovs-ctl start"):
        features.require_ovs()
    srv = _serve_unix(tmp_path / "db.sock")
    try:
        with pytest.raises(KernelFeatureMissing, match=r"ovs-vswitchd is not running.*"
                           r"ovs-vswitchd.pid"):
            features.require_ovs()
        gone = subprocess.Popen(["true"])
        gone.wait()
        (tmp_path / "ovs-vswitchd.pid").write_text(f"{gone.pid}\n")
        with pytest.raises(KernelFeatureMissing, match=r"ovs-vswitchd is not running"):
            features.require_ovs()
        (tmp_path / "ovs-vswitchd.pid").write_text(f"{os.getpid()}\n")
        features.require_ovs()              # a database that answers and a live daemon
    finally:
        srv.close()


def test_an_emulation_refuses_to_start_without_open_vswitch_and_leaves_nothing(
        tmp_path, monkeypatch):
    """The emulator asks before it creates anything: the refusal is the clear message,
    and no run record (nor anything else) is left for `testbed clean`."""
    pytest.importorskip("mininet.node", reason="needs the mininet Python module")
    from testbed.emulator import registry
    from testbed.emulator.net import Emulation
    from testbed.errors import KernelFeatureMissing
    from testbed.topology.builders import linear

    before = {r.run_id for r in registry.all_runs()}
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))
    with pytest.raises(KernelFeatureMissing, match="Open vSwitch is not running"):
        with Emulation(linear(2), run_dir=tmp_path / "run"):
            pass
    assert {r.run_id for r in registry.all_runs()} == before
    assert not (tmp_path / "run").exists()
