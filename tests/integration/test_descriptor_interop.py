"""Foreign descriptors on the emulated NFVI, with real packets: Tacker's ETSI SOL001 VNF
package and an OSM-style ETSI SOL006 VNFD and NSD (with a VNFFG), onboarded unmodified,
instantiated, and carrying traffic through the chain."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from mano.descriptors.readers.common import vnfd_id_for
from testbed import chain
from testbed.emulator import Emulation
from testbed.nfvi.emulated import EmulatedDriver
from testbed.topology.builders import fat_tree

DATA = Path(__file__).resolve().parents[1] / "data" / "descriptors"
SAMPLE = vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177")
CIRROS = vnfd_id_for("cirros_vnffg-vnf")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mano.nfvo import NFVO

    with Emulation(fat_tree(4)) as emu:
        drv = EmulatedDriver(emu)
        nfvo = NFVO(drv, tmp_path_factory.mktemp("mano") / "nfvo.db")
        yield emu, drv, nfvo
        nfvo.close()
        drv.close()


def test_sol001_package_and_sol006_nsd_carry_traffic_through_the_chain(env):
    """The Tacker CSAR, the OSM-style VNFD and NSD onboard unmodified (with warnings for what
    has no meaning here); instantiation places both VNFs and steers UDP from h1 to h16:5001
    through them: each instance forwards at least what h16 received, and the graph has the
    three segments h1 -> Tacker VNF -> OSM VNF -> h16."""
    emu, drv, nfvo = env
    assert nfvo.onboard(DATA / "tacker-sol001" / "sample_vnf_package_csar")["vnfds"] == [SAMPLE]
    assert nfvo.onboard(DATA / "sol006" / "cirros_vnffg_vnfd.yaml")["vnfds"] == [CIRROS]
    report = nfvo.onboard(DATA / "sol006" / "fw_vnffg_nsd.yaml")
    assert report["nsds"] == ["fw_vnffg-ns"]
    op = nfvo.instantiate("fw_vnffg-ns", "interop")
    assert op["state"] == "COMPLETED"
    vnfs = [v for v in nfvo.show_ns("interop")["vnfs"] if v["state"] == "INSTANTIATED"]
    assert sorted(v["vnfd_id"] for v in vnfs) == sorted([SAMPLE, CIRROS])
    before = {v["id"]: drv.instance_metrics(v["id"]).packets for v in vnfs}
    res = chain.Probe(emu, "h1", "h16", port=5001, rate=1000, duration=1.0,
                      tag="interop").start().wait()
    assert res["received"] >= 990
    time.sleep(0.3)
    for v in vnfs:
        assert drv.instance_metrics(v["id"]).packets - before[v["id"]] >= res["received"]
    stats = drv.graph_stats("interop.forwardingpath1")
    assert len(stats["segments"]) == 3
    assert stats["delivered_packets"] >= res["received"]
    assert nfvo.terminate("interop")["state"] == "COMPLETED"
    assert drv.list_graphs() == []
