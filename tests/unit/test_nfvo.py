"""NFVO and VNFM lifecycle logic with a fake NFVI driver (pure logic; the real thing is
proved in tests/integration/test_mano.py): conflicts, grants, rollback of a failed step,
and reconciliation after a restart."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mano.errors import ConflictError, InfrastructureError, MANOError, NotFoundError
from mano.nfvi import ComputeNodeInfo, InstanceInfo, InstanceMetrics, NfviDriver
from mano.nfvo import NFVO
from mano.opocc import OpState

ROOT = Path(__file__).resolve().parents[2] / "descriptors"


class FakeDriver:
    """Just enough NFVI: instances and graphs in dicts; create can block or fail. Like the
    real one, addresses are handed out in order from a counter that starts again with a new
    driver (a new NFVI), a restart of an unknown instance is NotFoundError, and a graph
    naming an instance the NFVI lacks is refused (InfrastructureError), and so is removing
    an instance a graph names."""

    def __init__(self):
        self.instances: dict[str, InstanceInfo] = {}
        self.graphs: dict[str, dict] = {}
        self.fail_on: set[str] = set()
        self.fail_delete: set[str] = set()
        self.fail_put = False
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.hold: set[str] = set()          # threads whose creates wait for ``release``
        self.release = threading.Event()
        self.barrier: threading.Barrier | None = None
        self.calls: list[tuple] = []
        self.next_addr = 1

    def compute_nodes(self):
        return [ComputeNodeInfo(f"n{i}", f"e{i}", 4.0, 4096, 100) for i in range(1, 5)]

    def endpoints(self):
        return {f"h{i}": f"10.0.0.{i}" for i in range(1, 17)}

    def endpoint_switches(self):
        return {f"h{i}": f"e{(i + 1) // 2}" for i in range(1, 17)}

    def switch_distance(self, a, b):
        return 0.0 if a == b else 2.0

    def create_instance(self, iid, node, flavour, image):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if threading.current_thread().name in self.hold:
            self.release.wait(10)
        if self.barrier is not None:
            self.barrier.wait()       # BrokenBarrierError unless the other thread gets here
        if iid in self.fail_on:
            raise MANOError(f"boom creating {iid}")
        n, self.next_addr = self.next_addr, self.next_addr + 1
        self.instances[iid] = InstanceInfo(iid, node, "e1", f"10.1.0.{n}",
                                           f"02:00:00:00:00:{n:02x}")
        return self.instances[iid]

    def delete_instance(self, iid):
        if iid in self.fail_delete:
            raise InfrastructureError(f"could not remove {iid}")
        users = sorted(n for n, g in self.graphs.items()
                       if any(iid == h or (isinstance(h, list) and iid in h)
                              for h in g["hops"]))
        if users and iid in self.instances:    # as the controller refuses it
            raise InfrastructureError(f"attachment {iid!r} is used by forwarding graph(s) "
                                      f"{', '.join(users)}; remove them first")
        self.calls.append(("delete_instance", iid))
        self.instances.pop(iid, None)

    def restart_instance(self, iid):
        if iid not in self.instances:
            raise NotFoundError(f"no instance {iid!r}")
        return self.instances[iid]

    def list_instances(self):
        return list(self.instances.values())

    def find_instance(self, instance_id):
        return self.instances.get(instance_id)

    def instance_metrics(self, iid):
        return InstanceMetrics(iid, 0.0, 0.0, 0, 0, iid in self.instances)

    def put_graph(self, g):
        if self.fail_put:
            raise InfrastructureError(f"controller refused graph {g['name']}")
        absent = [h for hop in g["hops"][1:-1] for h in ([hop] if isinstance(hop, str) else hop)
                  if h not in self.instances]
        if absent:
            raise InfrastructureError(f"graph {g['name']}: no host {', '.join(absent)}")
        self.calls.append(("put_graph", g["name"], g["hops"]))
        self.graphs[g["name"]] = g
        return {"paths": []}

    def delete_graph(self, name):
        self.graphs.pop(name, None)

    def list_graphs(self):
        return sorted(self.graphs)

    def graph_stats(self, name):
        return {}

    def subscribe(self, cb):
        pass

    def unsubscribe(self, cb):
        pass

    def probe(self, src, dst, *, port, rate=1000, duration=1.0, src_port=None):
        return {"sent": 0, "received": 0, "loss_pct": 100.0, "latency_ms": None,
                "max_gap_ms": None, "time": 0.0}


@pytest.fixture
def nfvo(tmp_path):
    drv = FakeDriver()
    n = NFVO(drv, tmp_path / "db.sqlite")
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", sorted((ROOT / "vnfd").glob("*.yaml")))
    yield n
    n.close()


def test_instantiate_creates_instances_grants_and_the_graph(nfvo):
    """A completed instantiation leaves three instances, a grant per VNF operation, and one
    graph whose hops are the chain in order."""
    op = nfvo.instantiate("chain3", "web")
    assert op["state"] == "COMPLETED"
    drv = nfvo.driver
    assert sorted(drv.instances) == ["fw_1", "fwd2_1", "fwd_1"]
    assert drv.graphs["web.fg1"]["hops"] == ["h1", "fw_1", "fwd_1", "fwd2_1", "h16"]
    vnf_ops = nfvo.ops.list(level="vnf", parent=op["id"])
    assert len(vnf_ops) == 3 and all(o.grant_id for o in vnf_ops)
    assert all(nfvo.store.list_grants(op_id=o.id) for o in vnf_ops)


def test_second_operation_on_a_busy_ns_is_refused_with_a_conflict(nfvo):
    """While an instantiation is PROCESSING, a terminate of the same NS is refused."""
    drv = nfvo.driver
    drv.gate = threading.Event()
    t = threading.Thread(target=nfvo.instantiate, args=("chain3", "web"))
    t.start()
    assert drv.entered.wait(5)
    with pytest.raises(ConflictError, match="one at a time"):
        nfvo.terminate("web")
    drv.gate.set()
    t.join(10)
    assert nfvo.store.get_ns_instance("web")["state"] == "INSTANTIATED"


def test_a_failed_step_is_rolled_back_leaving_nothing(nfvo):
    """When creating the third VNF fails, the NS operation ends ROLLED_BACK and no instance,
    allocation or graph is left."""
    nfvo.driver.fail_on = {"fwd2_1"}
    with pytest.raises(MANOError, match="boom"):
        nfvo.instantiate("chain3", "web")
    ns_op = nfvo.ops.list(level="ns")[0]
    assert ns_op.state == OpState.ROLLED_BACK
    assert nfvo.driver.instances == {} and nfvo.driver.graphs == {}
    assert nfvo.store.list_allocations() == [] and nfvo.vim.active_servers() == 0
    assert nfvo.store.get_ns_instance("web")["state"] == "NOT_INSTANTIATED"


def test_scale_outside_the_scaling_aspect_is_refused(nfvo):
    """Scaling in below min is a conflict naming the bounds; out adds an instance."""
    nfvo.instantiate("chain3", "web")
    with pytest.raises(ConflictError, match=r"outside its scaling aspect \[1, 3\]"):
        nfvo.scale("web", "fwd", "in")
    nfvo.scale("web", "fwd", "out")
    assert nfvo.driver.graphs["web.fg1"]["hops"][2] == ["fwd_1", "fwd_2"]


def test_reconcile_after_restart_rolls_back_starting_fails_processing_removes_orphans(tmp_path):
    """A new NFVO on the same database: STARTING -> ROLLED_BACK, PROCESSING -> FAILED_TEMP,
    an instance the infrastructure has but no record names is deleted."""
    drv = FakeDriver()
    a = NFVO(drv, tmp_path / "db.sqlite")
    a.onboard_nsd(ROOT / "nsd" / "chain3.yaml", sorted((ROOT / "vnfd").glob("*.yaml")))
    a.store.put_ns_instance("x", "chain3", "NOT_INSTANTIATED")
    a.store.put_ns_instance("y", "chain3", "NOT_INSTANTIATED")
    s = a.ops.start("ns", "x", "INSTANTIATE", {})
    p = a.ops.start("ns", "y", "INSTANTIATE", {})
    a.ops.transition(p.id, OpState.PROCESSING)
    a.close()
    drv.instances["ghost_1"] = InstanceInfo("ghost_1", "n1", "e1", "10.1.0.9", "02:00:00:00:00:09")
    b = NFVO(drv, tmp_path / "db.sqlite")
    assert b.ops.get(s.id).state == OpState.ROLLED_BACK
    assert b.ops.get(p.id).state == OpState.FAILED_TEMP
    assert "ghost_1" not in drv.instances
    b.rollback(p.id)
    assert b.ops.get(p.id).state == OpState.ROLLED_BACK
    b.close()


def test_catalogue_disable_refuses_instantiation_and_delete_is_refused_while_in_use(nfvo):
    """A disabled NSD cannot be instantiated; an NSD with a live NS cannot be deleted; after
    terminate it can, and the records go with it."""
    nfvo.set_nsd_enabled("chain3", False)
    with pytest.raises(ConflictError, match="NSD chain3 is disabled"):
        nfvo.instantiate("chain3", "web")
    nfvo.set_nsd_enabled("chain3", True)
    nfvo.instantiate("chain3", "web")
    with pytest.raises(ConflictError, match="in use by NS web"):
        nfvo.delete_nsd("chain3")
    nfvo.terminate("web")
    assert all(v["state"] == "TERMINATED" for v in nfvo.store.list_vnf_instances(ns_id="web"))
    nfvo.delete_nsd("chain3")
    assert nfvo.store.list_nsds() == []


def test_the_fake_driver_implements_every_declared_call():
    """The NFVO's fake driver has every method of the NfviDriver Protocol, so the NFVO
    calls nothing the Protocol does not declare."""
    assert isinstance(FakeDriver(), NfviDriver)


def test_scale_in_removes_the_named_instance_after_draining_it(nfvo):
    """A scale-in naming an instance removes that one (not the newest), after the graph
    was reprogrammed without it; without a name the newest goes."""
    nfvo.instantiate("chain3", "web")
    nfvo.scale("web", "fwd", "out")
    nfvo.scale("web", "fwd", "out")
    drv = nfvo.driver
    drv.calls.clear()
    op = nfvo.scale("web", "fwd", "in", instance="fwd_2")
    assert op["params"]["instance"] == "fwd_2"
    assert [r["id"] for r in nfvo.vnfm.instances("web", "fwd")] == ["fwd_1", "fwd_3"]
    i = drv.calls.index(("delete_instance", "fwd_2"))
    assert drv.calls[i - 1] == ("put_graph", "web.fg1", ["h1", "fw_1", ["fwd_1", "fwd_3"],
                                                         "fwd2_1", "h16"])
    nfvo.scale("web", "fwd", "in")
    assert [r["id"] for r in nfvo.vnfm.instances("web", "fwd")] == ["fwd_1"]


def test_scale_in_of_an_unknown_or_foreign_instance_is_refused(nfvo):
    """Naming an unknown instance is NotFoundError; one of another VNF or NS, one already
    terminated, or a name on a scale-out is ConflictError; nothing changes."""
    nfvo.instantiate("chain3", "web")
    nfvo.instantiate("chain3", "shop", sap={"h1": "h2"})   # overlapping at h1 is refused
    nfvo.scale("web", "fwd", "out")
    nfvo.scale("web", "fwd", "out")
    nfvo.scale("web", "fwd", "in", instance="fwd_3")
    with pytest.raises(NotFoundError, match="no VNF instance 'fwd_9'.*fwd_1, fwd_4"):
        nfvo.scale("web", "fwd", "in", instance="fwd_9")
    with pytest.raises(ConflictError, match="it is an instance of web/fw"):
        nfvo.scale("web", "fwd", "in", instance="fw_1")
    with pytest.raises(ConflictError, match="it is an instance of shop/fwd"):
        nfvo.scale("web", "fwd", "in", instance="fwd_2")
    with pytest.raises(ConflictError, match="TERMINATED, not INSTANTIATED"):
        nfvo.scale("web", "fwd", "in", instance="fwd_3")
    with pytest.raises(ConflictError, match="only a scale-in removes a named instance"):
        nfvo.scale("web", "fwd", "out", instance="fwd_1")
    assert [r["id"] for r in nfvo.vnfm.instances("web", "fwd")] == ["fwd_1", "fwd_4"]


def test_infrastructure_error_runs_the_reprogram_fallback(nfvo):
    """When the driver raises InfrastructureError while programming a scaled NS's graph,
    the rollback's re-programming fails too and falls back to removing the graph: the
    operation is not stuck in FAILED_TEMP but ends FAILED (not ROLLED_BACK: the graph is
    gone), the NS DEGRADED naming the missing graph; the extra instance is removed."""
    nfvo.instantiate("chain3", "web")
    nfvo.driver.fail_put = True
    with pytest.raises(InfrastructureError, match="refused graph web.fg1"):
        nfvo.scale("web", "fwd", "out")
    op = nfvo.ops.list(level="ns", subject_id="web")[-1]
    assert (op.operation, op.state) == ("SCALE", OpState.FAILED)
    assert "missing: graph web.fg1" in op.error
    assert "web.fg1" not in nfvo.driver.graphs and "fwd_2" not in nfvo.driver.instances
    ns = nfvo.store.get_ns_instance("web")
    assert ns["state"] == "DEGRADED" and ns["data"]["missing"] == ["graph web.fg1"]
    nfvo.driver.fail_put = False
    assert nfvo.heal_ns("web")["state"] == "COMPLETED"
    assert nfvo.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    assert "web.fg1" in nfvo.driver.graphs


def _run(errors, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except (MANOError, threading.BrokenBarrierError) as exc:   # reported to the test
        errors.append(exc)


def test_operations_on_two_ns_run_in_parallel_while_the_monitor_polls(nfvo):
    """Scale-outs of two NSs from two threads are inside the driver at the same time (a
    barrier both must reach) while the monitor thread polls; both complete."""
    nfvo.instantiate("chain3", "web")
    nfvo.instantiate("chain3", "shop", sap={"h1": "h2"})   # overlapping at h1 is refused
    nfvo.start_monitoring(interval=0.001)
    nfvo.driver.barrier = threading.Barrier(2, timeout=5)
    errors: list[Exception] = []
    threads = [threading.Thread(target=_run, args=(errors, nfvo.scale, ns, "fwd", "out"))
               for ns in ("web", "shop")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    for ns in ("web", "shop"):
        assert len(nfvo.vnfm.instances(ns, "fwd")) == 2
        assert [o.state for o in nfvo.ops.list(level="ns", subject_id=ns)] == \
            [OpState.COMPLETED, OpState.COMPLETED]
    assert nfvo.metrics.latest("alive", ns="shop") == 1.0


def test_a_second_operation_on_the_same_ns_is_refused_while_others_proceed(nfvo):
    """While a scale of one NS is held inside the driver, a heal of the same NS from
    another thread is refused with ConflictError, and a scale of another NS completes."""
    nfvo.instantiate("chain3", "web")
    nfvo.instantiate("chain3", "shop", sap={"h1": "h2"})   # overlapping at h1 is refused
    drv = nfvo.driver
    drv.hold = {"web-worker"}
    errors: list[Exception] = []
    web = threading.Thread(target=_run, args=(errors, nfvo.scale, "web", "fwd", "out"),
                           name="web-worker")
    web.start()
    deadline = time.monotonic() + 5
    while nfvo.ops.active_for("web", "ns") is None or \
            nfvo.ops.active_for("web/fwd", "vnf") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    healer = threading.Thread(target=_run, args=(errors, nfvo.heal, "web", "fw_1"))
    healer.start()
    healer.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ConflictError)
    assert "one at a time" in str(errors[0])
    nfvo.scale("shop", "fwd", "out")                 # another NS is not held up
    assert web.is_alive()
    drv.release.set()
    web.join(10)
    assert len(errors) == 1
    assert len(nfvo.vnfm.instances("web", "fwd")) == 2


def test_one_nsd_serves_two_ns_through_sap_bindings(nfvo):
    """Instantiation parameters bind the NSD's endpoints to others: the second NS's graph
    enters at h2 and leaves at h15, its classifier follows their addresses, protection is
    overridden; an unknown endpoint is refused naming what exists."""
    nfvo.instantiate("chain3", "a")
    nfvo.instantiate("chain3", "b", sap={"h1": "h2", "h16": "h15"}, protection=True)
    ga, gb = (nfvo.driver.graphs[f"{ns}.fg1"] for ns in ("a", "b"))
    ips = nfvo.driver.endpoints()
    assert ga["hops"][0] == "h1" and gb["hops"][0] == "h2" and gb["hops"][-1] == "h15"
    assert gb["match"]["ipv4_src"] == ips["h2"] and gb["match"]["ipv4_dst"] == ips["h15"]
    assert gb["protection"] is True and ga["protection"] is False
    with pytest.raises(NotFoundError, match="has no endpoint 'h99'"):
        nfvo.instantiate("chain3", "c", sap={"h1": "h99"})
    with pytest.raises(NotFoundError, match="names no such endpoint"):
        nfvo.instantiate("chain3", "d", sap={"h7": "h2"})


def test_a_terminate_failing_before_any_removal_is_rolled_back_with_its_graph(nfvo):
    """A terminate whose first instance removal fails is rolled back: ROLLED_BACK, its VNF
    operations too, the NS INSTANTIATED with its graph installed again through the same
    instances."""
    nfvo.instantiate("chain3", "web")
    hops = nfvo.driver.graphs["web.fg1"]["hops"]
    nfvo.driver.fail_delete = {"fw_1"}
    with pytest.raises(InfrastructureError, match="could not remove fw_1"):
        nfvo.terminate("web")
    op = nfvo.ops.list(level="ns", subject_id="web")[-1]
    assert (op.operation, op.state) == ("TERMINATE", OpState.ROLLED_BACK)
    assert op.params["prior_state"] == "INSTANTIATED"
    assert {o.state for o in nfvo.ops.list(parent=op.id)} == {OpState.ROLLED_BACK}
    assert nfvo.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    assert nfvo.driver.graphs["web.fg1"]["hops"] == hops
    nfvo.driver.fail_delete = set()
    assert nfvo.terminate("web")["state"] == "COMPLETED"


def test_a_terminate_failing_after_a_removal_ends_failed_naming_it(nfvo):
    """A terminate that removed fw_1 and then fails on fwd_1 cannot be rolled back: FAILED
    naming fw_1, the fw operation FAILED with it; the NS is DEGRADED (fw and the graph
    missing), not INSTANTIATED; terminating it again completes and leaves nothing."""
    nfvo.instantiate("chain3", "web")
    nfvo.driver.fail_delete = {"fwd_1"}
    with pytest.raises(InfrastructureError, match="could not remove fwd_1"):
        nfvo.terminate("web")
    op = nfvo.ops.list(level="ns", subject_id="web")[-1]
    assert op.state == OpState.FAILED
    assert "instance fw_1 was deleted and cannot be restored" in op.error
    children = {o.subject_id: o.state for o in nfvo.ops.list(parent=op.id)}
    assert children == {"web/fw": OpState.FAILED, "web/fwd": OpState.ROLLED_BACK}
    ns = nfvo.store.get_ns_instance("web")
    assert ns["state"] == "DEGRADED"
    assert ns["data"]["missing"] == ["VNF fw (no instance)", "graph web.fg1"]
    assert sorted(nfvo.driver.instances) == ["fwd2_1", "fwd_1"] and nfvo.driver.graphs == {}
    nfvo.driver.fail_delete = set()
    assert nfvo.terminate("web")["state"] == "COMPLETED"
    assert nfvo.driver.instances == {} and nfvo.store.list_allocations() == []


def test_retry_resumes_a_failed_scale_out_in_the_same_occurrence(tmp_path):
    """Without automatic rollback, a scale-out whose new instance fails stays FAILED_TEMP;
    retry runs the same occurrence again once the NFVI works, completing it with one new
    instance, its VNF operations final."""
    drv = FakeDriver()
    n = NFVO(drv, tmp_path / "db.sqlite", auto_rollback=False)
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", sorted((ROOT / "vnfd").glob("*.yaml")))
    n.instantiate("chain3", "web")
    drv.fail_on = {"fwd_2"}
    with pytest.raises(MANOError, match="boom creating fwd_2"):
        n.scale("web", "fwd", "out")
    op = n.ops.list(level="ns", subject_id="web")[-1]
    assert op.state == OpState.FAILED_TEMP
    with pytest.raises(ConflictError, match="one at a time"):
        n.scale("web", "fwd", "out")
    drv.fail_on = set()
    done = n.retry(op.id)
    assert (done["id"], done["state"]) == (op.id, "COMPLETED")
    assert [r["id"] for r in n.vnfm.instances("web", "fwd")] == ["fwd_1", "fwd_3"]
    assert {o.state for o in n.ops.list(parent=op.id)} == {OpState.ROLLED_BACK,
                                                            OpState.COMPLETED}
    assert drv.graphs["web.fg1"]["hops"][2] == ["fwd_1", "fwd_3"]
    n.close()
