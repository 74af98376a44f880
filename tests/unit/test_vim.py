"""The VIM: resource pools, placement strategies, node health and events (pure logic)."""
from __future__ import annotations

import re
import subprocess
import sys
import threading

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mano.errors import ConflictError, NotFoundError, PlacementError
from mano.nfvi import ComputeNodeInfo, Flavour, InfraEvent
from mano.vim import (
    STRATEGIES,
    VIM,
    AntiAffinity,
    BestFit,
    FirstFit,
    LatencyAware,
    NodeState,
    PlacementContext,
    PlacementRequest,
    ResourceEvent,
    ResourcePool,
    Resources,
    graph_distance,
    make_strategy,
)
from mano.vim.placement import feasible

SMALL = Flavour(vcpu=1, memory_mb=256, disk_gb=1)


def node(name, vcpu=4.0, mem=4096, disk=40, switch=None, up=True):
    return ComputeNodeInfo(name, switch or f"s_{name}", vcpu, mem, disk, up)


def req(instance_id, vnf_id="fw", flavour=SMALL):
    return PlacementRequest(vnf_id, instance_id, flavour)


def state(name, vcpu=4.0, free_vcpu=None, mem=4096, free_mem=None, switch=None, up=True,
          instances=None):
    return NodeState(name, switch or f"s_{name}", Resources(vcpu, mem, 40),
                     Resources(vcpu if free_vcpu is None else free_vcpu,
                               mem if free_mem is None else free_mem, 40),
                     up, dict(instances or {}))


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        self.t += 1.0
        return self.t


# -- resource pools ------------------------------------------------------------------------

def test_pool_counts_fractional_vcpu_exactly():
    """Ten allocations of 0.1 vCPU fill a 1-vCPU node exactly, and releasing them all gives
    back precisely the capacity (no float drift)."""
    p = ResourcePool(node("n1", vcpu=1.0, mem=1024, disk=10))
    for i in range(10):
        p.allocate(f"i{i}", Flavour(0.1, 10))
    assert p.free == Resources(0.0, 924, 10)
    assert p.used.vcpu == 1.0
    with pytest.raises(PlacementError, match=r"needs 0.1 vCPU, 0 of 1 free"):
        p.allocate("extra", Flavour(0.1, 10))
    for _ in range(100):                       # churn does not drift
        p.release("i0")
        p.allocate("i0", Flavour(0.1, 10))
    for i in range(10):
        p.release(f"i{i}")
    assert p.free == p.capacity == Resources(1.0, 1024, 10)
    p.allocate("a", Flavour(0.1, 0))
    p.allocate("b", Flavour(0.2, 0))
    assert p.used.vcpu == 0.3


def test_pool_refuses_overcommit_naming_node_and_resource_and_changes_nothing():
    """An allocation that does not fit raises with the node, the need and the free amount per
    short resource, and leaves the pool untouched."""
    p = ResourcePool(node("n3", vcpu=8, mem=1024, disk=20))
    p.allocate("big", Flavour(7.5, 768, 18))
    before = p.free
    with pytest.raises(PlacementError) as e:
        p.allocate("fw2", Flavour(2, 512, 1))
    assert str(e.value) == ("n3: cannot host fw2: needs 2 vCPU, 0.5 of 8 free; "
                            "needs 512 MB memory, 256 of 1024 MB free")
    with pytest.raises(PlacementError, match=r"n3: cannot host d: needs 5 GB disk, 2 of 20 GB"):
        p.allocate("d", Flavour(0.5, 0, 5))
    assert p.free == before and set(p.allocations) == {"big"}


def test_pool_release_is_idempotent_and_duplicates_and_down_nodes_are_refused():
    """Releasing twice is harmless; the same id twice is a conflict; a down node takes
    nothing."""
    p = ResourcePool(node("n1"))
    a = p.allocate("x", SMALL, "fw")
    assert a.node == "n1" and a.vnf_id == "fw"
    with pytest.raises(ConflictError, match="n1: x is already allocated"):
        p.allocate("x", SMALL)
    assert p.release("x") == a
    assert p.release("x") is None
    assert p.free == p.capacity
    p.up = False
    with pytest.raises(PlacementError, match="n1: node is down, cannot host y"):
        p.allocate("y", SMALL)


# -- strategies ----------------------------------------------------------------------------

def test_first_fit_takes_the_first_node_with_room_in_natural_order():
    """n1 is full, so first-fit takes n2 before n10 (natural, not lexical, order)."""
    nodes = [state("n10"), state("n2"), state("n1", free_vcpu=0.5)]
    assert FirstFit().choose(req("fw1"), nodes, PlacementContext()) == "n2"


