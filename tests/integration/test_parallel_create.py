"""VNF instances created and deleted from several threads at once on the emulated NFVI (the
NFVO overlaps the creates of an NS's instances: ``EmulatedDriver.create_concurrency``)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import leftovers

from mano.nfvi import Flavour, Image
from testbed.emulator import Emulation
from testbed.nfvi.emulated import EmulatedDriver
from testbed.topology.builders import fat_tree


def test_instances_created_and_deleted_from_many_threads_at_once():
    """Four instances created at once (two on one compute node) get distinct switch ports,
    addresses and interfaces, run their programs in their own cgroups and are known to
    the controller; deleted at once, they leave no host, port, link or attachment."""
    with Emulation(fat_tree(4)) as emu:
        drv = EmulatedDriver(emu)
        try:
            nodes = sorted(emu.topology.computes)
            where = {f"v{i}": nodes[min(i, 1) * 3] for i in range(4)}   # v0, v1 together
            with ThreadPoolExecutor(4) as pool:
                infos = list(pool.map(
                    lambda iid: drv.create_instance(iid, where[iid], Flavour(0.25, 128),
                                                    Image("forwarder")), sorted(where)))
            ids = [i.instance_id for i in infos]
            ports = {(i.switch, emu.attachments[i.instance_id].port) for i in infos}
            assert len(ports) == 4
            assert len({i.ip for i in infos}) == 4 and len({i.mac for i in infos}) == 4
            assert len({emu.host_iface(i) for i in ids}) == 4
            assert all(i.alive for i in drv.list_instances()) and len(drv.list_instances()) == 4
            assert set(ids) <= {a["name"] for a in emu.ctl.topology()["attachments"]}
            assert set(ids) <= set(emu.cgroups.groups)
            assert all(drv.instance_metrics(i).alive for i in ids)
            ifaces = [emu.switches[s].ports[p].iface for s, p in ports]
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(drv.delete_instance, ids))
            assert drv.list_instances() == [] and not set(ids) & set(emu.hosts)
            assert not any(Path(f"/sys/class/net/{i}").exists() for i in ifaces)
            assert not set(ids) & {a["name"] for a in emu.ctl.topology()["attachments"]}
            assert not set(ids) & set(emu.attachments)
        finally:
            drv.close()
    assert leftovers() == []
