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


def test_every_nfvi_change_comes_after_the_commit_of_its_step(nfvo, tmp_path):
    """When the NFVI is asked to install or remove a graph or delete an instance, another
    connection already reads the step that announces it (graph:, ungraph:, delete:)."""
    reader = Store(tmp_path / "db.sqlite", readonly=True)
    seen = []
    drv = nfvo.driver

    def last_steps():
        return [s for o in reader.list_op_occs() if o["state"] == "PROCESSING"
                for s in o["steps_done"][-1:]]

    def spy(name, what):
        plain = getattr(drv, name)

        def call(arg):
            seen.append((name, what(arg) in last_steps()))
            return plain(arg)
        setattr(drv, name, call)

    spy("put_graph", lambda g: f"graph:{g['name']}")
    spy("delete_graph", lambda name: f"ungraph:{name}")
    spy("delete_instance", lambda iid: f"delete:{iid}")
    try:
        assert nfvo.instantiate("chain3", "web")["state"] == "COMPLETED"
        assert nfvo.terminate("web")["state"] == "COMPLETED"
    finally:
        reader.close()
    assert [n for n, _ in seen] == ["put_graph", "delete_graph"] + ["delete_instance"] * 3
    assert all(ok for _, ok in seen), seen


def test_an_operation_is_committed_when_it_returns_and_told_only_once_committed(nfvo,
                                                                               tmp_path):
    """What an NFVO operation returns, another connection reads at once; a listener of
    the operation occurrences is told each state only when another connection reads it."""
    reader = Store(tmp_path / "db.sqlite", readonly=True)
    told = []

    def listener(op):
        told.append((op.state, reader.get_op_occ(op.id)["state"]))
    nfvo.ops.listeners.append(listener)
    try:
        done = nfvo.instantiate("chain3", "web")
        assert reader.get_op_occ(done["id"])["state"] == "COMPLETED"
        assert reader.get_ns_instance("web")["state"] == "INSTANTIATED"
        nfvo.create_ns("chain3", "other")
        assert reader.get_ns_instance("other")["state"] == "NOT_INSTANTIATED"
    finally:
        reader.close()
    assert told and {s for s, _ in told} >= {"STARTING", "PROCESSING", "COMPLETED"}
    # the state told is stored already, or a later one of the same occurrence is
    order = ["STARTING", "PROCESSING", "COMPLETED"]
    assert all(order.index(stored) >= order.index(state) for state, stored in told), told