def test_best_fit_prefers_active_nodes_then_the_tightest_fit():
    """An active node with room wins over an emptier idle one; among idle nodes the one left
    fullest after placing wins."""
    nodes = [state("n1"), state("n2", vcpu=8, free_vcpu=6, instances={"x": "nat"}),
             state("n3", vcpu=2)]
    assert BestFit().choose(req("fw1"), nodes, PlacementContext()) == "n2"
    idle = [state("n1"), state("n2", vcpu=8, mem=8192), state("n3", vcpu=2, mem=2048)]
    assert BestFit().choose(req("fw1"), idle, PlacementContext()) == "n3"
    active = [state("n1", free_vcpu=3, instances={"a": "x"}),
              state("n2", free_vcpu=1.5, instances={"b": "x"})]
    assert BestFit().choose(req("fw1"), active, PlacementContext()) == "n2"


def test_best_fit_uses_fewer_servers_than_first_fit():
    """On the same sequence of placements best-fit keeps fewer servers active than
    first-fit, which opens the small first node."""
    nodes = [node("n1", vcpu=1, mem=1024), node("n2", vcpu=8, mem=8192)]
    seq = [Flavour(2, 256), Flavour(1, 256), Flavour(1, 256), Flavour(0.5, 128)]
    active = {}
    for name in ("first_fit", "best_fit"):
        vim = VIM(nodes, name)
        for i, f in enumerate(seq):
            vim.place(req(f"i{i}", flavour=f))
        active[name] = vim.active_servers()
    assert active == {"first_fit": 2, "best_fit": 1}


def test_latency_aware_minimises_the_chain_detour_and_breaks_ties_by_name():
    """On a line s1-s2-s3-s4 the node nearest its previous and next hops wins; endpoints
    stand in for missing hops; equal costs go to the first name."""
    g = nx.path_graph(["s1", "s2", "s3", "s4"])
    d = graph_distance(g)
    nodes = [state("n1", switch="s1"), state("n2", switch="s3"), state("n3", switch="s4")]
    la = LatencyAware()
    assert la.choose(req("a"), nodes, PlacementContext(d, "s4", "s4")) == "n3"
    assert la.choose(req("a"), nodes, PlacementContext(d, "s1", "s2")) == "n1"
    assert la.choose(req("a"), nodes,
                     PlacementContext(d, ingress_switch="s3", egress_switch="s3")) == "n2"
    # s3 and s4 both cost 1 between s3 and s4: the tie goes to n2.
    assert la.choose(req("a"), nodes, PlacementContext(d, "s3", "s4")) == "n2"
    # Nearest is full: the next nearest.
    nodes[2] = state("n3", switch="s4", free_vcpu=0)
    assert la.choose(req("a"), nodes, PlacementContext(d, "s4", "s4")) == "n2"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.sampled_from(["n", "n0", "m"]),
                          st.integers(0, 5), st.sampled_from([0.0, 0.5, 1.0, 2.0]),
                          st.booleans()),
                min_size=1, max_size=12, unique_by=lambda t: (t[0], t[1])),
       st.randoms(use_true_random=False))
def test_latency_aware_chooses_what_min_over_feasible_nodes_by_cost_gives(specs, rnd):
    """Whatever the nodes' order, room, state, switches and costs (unreachable ones
    included), latency-aware placement picks min(feasible nodes in natural name order, by
    path cost), and fails as feasible() does when nothing fits."""
    nodes = [state(f"{p}{i}", free_vcpu=free, switch=f"s{sw}", up=up)
             for i, p, sw, free, up in specs]
    rnd.shuffle(nodes)
    costs = {f"s{k}": rnd.choice([0.0, 1.0, 2.0, float("inf")]) for k in range(6)}
    ctx = PlacementContext(lambda a, b: costs[b] if a == "x" else 0.0, "x", None)
    try:
        want = min(feasible(req("a"), nodes), key=lambda n: ctx.path_cost(n.switch)).name
    except PlacementError as exc:
        with pytest.raises(PlacementError, match=re.escape(str(exc))):
            LatencyAware().choose(req("a"), nodes, ctx)
        return
    assert LatencyAware().choose(req("a"), nodes, ctx) == want


def test_graph_distance_counts_hops_or_weights_and_inf_when_unreachable():
    """Hop count by default, an edge attribute when asked, infinity across a partition."""
    g = nx.Graph()
    g.add_edge("a", "b", delay=5.0)
    g.add_edge("b", "c", delay=1.0)
    g.add_edge("a", "c", delay=10.0)
    g.add_node("z")
    assert graph_distance(g)("a", "c") == 1
    assert graph_distance(g, "delay")("a", "c") == 6.0
    assert graph_distance(g)("a", "z") == float("inf")


