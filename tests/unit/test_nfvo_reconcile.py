"""Reconciliation against what the NFVI really holds (issue 9, case 8): the NFVO restarts
on its database while the NFVI is a new, empty one (``testbed down`` then ``up``), or lost
some instances or graphs. The NS is never shown INSTANTIATED when something is missing: it
is healed back, or left DEGRADED / NOT_INSTANTIATED saying what is missing, and every later
operation on it works."""
from __future__ import annotations

import pytest
from test_nfvo import ROOT, FakeDriver  # tests/unit is on sys.path (rootdir-relative)

from mano.errors import ConflictError
from mano.nfvo import NFVO

VNFDS = sorted((ROOT / "vnfd").glob("*.yaml"))


@pytest.fixture
def db(tmp_path):
    """A database holding NS web (chain3, fwd scaled to 2) on an NFVI that is then lost."""
    path = tmp_path / "nfvo.db"
    n = NFVO(FakeDriver(), path)
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    n.instantiate("chain3", "web")
    n.scale("web", "fwd", "out")
    n.close()
    return path


def _live_ips(n):
    return [r["ip"] for r in n.store.list_vnf_instances() if r["state"] == "INSTANTIATED"]


def test_a_new_empty_nfvi_gets_the_ns_healed_back(db):
    """On a new NFVI every instance is recreated (new ids, addresses from the new NFVI, no
    two records sharing one), the graph reprogrammed through them, the NS INSTANTIATED by
    a completed HEAL occurrence; the old records are TERMINATED."""
    drv = FakeDriver()
    n = NFVO(drv, db)
    ns = n.store.get_ns_instance("web")
    assert ns["state"] == "INSTANTIATED" and "missing" not in ns["data"]
    live = {r["id"] for r in n.store.list_vnf_instances(state="INSTANTIATED")}
    assert live == set(drv.instances) and len(live) == 4
    assert not live & {"fw_1", "fwd_1", "fwd_2", "fwd2_1"}
    old = {r["id"]: r["state"] for r in n.store.list_vnf_instances()
           if r["id"] in ("fw_1", "fwd_1", "fwd_2", "fwd2_1")}
    assert set(old.values()) == {"TERMINATED"}
    ips = _live_ips(n)
    assert len(ips) == len(set(ips)) == 4 and set(ips) == {i.ip for i in drv.instances.values()}
    nsd = n.nsd("chain3")
    assert drv.graphs["web.fg1"]["hops"] == n.graph_for("web", nsd, nsd.vnffg[0])["hops"]
    heal = n.ops.list(level="ns", subject_id="web")[-1]
    assert (heal.operation, heal.state) == ("HEAL", "COMPLETED")
    assert sorted(heal.params["lost"]) == ["fw_1", "fwd2_1", "fwd_1", "fwd_2"]
    n.close()


def test_every_later_operation_works_after_the_heal_back(db):
    """After the heal back: scale out gives an address no other record holds, heal by
    restart and by recreate work, terminate leaves nothing, instantiate again works."""
    drv = FakeDriver()
    n = NFVO(drv, db)
    n.scale("web", "fwd", "out")
    ips = _live_ips(n)
    assert len(ips) == len(set(ips)) == 5
    fw = n.vnfm.instances("web", "fw")[0]["id"]
    assert n.heal("web", fw, "restart")["state"] == "COMPLETED"
    assert n.heal("web", fw, "recreate")["state"] == "COMPLETED"
    assert fw not in drv.instances
    assert n.terminate("web")["state"] == "COMPLETED"
    assert drv.instances == {} and drv.graphs == {}
    assert n.instantiate("chain3", "web")["state"] == "COMPLETED"
    assert len(drv.instances) == 3 and "web.fg1" in drv.graphs
    n.close()


