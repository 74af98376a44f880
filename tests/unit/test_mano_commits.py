"""What the MANO fast path (bench/mano_ops.py) must not change: records are committed before
the NFVI call they precede, a refused grant still ends its operation ROLLED_BACK, operation
rows are snapshots, and a descriptor changed in the store is never served stale."""
from __future__ import annotations

import pytest
from test_nfvo import ROOT, FakeDriver  # tests/unit is on sys.path (rootdir-relative)

from mano.errors import MANOError, NotFoundError
from mano.nfvo import NFVO
from mano.opocc import OpOcc, OpState
from mano.store import Store

VNFDS = sorted((ROOT / "vnfd").glob("*.yaml"))


@pytest.fixture
def nfvo(tmp_path):
    n = NFVO(FakeDriver(), tmp_path / "db.sqlite")
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    yield n
    n.close()


def test_steps_allocation_and_creating_record_are_committed_before_create(nfvo, tmp_path):
    """When the NFVI is asked to create an instance, another connection already reads its
    alloc and create steps, its allocation and its CREATING record, and the VNF operation
    PROCESSING with its grant."""
    seen = []
    reader = Store(tmp_path / "db.sqlite", readonly=True)
    create = nfvo.driver.create_instance

    def checked(iid, node, flavour, image):
        ops = [o for o in reader.list_op_occs(level="vnf") if o["state"] == "PROCESSING"]
        op = ops[-1]
        seen.append((iid, op["steps_done"][-2:], op["grant_id"] is not None,
                     reader.get_allocation(iid)["node"], reader.get_vnf_instance(iid)["state"]))
        return create(iid, node, flavour, image)

    nfvo.driver.create_instance = checked
    try:
        assert nfvo.instantiate("chain3", "web")["state"] == "COMPLETED"
    finally:
        reader.close()
    assert [s[0] for s in seen] == ["fw_1", "fwd_1", "fwd2_1"]
    for iid, steps, granted, node, state in seen:
        assert steps == [f"alloc:{iid}", f"create:{iid}"]
        assert granted and node and state == "CREATING"


def test_a_refused_grant_ends_the_vnf_operation_rolled_back(nfvo):
    """A grant the NFVO refuses raises out of the instantiation, whose VNF operation is
    ROLLED_BACK saying so, and nothing is created."""
    def refuse(op_id, operation, resources):
        raise MANOError("no quota")

    nfvo.vnfm.grant = refuse
    with pytest.raises(MANOError, match="no quota"):
        nfvo.instantiate("chain3", "web")
    vnf_ops = nfvo.ops.list(level="vnf")
    assert len(vnf_ops) == 1 and vnf_ops[0].state == OpState.ROLLED_BACK
    assert "grant refused: no quota" in vnf_ops[0].error
    assert nfvo.driver.instances == {}


def test_an_operation_row_is_a_snapshot():
    """Changing a row made by to_row (its params, nested ones too, or its steps) leaves the
    occurrence as it was; the state is stored as its name."""
    op = OpOcc("o1", "ns", "web", "INSTANTIATE", OpState.PROCESSING,
               params={"sap": {"h1": "h2"}}, steps_done=["vnf:fw"])
    row = op.to_row()
    row["params"]["sap"]["h1"] = "h3"
    row["steps_done"].append("graph:x")
    assert op.params == {"sap": {"h1": "h2"}} and op.steps_done == ["vnf:fw"]
    assert row["state"] == "PROCESSING" and OpOcc.from_row(op.to_row()) == op


def test_a_descriptor_changed_in_the_store_is_parsed_again(nfvo):
    """The NFVO serves the VNFD the store holds now: replaced data gives the new model,
    the same data the same model, a deleted one NotFoundError."""
    fw = nfvo.vnfd("fw")
    assert nfvo.vnfd("fw") is fw
    data = nfvo.store.get_vnfd("fw")["data"]
    data["vnfd"]["name"] = "renamed firewall"
    nfvo.store.put_vnfd("fw", data)
    assert nfvo.vnfd("fw").name == "renamed firewall"
    nfvo.store.delete_vnfd("fw")
    with pytest.raises(NotFoundError):
        nfvo.vnfd("fw")