def test_anti_affinity_spreads_instances_and_fails_clearly_when_it_cannot():
    """Instances of one VNF land on distinct nodes; when every node with room already hosts
    one, the error names the VNF and those nodes (full nodes are not listed)."""
    vim = VIM([node("n1"), node("n2"), node("n3", vcpu=1)], "anti_affinity")
    assert [vim.place(req(f"fw{i}")) for i in range(3)] == ["n1", "n2", "n3"]   # n3 is full
    with pytest.raises(PlacementError) as e:
        vim.place(req("fw3"))
    assert str(e.value) == ("anti-affinity: every node with room already hosts an instance "
                            "of fw: n1, n2")
    assert vim.place(req("nat0", vnf_id="nat")) == "n1"   # other VNFs are unaffected


def test_anti_affinity_delegates_the_choice_to_its_inner_strategy():
    """Among the nodes without the VNF, the wrapped strategy decides (best-fit: tightest)."""
    nodes = [state("n1", instances={"fw0": "fw"}), state("n2"), state("n3", free_vcpu=1.5)]
    assert AntiAffinity(BestFit()).choose(req("fw1"), nodes, PlacementContext()) == "n3"
    assert AntiAffinity().choose(req("fw1"), nodes, PlacementContext()) == "n2"
    s = make_strategy("anti_affinity:best_fit")
    assert s.name == "anti_affinity(best_fit)"
    assert s.choose(req("fw1"), nodes, PlacementContext()) == "n3"


@pytest.mark.parametrize("name", ["first_fit", "best_fit", "latency_aware", "anti_affinity"])
def test_no_strategy_chooses_a_node_that_is_down(name):
    """A down node is skipped even when it is the obvious choice for the strategy."""
    d = graph_distance(nx.path_graph(["s_n1", "s_n2"]))
    nodes = [state("n1", up=False, free_vcpu=1, instances={"x": "y"}), state("n2")]
    ctx = PlacementContext(d, "s_n1", "s_n1")
    assert make_strategy(name).choose(req("fw1"), nodes, ctx) == "n2"


def test_registry_and_unknown_strategy_names():
    """The registry holds the four strategies; an unknown name lists the known ones."""
    assert set(STRATEGIES) == {"first_fit", "best_fit", "latency_aware", "anti_affinity"}
    assert {make_strategy(n).name for n in ("first_fit", "best_fit", "latency_aware")} == \
        {"first_fit", "best_fit", "latency_aware"}
    with pytest.raises(NotFoundError) as e:
        make_strategy("worst_fit")
    assert "unknown placement strategy 'worst_fit'; known: first_fit, best_fit, " \
           "latency_aware, anti_affinity" in str(e.value)
    with pytest.raises(NotFoundError):
        make_strategy("anti_affinity:anti_affinity")


# -- no-fit errors -------------------------------------------------------------------------

def test_no_fit_error_names_the_short_resource_and_where_the_most_is_free():
    """When vCPU is short everywhere: the largest free vCPU and its node; other resources ok;
    down nodes listed."""
    nodes = [state("n1", free_vcpu=0.25), state("n2", free_vcpu=0.5),
             state("n3", up=False)]
    with pytest.raises(PlacementError) as e:
        FirstFit().choose(req("fw1"), nodes, PlacementContext())
    assert str(e.value) == ("no compute node can host fw1 (1 vCPU, 256 MB, 1 GB): largest "
                            "free vCPU 0.5 on n2; memory ok; disk ok; down: n3")
    nodes = [state("n1", free_mem=100), state("n2", free_vcpu=0.5, free_mem=200)]
    with pytest.raises(PlacementError, match=r": vCPU ok; largest free memory 200 MB "
                                             r"on n2; disk ok$"):
        BestFit().choose(req("fw1"), nodes, PlacementContext())


def test_no_fit_error_explains_fragmentation_and_empty_or_all_down_pools():
    """If each resource fits somewhere but not together, each node's lack is listed; with no
    node up or no node at all, the error says so."""
    nodes = [state("n1", vcpu=1, free_vcpu=0.5), state("n2", mem=1024, free_mem=128)]
    with pytest.raises(PlacementError) as e:
        FirstFit().choose(req("fw1"), nodes, PlacementContext())
    assert str(e.value) == (
        "no compute node can host fw1 (1 vCPU, 256 MB, 1 GB): each resource fits somewhere "
        "but no node has all: n1 needs 1 vCPU, 0.5 of 1 free; "
        "n2 needs 256 MB memory, 128 of 1024 MB free")
    with pytest.raises(PlacementError, match=r"no compute node is up \(n1, n2 down\)"):
        FirstFit().choose(req("fw1"), [state("n2", up=False), state("n1", up=False)],
                          PlacementContext())
    with pytest.raises(PlacementError, match="there are no compute nodes"):
        LatencyAware().choose(req("fw1"), [], PlacementContext())