def test_when_the_heal_back_fails_the_ns_says_what_is_missing(db):
    """If the new NFVI refuses to create one VNF, the NS is never INSTANTIATED: the heal is
    rolled back (nothing of it left) and the NS is DEGRADED listing the lost instances;
    heal of one lost instance, a heal of the whole NS once the NFVI works, and terminate
    all work afterwards; instantiating it again is refused while part of it is live."""
    drv = FakeDriver()
    drv.fail_on = {"fwd2_2"}
    n = NFVO(drv, db)
    ns = n.store.get_ns_instance("web")
    assert ns["state"] == "DEGRADED"
    assert "instance fwd2_1 (lost)" in ns["data"]["missing"]
    assert "graph web.fg1" in ns["data"]["missing"]
    assert drv.instances == {} and drv.graphs == {}
    heal = n.ops.list(level="ns", subject_id="web")[-1]
    assert heal.operation == "HEAL" and heal.state in ("ROLLED_BACK", "FAILED")
    with pytest.raises(ConflictError, match="DEGRADED; the operation needs it INSTANTIATED"):
        n.scale("web", "fwd", "out")
    assert n.heal("web", "fw_1")["state"] == "COMPLETED"      # a lost one is recreated
    with pytest.raises(ConflictError, match="exists already"):
        n.instantiate("chain3", "web")
    assert n.store.get_ns_instance("web")["state"] == "DEGRADED"
    assert [r["state"] for r in n.store.list_vnf_instances(vnfd_id="fw")][:1] == ["TERMINATED"]
    drv.fail_on = set()
    assert n.heal_ns("web")["state"] == "COMPLETED"
    assert n.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    assert "web.fg1" in drv.graphs
    assert n.terminate("web")["state"] == "COMPLETED" and drv.instances == {}
    n.close()


def test_a_lost_graph_alone_is_reprogrammed(db):
    """Instances all there but the controller lost the graph: reconciliation reprograms it
    and nothing else changes."""
    drv = FakeDriver()
    a = NFVO(drv, db)          # heals back onto this NFVI
    ids = set(drv.instances)
    a.close()
    drv.graphs.clear()
    n = NFVO(drv, db)
    assert set(drv.instances) == ids and "web.fg1" in drv.graphs
    assert n.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    n.close()


def test_an_ns_with_a_failed_operation_is_degraded_not_instantiated(tmp_path):
    """An NS whose operation is FAILED_TEMP after the restart and whose instances are gone
    is shown DEGRADED (not healed behind the operation's back); a rollback then settles it
    and heal_ns brings it back."""
    path = tmp_path / "nfvo.db"
    drv = FakeDriver()
    n = NFVO(drv, path, auto_rollback=False)
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    n.instantiate("chain3", "web")
    drv.fail_on = {"fwd_2"}
    with pytest.raises(Exception, match="boom"):
        n.scale("web", "fwd", "out")
    n.close()
    drv2 = FakeDriver()
    n = NFVO(drv2, path)
    ns = n.store.get_ns_instance("web")
    assert ns["state"] == "DEGRADED" and drv2.instances == {}
    op = n.ops.list(level="ns", subject_id="web")[-1]
    assert op.state == "FAILED_TEMP"
    out = n.rollback(op.id)
    assert out["state"] == "FAILED" and "missing" in out["error"]
    assert n.heal_ns("web")["state"] == "COMPLETED"
    assert n.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    assert len(drv2.instances) == 3
    n.close()


def test_an_ns_with_nothing_left_can_be_instantiated_again(db):
    """When the heal back fails and nothing of the NS is live, instantiating it again is
    accepted: the lost records are closed and a new NS comes up INSTANTIATED."""
    drv = FakeDriver()
    drv.fail_on = {"fw_2"}
    n = NFVO(drv, db)
    assert n.store.get_ns_instance("web")["state"] == "DEGRADED" and drv.instances == {}
    drv.fail_on = set()
    assert n.instantiate("chain3", "web")["state"] == "COMPLETED"
    assert n.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    assert not n.store.list_vnf_instances(state="LOST") and len(drv.instances) == 3
    n.close()
