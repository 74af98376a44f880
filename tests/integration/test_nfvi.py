"""The emulated NFVI driver, used in-process and over its RPC server from another process's
point of view (RemoteDriver): instances with cgroup limits, metrics, events, deletion."""
from __future__ import annotations

import time

import pytest

from mano.errors import InfrastructureError
from mano.nfvi import Flavour, Image, NfviDriver
from mano.remote import RemoteDriver
from testbed.emulator import Emulation
from testbed.infra_server import InfraServer
from testbed.nfvi.emulated import EmulatedDriver
from testbed.topology.builders import fat_tree


@pytest.fixture(scope="module")
def remote():
    with Emulation(fat_tree(4)) as emu:
        drv = EmulatedDriver(emu)
        srv = InfraServer(drv).start()
        client = RemoteDriver(f"http://127.0.0.1:{srv.port}")
        yield emu, client
        client.close()
        srv.stop()
        drv.close()


def test_remote_driver_satisfies_the_interface(remote):
    """Both drivers are NfviDrivers; the compute nodes come from the topology."""
    emu, drv = remote
    assert isinstance(drv, NfviDriver) and isinstance(EmulatedDriver(emu), NfviDriver)
    nodes = drv.compute_nodes()
    assert len(nodes) == 8 and all(n.vcpu > 0 for n in nodes)
    assert drv.switch_distance("e1", "e2") == 2.0


def test_instance_lifecycle_with_metrics_and_death_event(remote):
    """An instance gets a host on its node's switch with cgroup limits; a killed program is
    reported as an instance_down event; deletion removes host, port and cgroup."""
    emu, drv = remote
    events = []
    drv.subscribe(events.append)
    node = drv.compute_nodes()[2]
    info = drv.create_instance("fwd1", node.name, Flavour(0.5, 128, 1), Image("forwarder"))
    assert info.switch == node.switch and info.ip.startswith("10.")
    assert "fwd1" in emu.cgroups.groups
    cfs = (emu.cgroups.get("fwd1").dirs.get("cpu") or emu.cgroups.get("fwd1").dirs["unified"])
    assert cfs.exists()
    m = drv.instance_metrics("fwd1")
    assert m.alive and m.packets == 0
    assert [i.instance_id for i in drv.list_instances()] == ["fwd1"]
    drv.kill_instance("fwd1")
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events and events[0].kind == "instance_down" and events[0].subject == "fwd1"
    assert drv.list_instances()[0].alive is False
    info2 = drv.restart_instance("fwd1")
    assert info2 == info and drv.instance_metrics("fwd1").alive
    drv.delete_instance("fwd1")
    drv.delete_instance("fwd1")  # idempotent
    assert drv.list_instances() == [] and "fwd1" not in emu.hosts
    assert "fwd1" not in emu.cgroups.groups


def test_errors_come_back_as_precise_infrastructure_errors(remote):
    """Bad requests are refused with the testbed's message, not a traceback."""
    _emu, drv = remote
    with pytest.raises(InfrastructureError, match="unknown compute node 'nope'"):
        drv.create_instance("x1", "nope", Flavour(1, 64), Image("forwarder"))
    with pytest.raises(InfrastructureError, match="unknown VNF program 'ftp'"):
        drv.create_instance("x1", "n1", Flavour(1, 64), Image("ftp"))