# -- the VIM -------------------------------------------------------------------------------

def test_place_and_release_emit_resource_events_stamped_by_the_injected_clock():
    """Placement emits "allocated", release "released" (once), to resource subscribers only,
    with times from the VIM's clock."""
    vim = VIM([node("n1"), node("n2")], clock=Clock())
    res, infra = [], []
    vim.subscribe("resource", res.append)
    vim.subscribe("infra", infra.append)
    assert vim.place(req("fw1")) == "n1"
    assert vim.where("fw1") == "n1"
    released = vim.release("fw1")
    assert released is not None and released.node == "n1"
    assert vim.release("fw1") is None
    assert res == [ResourceEvent("allocated", "fw1", "n1", SMALL, 101.0, "fw"),
                   ResourceEvent("released", "fw1", "n1", SMALL, 102.0, "fw")]
    assert infra == []
    with pytest.raises(ValueError, match="unknown event kind 'metrics'; known: resource, infra"):
        vim.subscribe("metrics", print)


def test_place_refuses_a_second_placement_and_leaves_nothing_behind_on_failure():
    """Placing an instance that already holds resources is a conflict; a failed placement
    allocates nothing and emits nothing."""
    vim = VIM([node("n1", vcpu=1)])
    events = []
    vim.subscribe("resource", events.append)
    vim.place(req("fw1"))
    with pytest.raises(ConflictError, match="instance fw1 already holds resources on n1"):
        vim.place(req("fw1"))
    with pytest.raises(PlacementError, match="largest free vCPU 0 on n1"):
        vim.place(req("fw2"))
    assert [a.alloc_id for a in vim.allocations()] == ["fw1"] and len(events) == 1
    with pytest.raises(NotFoundError, match="no resources allocated for instance 'fw2'"):
        vim.where("fw2")


def test_node_down_excludes_the_node_reports_its_instances_and_tells_the_nfvo():
    """A failed node returns its instances, emits compute_down once to infra subscribers,
    is never chosen while down, and emits compute_up when it returns."""
    clock = Clock()
    vim = VIM([node("n1"), node("n2")], clock=clock)
    infra, res = [], []
    vim.subscribe("infra", infra.append)
    vim.subscribe("resource", res.append)
    vim.place(req("fw1"))
    vim.place(req("nat1", vnf_id="nat"))
    assert vim.node_down("n1") == ["fw1", "nat1"]
    assert vim.node_down("n1") == ["fw1", "nat1"]             # no second event
    assert vim.place(req("fw2")) == "n2"
    assert vim.active_servers() == 1                           # n1 is down
    assert vim.node_up("n1") == ["fw1", "nat1"]
    assert [(e.kind, e.subject, e.time, e.detail["instances"]) for e in infra] == [
        ("compute_down", "n1", 103.0, ["fw1", "nat1"]),
        ("compute_up", "n1", 106.0, ["fw1", "nat1"])]
    assert all(isinstance(e, ResourceEvent) for e in res)
    with pytest.raises(NotFoundError, match="unknown compute node 'n9'; known: n1, n2"):
        vim.node_down("n9")


def test_driver_events_update_nodes_with_the_driver_time_and_pass_others_through():
    """A compute_down from the NFVI driver marks the node down keeping the driver's time;
    a link event reaches infra subscribers unchanged."""
    vim = VIM([node("n1"), node("n2")], clock=Clock())
    infra = []
    vim.subscribe("infra", infra.append)
    vim.place(req("fw1"))
    vim.on_infra_event(InfraEvent("compute_down", "n1", 7.5, {"reason": "test"}))
    link = InfraEvent("link_down", "s1-s2", 8.0)
    vim.on_infra_event(link)
    assert not vim.node("n1").up
    assert infra[0].kind == "compute_down" and infra[0].time == 7.5
    assert infra[0].detail == {"reason": "test", "instances": ["fw1"]}
    assert infra[1] is link


def test_usage_reports_per_node_amounts_and_active_servers():
    """usage() gives capacity, used and free per node, its instances, and the active count."""
    vim = VIM([node("n1", vcpu=2, mem=1024, disk=10), node("n2")])
    vim.place(req("a", flavour=Flavour(0.1, 100, 1)))
    vim.place(req("b", flavour=Flavour(0.2, 100, 1)))
    u = vim.usage()
    assert u["active_servers"] == 1
    assert u["nodes"]["n1"] == {
        "up": True, "switch": "s_n1",
        "capacity": {"vcpu": 2.0, "memory_mb": 1024, "disk_gb": 10},
        "used": {"vcpu": 0.3, "memory_mb": 200, "disk_gb": 2},
        "free": {"vcpu": 1.7, "memory_mb": 824, "disk_gb": 8},
        "instances": ["a", "b"]}
    assert u["nodes"]["n2"]["instances"] == []


def test_restore_rebuilds_state_without_events_and_is_all_or_nothing():
    """Records from the NFVO's database become the allocations (even on a down node), with no
    events; a bad record set raises and leaves the previous state."""
    vim = VIM([node("n1"), node("n2", up=False)])
    events = []
    vim.subscribe("resource", events.append)
    vim.place(req("old"))
    vim.restore([("fw1", "fw", "n1", SMALL), ("fw2", "fw", "n2", Flavour(2, 512))])
    assert vim.where("fw2") == "n2" and vim.node("n2").instances == {"fw2": "fw"}
    assert vim.node("n1").free == Resources(3.0, 3840, 39)
    assert vim.node("n1").instances == {"fw1": "fw"}
    assert len(events) == 1                                    # only the first place
    with pytest.raises(PlacementError, match="n1: cannot host big: needs 9 vCPU"):
        vim.restore([("x", "fw", "n1", SMALL), ("big", "fw", "n1", Flavour(9, 1))])
    with pytest.raises(NotFoundError, match="unknown compute node 'n7'"):
        vim.restore([("x", "fw", "n7", SMALL)])
    with pytest.raises(ConflictError, match="restore: instance x listed twice"):
        vim.restore([("x", "fw", "n1", SMALL), ("x", "fw", "n2", SMALL)])
    assert sorted(a.alloc_id for a in vim.allocations()) == ["fw1", "fw2"]
    assert vim.node("n1").free == Resources(3.0, 3840, 39)
    assert vim.release("fw2").node == "n2"                     # restored ones release normally


def test_strategy_can_be_swapped_and_context_uses_the_vim_distance():
    """The strategy is settable by name or object; context() carries the VIM's distance."""
    g = nx.path_graph(["s1", "s2", "s3"])
    vim = VIM([node("n1", switch="s1"), node("n2", switch="s3")], "latency_aware",
              distance=graph_distance(g))
    assert vim.place(req("a"), vim.context(prev_switch="s3", next_switch="s3")) == "n2"
    vim.strategy = "first_fit"
    assert vim.place(req("b"), vim.context(prev_switch="s3")) == "n1"
    vim.strategy = BestFit()
    assert vim.strategy.name == "best_fit"


def test_from_driver_uses_its_nodes_distances_and_events():
    """A VIM built from an NFVI driver takes its compute nodes, switch distances, and
    subscribes to its infrastructure events."""
    class FakeDriver:
        def __init__(self):
            self.subs = []

        def compute_nodes(self):
            return [node("n1", switch="s1"), node("n2", switch="s2")]

        def switch_distance(self, a, b):
            return 0.0 if a == b else 3.0

        def subscribe(self, cb):
            self.subs.append(cb)

    drv = FakeDriver()
    vim = VIM.from_driver(drv, "latency_aware")
    assert vim.place(req("a"), vim.context(prev_switch="s2", next_switch="s2")) == "n2"
    drv.subs[0](InfraEvent("compute_down", "n2", 1.0))
    assert not vim.node("n2").up


def test_concurrent_placements_never_overcommit():
    """Threads placing at once fill a node exactly and then get PlacementError."""
    vim = VIM([node("n1", vcpu=2.0, mem=100_000)])
    ok, refused = [], []

    def worker(k):
        for i in range(10):
            try:
                vim.place(req(f"i{k}-{i}", flavour=Flavour(0.1, 1)))
                ok.append(1)
            except PlacementError:
                refused.append(1)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 20 and len(refused) == 60
    assert vim.node("n1").free.vcpu == 0.0


def test_vim_imports_nothing_from_the_testbed_or_the_emulator():
    """mano.vim stays on its side of the NFVI seam: no testbed, mininet or os_ken."""
    code = ("import sys, mano.vim; bad = [m for m in sys.modules "
            "if m.split('.')[0] in ('testbed', 'mininet', 'os_ken')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
