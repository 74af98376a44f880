"""Unit tests of the controller core: Fabric + specs, checked with a fake data plane.

Every Changes the fabric returns is applied to a FakeDataplane that starts like freshly
connected switches, so the tests prove the diffs as well as the desired state.
"""

from __future__ import annotations

import itertools

import pytest
from fakedp import FakeDataplane  # tests/unit is on sys.path (rootdir-relative, no __init__)

from testbed.controller.logic import (
    COOKIE_MASK,
    SEGMENT_SHIFT,
    TRANSIT_PRIORITY,
    Fabric,
    split_instance,
    split_mask,
)
from testbed.controller.specs import (
    Attachment,
    Bucket,
    Changes,
    FlowSpec,
    ForwardingGraphSpec,
    GroupSpec,
    Link,
)
from testbed.errors import ForwardingGraphError

#        s2
#      /    \          h1@s1, A@s2, B@s3, C@s3, D@s4, h2@s4
#  s1 <      > s4      paths are shortest by hop count, ties broken by switch name
#      \    /
#        s3
SWITCHES = {"s1": 1, "s2": 2, "s3": 3, "s4": 4}
LINKS = [Link("s1", 10, "s2", 10), Link("s1", 11, "s3", 10),
         Link("s2", 11, "s4", 10), Link("s3", 11, "s4", 11)]
ATTS = [Attachment("h1", "s1", 1), Attachment("A", "s2", 1), Attachment("B", "s3", 1),
        Attachment("C", "s3", 2), Attachment("D", "s4", 2), Attachment("h2", "s4", 1),
        Attachment("h3", "s1", 2)]
VNFS = {"A", "B", "C", "D"}
UDP5000 = {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "udp_dst": 5000}
PKT = {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "udp_src": 40000,
       "udp_dst": 5000}


def graph(name="fg1", hops=("h1", "A", "B", "h2"), match=None, **kw) -> ForwardingGraphSpec:
    return ForwardingGraphSpec(name=name, match=match if match is not None else UDP5000,
                               hops=hops, **kw)


class Net:
    """A Fabric and a fake data plane kept in step by applying every Changes."""

    def __init__(self, switches=SWITCHES, links=LINKS, atts=ATTS, vnfs=VNFS, **kw):
        self.fabric = Fabric(switches, links, atts, **kw)
        self.dp = FakeDataplane(switches, links, atts, vnfs=vnfs)
        self.switches = switches

    def do(self, changes: Changes) -> Changes:
        self.dp.apply(changes)
        self.assert_synced()
        return changes

    def assert_synced(self) -> None:
        for dpid in self.switches.values():
            flows, groups = self.fabric.state_for(dpid)
            flows += self.fabric.base_flows(dpid)
            assert self.dp.state(dpid) == (set(flows), set(groups)), f"switch {dpid} differs"

    def link_down(self, a: str, b: str) -> Link:
        """The link dies in the data plane; the controller hears only the first end."""
        link = self.dp.set_link(a, b, up=False)
        return link

    def link_up(self, a: str, b: str) -> Link:
        return self.dp.set_link(a, b, up=True)

    def port(self, switch: str, port: int, up: bool) -> Changes:
        return self.do(self.fabric.port_status(self.switches[switch], port, up))


@pytest.fixture
def net() -> Net:
    return Net()


def path_links(path: list[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(path))


# ----------------------------------------------------------------------------- steering
def test_chain_visits_vnfs_in_order(net):
    """A chain h1 -> A -> B -> h2 delivers the packet to A, then B, then h2."""
    net.do(net.fabric.add_graph(graph()))
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]
    assert net.fabric.graph_status("fg1") == "ok"
    assert net.fabric.graph_paths("fg1") == [["s1", "s2"], ["s2", "s1", "s3"], ["s3", "s4"]]


def test_second_graph_uses_its_own_chain(net):
    """Two graphs with different classifiers each go through their own VNFs only."""
    net.do(net.fabric.add_graph(graph()))
    net.do(net.fabric.add_graph(graph("fg2", ("h1", "C", "D", "h2"), dict(UDP5000, udp_dst=6000))))
    assert net.dp.trace(dict(PKT, udp_dst=6000), "h1") == ["C", "D", "h2"]
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]


def test_unmatched_packet_is_dropped(net):
    """A packet matching no classifier hits the table-miss flow and is dropped."""
    net.do(net.fabric.add_graph(graph()))
    trace = net.dp.trace(dict(PKT, udp_dst=7000), "h1")
    assert trace == ["DROP at s1: no matching flow"]
    assert net.dp.trace(PKT, "h3") == ["DROP at s1: no matching flow"]


def test_prefix_classifier_matches_the_subnet(net):
    """An IPv4 prefix classifier steers every address of the subnet and nothing else."""
    net.do(net.fabric.add_graph(graph(match={"ipv4_dst": "10.0.1.0/24"}, hops=("h1", "D", "h2"))))
    assert net.dp.trace(dict(PKT, ipv4_dst="10.0.1.77"), "h1") == ["D", "h2"]
    assert net.dp.trace(dict(PKT, ipv4_dst="10.0.2.77"), "h1")[0].startswith("DROP")


def test_hops_on_one_switch_are_connected_directly(net):
    """Consecutive hops on one switch get a direct output, no VLAN and no transit flows."""
    changes = net.do(net.fabric.add_graph(graph(hops=("h2", "D", "h2"))))
    assert net.dp.trace(PKT, "h2") == ["D", "h2"]
    assert all(not dict(f.match).get("vlan_vid") and ("push_vlan",) not in f.actions
               for f in changes.flow_adds)
    assert net.fabric.graph_paths("fg1") == [["s4"], ["s4"]]


def test_looping_graph_is_reported_by_the_fake(net):
    """A graph that sends packets back into a VNF forever is caught by the fake's TTL."""
    net.do(net.fabric.add_graph(graph(hops=("B", "C", "B"))))
    assert net.dp.trace(PKT, "B")[-1] == "LOOP at s3"


def test_same_port_hop_uses_in_port_action(net):
    """A next hop on the very port the packet came from is reached with OFPP_IN_PORT."""
    fabric = Fabric(SWITCHES, LINKS, ATTS + [Attachment("A2", "s2", 1)])
    fabric.add_graph(graph(hops=("A", "A2")))
    flows, _ = fabric.state_for(2)
    assert [f.actions for f in flows] == [(("in_port",),)]


def test_every_flow_carries_the_graph_cookie(net):
    """All flows of a graph carry its cookie under COOKIE_MASK, distinct per graph."""
    c1 = net.do(net.fabric.add_graph(graph(protection=True)))
    c2 = net.do(net.fabric.add_graph(graph("fg2", ("h1", "C", "h2"), dict(UDP5000, udp_dst=6000))))
    k1, k2 = net.fabric.graph_cookie("fg1"), net.fabric.graph_cookie("fg2")
    assert k1 != k2 and k1 & ~COOKIE_MASK == 0
    assert {f.cookie & COOKIE_MASK for f in c1.flow_adds} == {k1}
    assert {f.cookie & COOKIE_MASK for f in c2.flow_adds} == {k2}


def test_graph_counters_sum_flow_stats_per_segment(net):
    """graph_counters turns flow-stats rows into ingress/delivered counts, backups included."""
    net.do(net.fabric.add_graph(graph(protection=True)))
    net.do(net.fabric.add_graph(graph("fg2", ("h1", "C", "h2"), dict(UDP5000, udp_dst=6000))))
    for _ in range(3):
        net.dp.trace(PKT, "h1")
    net.link_down("s3", "s4")  # the last segment now runs on its backup path
    net.dp.trace(PKT, "h1")
    net.dp.trace(dict(PKT, udp_dst=6000), "h1")
    c = net.fabric.graph_counters("fg1", net.dp.flow_stats())
    assert (c["ingress_packets"], c["delivered_packets"], c["delivered_bytes"]) == (4, 4, 400)
    assert [(s["in_packets"], s["out_packets"]) for s in c["segments"]] == [(4, 4)] * 3
    c2 = net.fabric.graph_counters("fg2", net.dp.flow_stats())
    assert (c2["ingress_packets"], c2["delivered_packets"]) == (1, 0)  # h2 unreachable


def test_no_backup_path_leaves_a_one_bucket_group():
    """Where no backup path exists the fast-failover group has the primary bucket only."""
    fabric = Fabric({"s1": 1, "s2": 2}, [Link("s1", 10, "s2", 10)],
                    [Attachment("h1", "s1", 1), Attachment("h2", "s2", 1)])
    fabric.add_graph(graph(hops=("h1", "h2"), protection=True))
    assert fabric.graph_backups("fg1") == ["segment 0 at s1"]
    _, groups = fabric.state_for(1)
    assert [len(g.buckets) for g in groups] == [1]
    assert fabric.graph_vlans("fg1") == [("s2", 10, 1)]


def test_events_of_unknown_switches_are_ignored(net):
    """Port events from a dpid not in the wiring change nothing."""
    net.do(net.fabric.add_graph(graph()))
    assert not net.fabric.port_status(99, 1, up=False)


def test_link_states_report_up_and_down(net):
    """link_states lists every link with its current state for the northbound."""
    net.port("s1", 10, up=False)
    states = {(d["a"], d["b"]): d["up"] for d in net.fabric.link_states()}
    assert states == {("s1", "s2"): False, ("s1", "s3"): True, ("s2", "s4"): True,
                      ("s3", "s4"): True}


# ---------------------------------------------------------------------- restoration
def test_link_down_is_restored_on_another_path(net):
    """Without protection, a dead link drops packets until port_status reroutes the graph."""
    net.do(net.fabric.add_graph(graph(hops=("h1", "D", "h2"))))
    assert net.fabric.graph_paths("fg1") == [["s1", "s2", "s4"], ["s4"]]
    link = net.link_down("s2", "s4")
    assert net.dp.trace(PKT, "h1")[0].startswith("DROP")
    changes = net.port("s2", link.a_port, up=False)
    assert changes
    assert net.fabric.graph_paths("fg1") == [["s1", "s3", "s4"], ["s4"]]
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]


def test_second_end_of_a_link_changes_nothing(net):
    """The port-down event from the other end of an already-down link yields no Changes."""
    net.do(net.fabric.add_graph(graph()))
    link = net.link_down("s1", "s2")
    assert net.port("s1", link.a_port, up=False)
    assert not net.port("s2", link.b_port, up=False)
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]
    assert net.port("s1", link.a_port, up=True) == Changes()  # s2's end still down
    net.link_up("s1", "s2")
    assert net.port("s2", link.b_port, up=True)
    assert net.fabric.graph_paths("fg1")[0] == ["s1", "s2"]
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]


def test_attachment_port_event_changes_nothing(net):
    """A port event on an attachment port (not a link) leaves the paths alone."""
    net.do(net.fabric.add_graph(graph()))
    assert not net.port("s2", 1, up=False)


@pytest.mark.parametrize("a,b", [("s1", "s2"), ("s2", "s4")])
def test_fast_failover_before_the_controller_reacts(net, a, b):
    """With protection, a dead primary link is bypassed by the group before any port event."""
    net.do(net.fabric.add_graph(graph(hops=("h1", "D", "h2"), protection=True)))
    assert net.fabric.graph_backups("fg1") == []
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]
    link = net.link_down(a, b)
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]
    net.port(a, link.port_of(a), up=False)
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]
    assert net.fabric.graph_paths("fg1")[0] == ["s1", "s3", "s4"]


def test_hairpin_backup_uses_in_port(net):
    """A backup path that leaves through the arrival port outputs to OFPP_IN_PORT."""
    net.do(net.fabric.add_graph(graph(hops=("h1", "D", "h2"), protection=True)))
    _, groups = net.fabric.state_for(2)  # s2: primary to s4, backup back via s1
    assert len(groups) == 1 and groups[0].type == "ff"
    primary, backup = groups[0].buckets
    assert primary == Bucket(actions=(("output", 11),), watch_port=11)
    assert backup.actions[1] == ("in_port",) and backup.watch_port == 10


def test_protected_chain_survives_each_link_once(net):
    """Every single link failure on a protected chain is bypassed, then restored."""
    net.do(net.fabric.add_graph(graph(protection=True)))
    for link in LINKS:
        net.link_down(link.a, link.b)
        assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"], link
        net.port(link.a, link.a_port, up=False)
        assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"], link
        net.link_up(link.a, link.b)
        net.port(link.a, link.a_port, up=True)
        assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"], link


def test_partition_degrades_then_recovers(net):
    """Cut off from its destination a segment is degraded with no flows, and comes back."""
    net.do(net.fabric.add_graph(graph()))
    for a, b in (("s2", "s4"), ("s3", "s4")):
        link = net.link_down(a, b)
        net.port(a, link.port_of(a), up=False)
    assert net.fabric.graph_status("fg1") == "degraded: no path for segment 2 (B -> h2)"
    assert net.fabric.graph_paths("fg1")[2] == []
    assert net.fabric.state_for(4) == ([], [])
    assert net.dp.trace(PKT, "h1") == ["A", "B", "DROP at s3: no matching flow"]
    net.link_up("s3", "s4")
    net.port("s3", 11, up=True)
    assert net.fabric.graph_status("fg1") == "ok"
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]


def test_switch_down_and_reconnect(net):
    """A dead switch (its neighbours report their ports to it down) has its paths moved
    away; when it comes back and reconnects it is rebuilt from state_for."""
    net.do(net.fabric.add_graph(graph(hops=("h1", "D", "h2"), protection=True)))
    net.dp.dead_ports |= {("s2", 10), ("s2", 11), ("s1", 10), ("s4", 10)}
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]  # node-disjoint backup at s1
    net.port("s1", 10, up=False)
    net.port("s4", 10, up=False)
    assert net.fabric.graph_paths("fg1")[0] == ["s1", "s3", "s4"]
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]
    # Reconnect: the app wipes the switch and installs base_flows + state_for.
    net.dp.dead_ports.clear()
    flows, groups = net.fabric.state_for(2)
    net.dp.flows[2] = {f.key(): f for f in net.fabric.base_flows(2) + flows}
    net.dp.groups[2] = {g.group_id: g for g in groups}
    net.port("s1", 10, up=True)
    net.port("s4", 10, up=True)
    assert net.fabric.graph_paths("fg1")[0] == ["s1", "s2", "s4"]
    assert net.dp.trace(PKT, "h1") == ["D", "h2"]


def test_fabric_snapshot_equals_replayed_changes(net):
    """A fake built from state_for equals one built by replaying every Changes."""
    net.do(net.fabric.add_graph(graph(protection=True)))
    link = net.link_down("s1", "s2")
    net.port("s1", link.a_port, up=False)
    snap = FakeDataplane(net.fabric, LINKS, ATTS, vnfs=VNFS)
    snap.dead_ports = set(net.dp.dead_ports)
    for dpid in SWITCHES.values():
        assert snap.state(dpid) == net.dp.state(dpid)
    assert snap.trace(PKT, "h1") == ["A", "B", "h2"]


def fat_tree(k: int = 4):
    """A hand-built k-ary fat-tree with one host per edge switch (port 1)."""
    switches, links, n = {}, [], 0
    half = k // 2
    cores = [f"c{i}" for i in range(half * half)]
    for c in cores:
        n += 1
        switches[c] = n
    atts = []
    for pod in range(k):
        aggs = [f"a{pod}{i}" for i in range(half)]
        edges = [f"e{pod}{i}" for i in range(half)]
        for s in aggs + edges:
            n += 1
            switches[s] = n
        for i, agg in enumerate(aggs):
            for j, edge in enumerate(edges):
                links.append(Link(agg, 10 + j, edge, 10 + i))
            for j in range(half):
                links.append(Link(cores[i * half + j], 10 + pod, agg, 20 + j))
        for i, edge in enumerate(edges):
            atts.append(Attachment(f"h{pod}{i}", edge, 1))
            atts.append(Attachment(f"v{pod}{i}", edge, 2))
    return switches, links, atts


def test_fat_tree_protected_graph_survives_any_link_on_its_paths():
    """On a k=4 fat-tree every link of a protected graph's paths can fail without loss."""
    switches, links, atts = fat_tree(4)
    net = Net(switches, links, atts, vnfs={"v11", "v21"})
    net.do(net.fabric.add_graph(graph(hops=("h00", "v11", "v21", "h31"), protection=True)))
    want = ["v11", "v21", "h31"]
    assert net.dp.trace(PKT, "h00") == want
    assert net.fabric.graph_backups("fg1") == []
    on_paths = {frozenset(e) for p in net.fabric.graph_paths("fg1") for e in path_links(p)}
    for pair in sorted(sorted(e) for e in on_paths):
        link = net.link_down(*pair)
        assert net.dp.trace(PKT, "h00") == want, pair
        net.port(link.a, link.a_port, up=False)
        assert net.dp.trace(PKT, "h00") == want, pair
        net.link_up(*pair)
        net.port(link.a, link.a_port, up=True)
    assert net.dp.trace(PKT, "h00") == want


# ---------------------------------------------------------------- graph lifecycle
def test_remove_graph_leaves_only_base_flows(net):
    """Removing every graph leaves each switch with the table-miss flow and no groups."""
    net.do(net.fabric.add_graph(graph(protection=True)))
    net.do(net.fabric.add_graph(graph("fg2", ("h1", "C", "h2"), dict(UDP5000, udp_dst=6000))))
    net.do(net.fabric.remove_graph("fg1"))
    net.do(net.fabric.remove_graph("fg2"))
    for dpid in SWITCHES.values():
        assert net.dp.state(dpid) == (set(net.fabric.base_flows(dpid)), set())
    assert net.fabric.graphs() == {}
    assert net.fabric.used_vlans() == set()


def in_links(path: list[str], links=LINKS) -> list[tuple[str, int]]:
    """The (switch, in_port) each link of a switch path enters by (first link between two
    switches, as the fabric uses)."""
    out = []
    for a, b in itertools.pairwise(path):
        link = next(lk for lk in links if {lk.a, lk.b} == {a, b})
        out.append((b, link.port_of(b)))
    return out


def pair_vids(fabric: Fabric, name: str = "fg1", links=LINKS) -> dict:
    """Per (from, to) pair of a graph: {(switch, in_port): vid} along its path."""
    return {(p["from"], p["to"]): dict(zip(in_links(p["path"], links), p["vlans"], strict=True))
            for p in fabric.graph_pairs(name)}


def test_vlans_are_stable_across_reroute_and_freed(net):
    """Pairs whose path stays keep their VLAN ids across a reroute, rerouted pairs hold ids
    on their new links only (those of the links they left are free again), and removing
    the graph frees every id."""
    net.do(net.fabric.add_graph(graph(protection=True)))
    before = pair_vids(net.fabric)
    link = net.link_down("s1", "s2")
    net.port("s1", link.a_port, up=False)
    after = pair_vids(net.fabric)
    assert after[("B", "h2")] == before[("B", "h2")]            # path s3-s4 unchanged
    assert after[("h1", "A")] != before[("h1", "A")]
    gv = net.fabric.graph_vlans("fg1")
    assert len(set(gv)) == len(gv) and set(gv) == net.fabric.used_vlans()
    assert not any(sw == "s2" and port == 10 for sw, port, _ in gv)  # the dead link's ids
    net.do(net.fabric.add_graph(graph(hops=("h1", "h2"))))  # one segment now
    assert net.fabric.used_vlans() == {(sw, port, v) for (sw, port), v in
                                       pair_vids(net.fabric)[("h1", "h2")].items()}
    net.do(net.fabric.remove_graph("fg1"))
    assert net.fabric.used_vlans() == set()


def test_vlan_exhaustion_names_the_link_and_is_refused_cleanly():
    """A graph needing a VLAN id on a link whose pool is full is refused with an error
    naming that link (both ends and ports); it leaks no id and leaves the fabric as it
    was, also when the graph replaced (scaled out) is an existing one."""
    fabric = Fabric(SWITCHES, LINKS, ATTS, vlan_range=(1, 1))
    fabric.add_graph(graph(hops=("h1", "A", "h2")))          # s1->s2, s2->s4: vid 1 each
    used = fabric.used_vlans()
    assert used == {("s2", 10, 1), ("s4", 10, 1)}
    state = {d: fabric.state_for(d) for d in SWITCHES.values()}
    with pytest.raises(ForwardingGraphError, match=r"forwarding graph 'fg2': segment 0 "
                       r"\(h3 -> D\): no free VLAN id left on link s1:10 -> s2:10 "
                       r"\(1..1 all in use\)"):
        fabric.add_graph(graph("fg2", ("h3", "D", "h2"), dict(UDP5000, udp_dst=6000)))
    assert fabric.used_vlans() == used and "fg2" not in fabric.graphs()
    fabric.add_attachment(Attachment("A2", "s2", 3))
    with pytest.raises(ForwardingGraphError, match=r"link s2:11 -> s4:10"):  # A2 -> h2
        fabric.add_graph(graph(hops=("h1", ("A", "A2"), "h2")))
    assert fabric.used_vlans() == used
    assert fabric.graphs()["fg1"].hops == ("h1", "A", "h2")
    assert {d: fabric.state_for(d) for d in SWITCHES.values()} == state
    # Disjoint links still take id 1: the pools are per link, not per fabric.
    fabric.add_graph(graph("fg3", ("h2", "C", "h1"), dict(UDP5000, udp_dst=7000)))
    assert {v for _, _, v in fabric.used_vlans()} == {1}


def test_replacing_a_graph_sends_only_the_difference(net):
    """Re-adding an identical graph is a no-op; changing the classifier swaps classifiers only."""
    net.do(net.fabric.add_graph(graph()))
    assert not net.fabric.add_graph(graph())
    changes = net.do(net.fabric.add_graph(graph(match=dict(UDP5000, udp_dst=5001))))
    assert len(changes.flow_adds) == 3 and len(changes.flow_dels) == 3
    assert all(f.priority < TRANSIT_PRIORITY for f in changes.flow_adds + changes.flow_dels)
    assert net.dp.trace(dict(PKT, udp_dst=5001), "h1") == ["A", "B", "h2"]
    assert net.dp.trace(PKT, "h1")[0].startswith("DROP")


def test_moved_attachment_reinstalls_its_graphs(net):
    """A VNF port that moves to another switch is reached at its new place."""
    net.do(net.fabric.add_graph(graph()))
    net.dp.attachments["A"] = Attachment("A", "s4", 3)
    net.dp.att_at = {(a.switch, a.port): a.name for a in net.dp.attachments.values()}
    net.do(net.fabric.add_attachment(Attachment("A", "s4", 3)))
    assert net.fabric.graph_paths("fg1")[0] == ["s1", "s2", "s4"]
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]


def test_attachment_in_use_cannot_be_removed(net):
    """remove_attachment is refused while a graph uses it, and allowed after."""
    net.do(net.fabric.add_graph(graph()))
    with pytest.raises(ForwardingGraphError, match="'A' is used by forwarding graph.*fg1"):
        net.fabric.remove_attachment("A")
    net.do(net.fabric.remove_graph("fg1"))
    assert not net.fabric.remove_attachment("A")


def test_unknown_hop_names_the_known_attachments(net):
    """A graph naming an unknown hop is refused with the list of known attachments."""
    with pytest.raises(ForwardingGraphError, match=r"unknown hop\(s\) 'X'; known attachments: A, B"):
        net.fabric.add_graph(graph(hops=("h1", "X", "h2")))


def test_graph_names_follow_graphs_coming_and_going(net):
    """graph_names lists the graphs sorted, after graphs come and go and after a refused
    one; changing the list it gave changes nothing."""
    f = net.fabric
    f.add_graph(graph("fg2", match={"ip_proto": 17, "udp_dst": 5002}))
    f.add_graph(graph("fg1", match={"ip_proto": 17, "udp_dst": 5001}))
    names = f.graph_names()
    assert names == ["fg1", "fg2"]
    names.append("x")
    with pytest.raises(ForwardingGraphError):
        f.add_graph(graph("fg0", hops=("h1", "X", "h2")))
    assert f.graph_names() == ["fg1", "fg2"]
    f.remove_graph("fg2")
    assert f.graph_names() == ["fg1"]
    f.add_graph(graph("fg3", match={"ip_proto": 17, "udp_dst": 5003}))
    assert f.graph_names() == ["fg1", "fg3"]


def test_clashing_classifier_is_refused(net):
    """A second graph with the same classifier at the same port is refused, not overwritten."""
    net.do(net.fabric.add_graph(graph()))
    with pytest.raises(ForwardingGraphError, match="overlaps forwarding graph 'fg1'"):
        net.fabric.add_graph(graph("fg2", ("h1", "C", "h2")))
    net.do(net.fabric.add_graph(graph("fg2", ("h1", "C", "h2"), priority=200)))
    assert net.dp.trace(PKT, "h1") == ["C", "h2"]


def test_changes_are_ordered_safely():
    """ordered(), make before break: new groups, transit/deliver flows, then changed groups
    (a group switching paths only once the new path's transit flows exist), classifiers,
    deletes, group deletes."""
    g = GroupSpec(1, 1, "ff", (Bucket((("output", 2),), 2),))
    cls = FlowSpec(1, 100, {"in_port": 1}, (("group", 1),))
    transit = FlowSpec(2, 1000, {"vlan_vid": 5}, (("output", 3),))
    old_cls = FlowSpec(1, 100, {"in_port": 9}, (("output", 2),))
    old_transit = FlowSpec(2, 1000, {"vlan_vid": 6}, (("output", 3),))
    ch = Changes(group_adds=[g], group_mods=[g], flow_adds=[cls, transit],
                 flow_dels=[old_transit, old_cls], group_dels=[g])
    assert [(op, s) for op, s in ch.ordered()] == [
        ("group_add", g), ("flow_add", transit), ("group_mod", g), ("flow_add", cls),
        ("flow_del", old_cls), ("flow_del", old_transit), ("group_del", g)]
    assert ch and len(ch) == 7 and not Changes()


# ------------------------------------------------------------------------ from_dict
def test_from_dict_round_trip():
    """from_dict normalises prefixes and to_dict gives the same JSON back."""
    d = {"name": "web-1", "match": {"ip_proto": 6, "ipv4_dst": "10.0.0.0/24", "tcp_dst": 80},
         "hops": ["h1", "fw", "h2"], "protection": True, "priority": 300}
    fg = ForwardingGraphSpec.from_dict(d)
    assert dict(fg.match)["ipv4_dst"] == ("10.0.0.0", "255.255.255.0")
    assert fg.to_dict() == d
    assert ForwardingGraphSpec.from_dict(fg.to_dict()) == fg
    assert dict(ForwardingGraphSpec.from_dict(
        {"name": "x", "match": {"ipv4_src": "10.0.0.1/32"}, "hops": ["a", "b"]}).match) == {
        "ipv4_src": "10.0.0.1"}


GOOD = {"name": "fg", "match": {"ip_proto": 17, "udp_dst": 5000}, "hops": ["h1", "A", "h2"]}


@pytest.mark.parametrize("change,message", [
    ({"match": {"udp_port": 1}},
     "match.udp_port: unknown key 'udp_port'; known: ip_proto, ipv4_src"),
    ({"match": {"tcp_dst": 80}}, r"match.tcp_dst: tcp_dst=80 needs ip_proto 6 \(got none\)"),
    ({"match": {"ip_proto": 6, "udp_dst": 53}}, r"udp_dst=53 needs ip_proto 17 \(got 6\)"),
    ({"match": {"ipv4_dst": "10.0.0.300"}}, "match.ipv4_dst: '10.0.0.300' is not a valid IPv4"),
    ({"match": {"ipv4_dst": "10.0.0.1/24"}}, "has host bits set"),
    ({"match": {"ipv4_src": "10.0.0.0/33"}}, "not a valid IPv4 address or prefix"),
    ({"match": {"ip_proto": 17, "udp_dst": 70000}},
     "match.udp_dst: expected an integer 0..65535, got 70000"),
    ({"match": {"ip_proto": 17, "udp_src": "53"}},
     "match.udp_src: expected an integer 0..65535, got '53'"),
    ({"match": {"ip_proto": 300}}, "match.ip_proto: expected an integer 0..255, got 300"),
    ({"match": {"eth_type": 0x86DD}}, r"only IPv4 \(0x0800\)"),
    ({"hops": ["h1"]}, "needs at least 2 hops"),
    ({"hops": "h1"}, "hops: expected a list of attachment names, got a string 'h1'"),
    ({"hops": ["h1", "A", "A", "h2"]}, "hop 'A' appears twice in a row"),
    ({"hops": ["h1", "A", "B", "A", "h2"]}, "hop 'A' is a source twice"),
    ({"name": "bad name"},
     r"name: 'bad name' is not a valid graph name: expected \[A-Za-z0-9_.-\]\{1,64\}"),
    ({"name": "x" * 65}, "is not a valid graph name"),
    ({"colour": "red"}, "colour: unknown key 'colour'; known: name, hops, match"),
    ({"protection": "yes"}, "protection: expected true or false, got 'yes'"),
    ({"priority": 1000}, "priority: expected an integer 1..899, got 1000"),
    ({"match": [1, 2]}, r"match: expected a mapping with keys ip_proto, .*, got a list \[1, 2\]"),
])
def test_from_dict_rejects_bad_graphs(change, message):
    """Each malformed northbound graph raises ForwardingGraphError saying what is wrong."""
    with pytest.raises(ForwardingGraphError, match=message):
        ForwardingGraphSpec.from_dict({**GOOD, **change})


def test_from_dict_names_the_graph_and_missing_keys():
    """Errors name the graph, and a missing required key is reported."""
    with pytest.raises(ForwardingGraphError, match="forwarding graph 'fg': .*missing required key 'hops'"):
        ForwardingGraphSpec.from_dict({"name": "fg"})


# ------------------------------------------------------- scale-out (multi-instance hops)
# A2 is a second instance of A on another switch; A3 one on h1's switch (direct delivery).
SCALE_ATTS = ATTS + [Attachment("A2", "s3", 3), Attachment("A3", "s1", 3),
                     Attachment("nat", "s2", 2), Attachment("nat2", "s3", 4)]
SCALE_VNFS = VNFS | {"A2", "A3", "nat", "nat2"}


@pytest.fixture
def snet() -> Net:
    return Net(atts=SCALE_ATTS, vnfs=SCALE_VNFS)


def flows_of(n: int = 64) -> list[dict]:
    """n distinct UDP flows of the graph's classifier (different source ports)."""
    return [dict(PKT, udp_src=41000 + k) for k in range(n)]


def shares(net: Net, pkts: list[dict], first_hop_index: int = 0) -> dict[str, int]:
    """Trace each packet from h1 and count which attachment it reached at that position."""
    out: dict[str, int] = {}
    for p in pkts:
        trace = net.dp.trace(p, "h1")
        out[trace[first_hop_index]] = out.get(trace[first_hop_index], 0) + 1
    return out


def seg_flows(changes: Changes, fabric: Fabric, name: str, seg: int) -> list[FlowSpec]:
    base = fabric.graph_cookie(name)
    return [f for f in changes.flow_adds + changes.flow_dels
            if f.cookie & COOKIE_MASK == base and (f.cookie >> 8) & 0xFF == seg]


def split_flows(fabric: Fabric, switch: str, in_port: int) -> list[FlowSpec]:
    """The masked classifier flows (a udp_src/tcp_src (value, mask)) at one port."""
    flows, _ = fabric.state_for(SWITCHES[switch])
    return sorted((f for f in flows if dict(f.match).get("in_port") == in_port
                   and any(isinstance(v, tuple) for k, v in f.match if k.endswith("_src")
                           and not k.startswith("ipv4"))),
                  key=lambda f: repr(f.match))


# A graph whose classifier leaves the protocol open: a scaled-out hop uses a select group.
ANY_PROTO = {"ipv4_dst": "10.0.0.2"}


def hosts_of(n: int = 64) -> list[dict]:
    """n UDP flows from distinct source addresses (what OVS's select hash does tell apart)."""
    return [dict(PKT, ipv4_src=f"10.0.1.{k}") for k in range(n)]


def test_scale_out_splits_flows_across_instances(snet):
    """A UDP hop with two instances gets two masked classifier flows instead of a select
    group (OVS would not hash UDP ports): the low bit of udp_src picks the instance, so
    distinct flows reach both, each flow always the same one, and every packet continues
    along the rest of the chain."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"))))
    flows, groups = snet.fabric.state_for(1)
    assert groups == []
    split = split_flows(snet.fabric, "s1", 1)
    # masked flows have the graph's priority, like the classifier they replace
    assert [(f.priority, dict(f.match)["udp_src"]) for f in split] == [(100, (0, 1)),
                                                                       (100, (1, 1))]
    # The plain classifier is gone; what else s1 holds is the A->B transit flow.
    assert all(dict(f.match).get("vlan_vid") for f in flows if f not in split)
    assert all(dict(f.match)["udp_dst"] == 5000 for f in split)
    traces = {p["udp_src"]: snet.dp.trace(p, "h1") for p in flows_of()}
    assert {t[0] for t in traces.values()} == {"A", "A2"}
    assert all(t[0] == ("A", "A2")[port % 2] for port, t in traces.items())
    assert all(t[1:] == ["B", "h2"] for t in traces.values()), traces
    for p in flows_of():  # per flow: the same instance again
        assert snet.dp.trace(p, "h1")[0] == traces[p["udp_src"]][0]
    assert len([p for p in snet.fabric.graph_pairs("fg1") if p["segment"] == 0]) == 2


def test_udp_split_across_three_instances(snet):
    """Three instances: 5 bits of udp_src, 32 masked flows; value v goes to instance v % 3
    in sorted order (11, 11 and 10 of the 32 values), and the counters are exact without
    group stats (A3 is on h1's switch)."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2", "A3"], "B", "h2"))))
    split = split_flows(snet.fabric, "s1", 1)
    assert sorted(dict(f.match)["udp_src"] for f in split) == [(v, 31) for v in range(32)]
    assert snet.fabric.state_for(1)[1] == []
    order = ("A", "A2", "A3")
    got = shares(snet, flows_of())
    assert got == {"A": 22, "A2": 22, "A3": 20}    # 64 flows from port 41000
    c = snet.fabric.graph_counters("fg1", snet.dp.flow_stats())
    assert c["exact"] is True
    assert {x: c["instances"][x]["delivered_packets"] for x in order} == got
    assert {x: c["instances"][x]["returned_packets"] for x in order} == got
    assert (c["ingress_packets"], c["delivered_packets"]) == (64, 64)
    for p in flows_of():
        assert snet.dp.trace(p, "h1") == [order[(p["udp_src"] & 31) % 3], "B", "h2"], p


@pytest.mark.parametrize("n", range(1, 9))
def test_every_instance_gets_its_share_within_ten_percent(n):
    """For 1 to 8 instances, the split gives each a share of the source-port values (and so
    of many flows with consecutive source ports) within 10 % of 1/n."""
    mask = split_mask(n)
    values = range(mask + 1)
    shares_ = [sum(1 for v in values if split_instance(v, n) == i) / len(values)
               for i in range(n)]
    assert all(abs(s * n - 1) <= 0.10 + 1e-9 for s in shares_), shares_
    ports = range(20000, 20000 + 2 * (mask + 1))       # consecutive flows of a generator
    per = [sum(1 for p in ports if split_instance(p, n) == i) / len(ports) for i in range(n)]
    assert all(abs(s * n - 1) <= 0.10 + 1e-9 for s in per), per


def test_tcp_split_on_tcp_src(snet):
    """A TCP classifier splits on tcp_src the same way."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "h2"),
                                        match={"ip_proto": 6, "tcp_dst": 80})))
    split = split_flows(snet.fabric, "s1", 1)
    assert [(f.priority, dict(f.match)["tcp_src"]) for f in split] == [(100, (0, 1)),
                                                                       (100, (1, 1))]
    pkts = [{"ip_proto": 6, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "tcp_src": port,
             "tcp_dst": 80} for port in range(50000, 50016)]
    assert [snet.dp.trace(p, "h1")[0] for p in pkts] == ["A", "A2"] * 8


def test_graph_without_protocol_keeps_a_select_group(snet):
    """With the protocol left open a scaled-out hop still gets a select group, which OVS
    balances per address pair (and TCP flow) only: UDP flows between one pair of addresses
    all land on one instance, flows of different sources are spread."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"), match=ANY_PROTO)))
    _, groups = snet.fabric.state_for(1)
    assert [(g.type, [b.weight for b in g.buckets]) for g in groups] == [("select", [1, 1])]
    assert split_flows(snet.fabric, "s1", 1) == []
    assert len(shares(snet, flows_of())) == 1
    assert set(shares(snet, hosts_of())) == {"A", "A2"}
    assert all(snet.dp.trace(p, "h1")[1:] == ["B", "h2"] for p in hosts_of())


@pytest.mark.parametrize("hop,port,want", [
    (["A", "A2"], 41001, "A2"), (["A", "A2"], 41000, "A"),
    (["A", "A2", "A3"], 41003, "A3"), (["A", "A2", "A3"], 41001, "A"),
    (["A", "A2", "A3"], 41002, "A2")])
def test_fixed_source_port_sends_everything_to_one_instance(snet, hop, port, want):
    """A classifier that fixes udp_src is one flow: no split, no group; the plain classifier
    sends it to the instance the port's low bits choose (as the split would)."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", hop, "B", "h2"),
                                        match=dict(UDP5000, udp_src=port))))
    flows, groups = snet.fabric.state_for(1)
    assert groups == [] and split_flows(snet.fabric, "s1", 1) == []
    assert [f.priority for f in flows if dict(f.match).get("in_port") == 1] == [100]
    assert all(snet.dp.trace(dict(PKT, udp_src=port), "h1") == [want, "B", "h2"]
               for _ in range(3))
    assert snet.dp.trace(dict(PKT, udp_src=port + 1), "h1")[0].startswith("DROP")
    c = snet.fabric.graph_counters("fg1", snet.dp.flow_stats())
    assert c["exact"] is True and c["instances"][want]["delivered_packets"] == 3


@pytest.mark.parametrize("match", [UDP5000, dict(UDP5000, udp_src=41000)])
def test_rewriting_source_feeding_a_scaled_hop_is_split(snet, match):
    """A rewriting VNF's classifier (in_port + IPv4) gets the protocol added to its masked
    flows (the OXM prerequisite of udp_src), at its priority; the split uses the ports as
    rewritten, even when the graph's classifier fixes the source port."""
    snet.dp.hooks["nat"] = lambda p: dict(p, ipv4_src="203.0.113.1", udp_src=p["udp_src"] + 7)
    # A and A2 keep the translated port: they are classified by port alone too.
    snet.do(snet.fabric.add_graph(graph(hops=("h1", "nat", ["A", "A2"], "h2"), match=match,
                                        rewrites=["nat", "A", "A2"])))
    split = split_flows(snet.fabric, "s2", 2)
    assert [(f.priority, dict(f.match)) for f in split] == [
        (100, {"in_port": 2, "eth_type": 0x0800, "ip_proto": 17, "udp_src": (v, 1),
               "vlan_vid": 0})
        for v in (0, 1)]
    for port in range(41000, 41008):
        t = snet.dp.trace(dict(PKT, udp_src=port), "h1")
        if "udp_src" in match and port != 41000:
            assert t[0].startswith("DROP")
        else:
            assert t == ["nat", ("A", "A2")[(port + 7) % 2], "h2"]


def test_split_masks_reach_os_ken_as_masked_oxm():
    """ofmsg hands (value, mask) pairs to OFPMatch unchanged; os-ken encodes them masked."""
    ofproto = pytest.importorskip("os_ken.ofproto.ofproto_v1_3")
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    from testbed.controller import ofmsg

    class Dp:
        pass

    dp = Dp()
    dp.ofproto, dp.ofproto_parser = ofproto, parser
    spec = FlowSpec(1, 105, {"in_port": 1, "eth_type": 0x0800, "ip_proto": 17,
                             "ipv4_dst": ("10.0.0.0", "255.255.255.0"), "udp_src": (1, 3),
                             "vlan_vid": 5}, (("output", 2),))
    match = ofmsg.flow_add(dp, spec).match
    buf = bytearray()
    match.serialize(buf, 0)
    back = parser.OFPMatch.parser(bytes(buf), 0)
    assert back["udp_src"] == (1, 3)
    assert back["ipv4_dst"] == ("10.0.0.0", "255.255.255.0")
    assert back["vlan_vid"] == 5 | ofproto.OFPVID_PRESENT
    assert back["ip_proto"] == 17 and back["in_port"] == 1


def test_counters_report_each_instance_share(snet):
    """graph_counters gives per-instance delivered/returned counts matching the traces."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"))))
    got = shares(snet, flows_of())
    c = snet.fabric.graph_counters("fg1", snet.dp.flow_stats())
    assert c["exact"] is True
    assert {x: c["instances"][x]["delivered_packets"] for x in ("A", "A2")} == got
    assert {x: c["instances"][x]["returned_packets"] for x in ("A", "A2")} == got
    assert c["instances"]["B"]["delivered_packets"] == 64
    assert (c["ingress_packets"], c["delivered_packets"]) == (64, 64)
    assert [s["out_packets"] for s in c["segments"]] == [64, 64, 64]
    assert c["segments"][0]["to"] == ["A", "A2"]


def test_same_switch_instance_is_counted_from_its_split_flow(snet):
    """An instance reached straight from a masked classifier flow (same switch) is counted
    from that flow's cookie: exact without group stats."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A3"], "B", "h2"))))
    got = shares(snet, flows_of())
    assert got == {"A": 32, "A3": 32}
    c = snet.fabric.graph_counters("fg1", snet.dp.flow_stats())
    assert c["exact"] is True
    assert {x: c["instances"][x]["delivered_packets"] for x in ("A", "A3")} == got
    assert {x: c["instances"][x]["returned_packets"] for x in ("A", "A3")} == got
    assert (c["segments"][0]["in_packets"], c["segments"][0]["out_packets"]) == (64, 64)
    assert c["delivered_packets"] == 64


def test_same_switch_instances_are_counted_from_group_stats(snet):
    """Without a fixed protocol a select group balances; an instance reached straight from
    it is counted from group stats."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A3"], "B", "h2"), match=ANY_PROTO)))
    got = shares(snet, hosts_of())
    assert set(got) == {"A", "A3"}
    c = snet.fabric.graph_counters("fg1", snet.dp.flow_stats())
    assert c["exact"] is False and c["instances"]["A3"]["delivered_packets"] == 0
    c = snet.fabric.graph_counters("fg1", snet.dp.flow_stats(), snet.dp.group_stats())
    assert c["exact"] is True
    assert {x: c["instances"][x]["delivered_packets"] for x in ("A", "A3")} == got
    assert c["segments"][0]["out_packets"] == 64


def test_both_sides_scaled_out(snet):
    """Between two scaled-out hops every instance of each hop gets a share of the flows and
    every (source, destination) pair has its own VLAN path. (The switches hash the same
    5-tuple at both hops, as OVS does, so which pairs carry traffic is correlated.)"""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], ["B", "C", "D"], "h2"))))
    first, second = set(), set()
    for p in flows_of(128):
        t = snet.dp.trace(p, "h1")
        assert t[0] in ("A", "A2") and t[1] in ("B", "C", "D") and t[2:] == ["h2"], t
        first.add(t[0])
        second.add(t[1])
    assert first == {"A", "A2"} and second == {"B", "C", "D"}
    pairs = snet.fabric.graph_pairs("fg1")
    assert len(pairs) == 2 + 6 + 3
    assert all(p["path"] and len(p["vlans"]) == len(p["path"]) - 1 for p in pairs)
    gv = snet.fabric.graph_vlans("fg1")
    assert len(set(gv)) == len(gv) == sum(len(p["vlans"]) for p in pairs)


def test_scale_out_and_in_are_diffs(snet):
    """UDP: 1 -> 2 instances adds the new pairs and swaps the feeding classifier for its two
    masked flows; 2 -> 1 swaps back and removes exactly the new pairs; nothing else (no
    group, no other classifier, not the last segment) is touched, and the switches end as
    before with the same VLANs."""
    fab = snet.fabric
    snet.do(fab.add_graph(graph(hops=("h1", "A", "B", "h2"))))
    before = {d: fab.state_for(d) for d in SWITCHES.values()}
    old_flows = {f for fl, _ in before.values() for f in fl}
    vids = fab.graph_vlans("fg1")
    old_pairs = [p["vlans"] for p in fab.graph_pairs("fg1")]
    out = snet.do(fab.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"))))
    assert not (out.group_adds or out.group_mods or out.group_dels)
    h1_cls = [f for f in old_flows if f.dpid == 1 and dict(f.match).get("in_port") == 1]
    assert out.flow_dels == h1_cls  # the plain classifier, replaced by the masked ones
    # Classifiers added: the two masked ones at h1 and A2's (returning packets); the other
    # new flows are the deliver/transit flows of A2's pairs (h1->A2, A2->B) only.
    added_cls = [f for f in out.flow_adds if not dict(f.match).get("vlan_vid")]
    assert len(split_flows(fab, "s1", 1)) == 2
    assert sorted(added_cls, key=repr) == sorted(
        split_flows(fab, "s1", 1) + [f for f in fab.state_for(3)[0]
                                     if dict(f.match).get("in_port") == 3], key=repr)
    assert all(f.key() not in {o.key() for o in old_flows} for f in out.flow_adds)
    assert len(out.flow_adds) == len(added_cls) + 1  # h1->A2 deliver at s3 (A2->B is local)
    assert seg_flows(out, fab, "fg1", 2) == []
    pairs = {(p["from"], p["to"]): p["vlans"] for p in fab.graph_pairs("fg1")}
    assert [pairs[("h1", "A")], pairs[("A", "B")], pairs[("B", "h2")]] == old_pairs
    assert len(pairs) == 5 and len(set(fab.graph_vlans("fg1"))) == len(fab.graph_vlans("fg1"))
    back = snet.do(fab.add_graph(graph(hops=("h1", ["A"], "B", "h2"))))
    assert not (back.group_adds or back.group_mods or back.group_dels)
    assert back.flow_adds == h1_cls
    assert sorted(back.flow_dels, key=repr) == sorted(out.flow_adds, key=repr)
    assert {d: fab.state_for(d) for d in SWITCHES.values()} == before
    assert fab.graph_vlans("fg1") == vids


def test_scale_out_and_in_are_diffs_with_a_select_group(snet):
    """Protocol left open: 1 -> 2 instances only adds the new pairs and a select group and
    rewrites the feeding classifier; 2 -> 1 removes exactly those; the last segment is
    never touched and the switches end as before."""
    fab = snet.fabric
    snet.do(fab.add_graph(graph(hops=("h1", "A", "B", "h2"), match=ANY_PROTO)))
    before = {d: fab.state_for(d) for d in SWITCHES.values()}
    vids = fab.graph_vlans("fg1")
    old_pairs = [p["vlans"] for p in fab.graph_pairs("fg1")]
    out = snet.do(fab.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"), match=ANY_PROTO)))
    assert not out.flow_dels and not out.group_dels and not out.group_mods
    assert [g.type for g in out.group_adds] == ["select"]
    assert seg_flows(out, fab, "fg1", 2) == []
    old_flows = {f for fl, _ in before.values() for f in fl}
    rewritten = [f for f in out.flow_adds if f.key() in {o.key() for o in old_flows}]
    assert [dict(f.match).get("in_port") for f in rewritten] == [1]  # h1's classifier only
    # Old pairs keep their VLANs; the new ones get fresh ids.
    pairs = {(p["from"], p["to"]): p["vlans"] for p in fab.graph_pairs("fg1")}
    assert [pairs[("h1", "A")], pairs[("A", "B")], pairs[("B", "h2")]] == old_pairs
    assert len(pairs) == 5 and len(set(fab.graph_vlans("fg1"))) == len(fab.graph_vlans("fg1"))
    back = snet.do(fab.add_graph(graph(hops=("h1", ["A"], "B", "h2"), match=ANY_PROTO)))
    assert seg_flows(back, fab, "fg1", 2) == []
    assert [g.type for g in back.group_dels] == ["select"]
    assert {d: fab.state_for(d) for d in SWITCHES.values()} == before
    assert fab.graph_vlans("fg1") == vids


def test_scale_in_drains_the_removed_instance(snet):
    """After an instance is removed from the hop every flow reaches the remaining one."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2", "A3"], "B", "h2"))))
    assert set(shares(snet, flows_of())) == {"A", "A2", "A3"}
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A2", "A3"], "B", "h2"))))
    assert set(shares(snet, flows_of())) == {"A2", "A3"}
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A2"], "B", "h2"))))
    assert shares(snet, flows_of()) == {"A2": 64}
    assert all(snet.dp.trace(p, "h1") == ["A2", "B", "h2"] for p in flows_of(8))
    assert not snet.fabric.remove_attachment("A")  # no longer used


def test_instance_leaving_the_select_group_is_never_reached(snet):
    """Flows split to the remaining instance keep their instance across 2 -> 3 -> 2."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"))))
    before = {p["udp_src"]: snet.dp.trace(p, "h1")[0] for p in flows_of()}
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2", "A3"], "B", "h2"))))
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "B", "h2"))))
    after = {p["udp_src"]: snet.dp.trace(p, "h1")[0] for p in flows_of()}
    assert after == before  # same buckets, same hash: deterministic


def test_protected_scaled_out_hop_survives_each_link(snet):
    """With protection, the masked classifier flows end in per-pair fast-failover groups:
    every single link failure is bypassed before and after the controller reacts, for every
    flow."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], "D", "h2"), protection=True)))
    _, groups = snet.fabric.state_for(1)
    assert {g.type for g in groups} == {"ff"}
    split = split_flows(snet.fabric, "s1", 1)
    assert len(split) == 2 and all(f.actions[-1][0] == "group" for f in split)
    assert snet.fabric.graph_backups("fg1") == []
    pkts = flows_of(32)
    for link in LINKS:
        snet.link_down(link.a, link.b)
        assert all(snet.dp.trace(p, "h1")[1:] == ["D", "h2"] for p in pkts), link
        snet.port(link.a, link.a_port, up=False)
        assert all(snet.dp.trace(p, "h1")[1:] == ["D", "h2"] for p in pkts), link
        snet.link_up(link.a, link.b)
        snet.port(link.a, link.a_port, up=True)
    assert set(shares(snet, pkts)) == {"A", "A2"}
    snet.do(snet.fabric.add_graph(graph(hops=("h1", "A", "D", "h2"), protection=True)))
    snet.do(snet.fabric.remove_graph("fg1"))
    for dpid in SWITCHES.values():
        assert snet.dp.state(dpid) == (set(snet.fabric.base_flows(dpid)), set())
    assert snet.fabric.used_vlans() == set()


def test_unreachable_instance_leaves_the_select_group(snet):
    """An instance cut off from the source gets no share (with only one left, the plain
    classifier sends everything to it); the others serve."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A3"], "B", "h2"))))
    for a, b in (("s1", "s2"), ("s2", "s4")):
        link = snet.link_down(a, b)
        snet.port(a, link.port_of(a), up=False)
    assert snet.fabric.graph_status("fg1").startswith("degraded: no path for segment 0 (h1 -> A)")
    assert shares(snet, flows_of()) == {"A3": 64}


def test_snapshot_of_scaled_graph_equals_replay(snet):
    """A fake built from state_for (select and ff groups) equals one fed by the Changes."""
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["A", "A2"], ["B", "C"], "h2"),
                                        protection=True)))
    snap = FakeDataplane(snet.fabric, LINKS, SCALE_ATTS, vnfs=SCALE_VNFS)
    for dpid in SWITCHES.values():
        assert snap.state(dpid) == snet.dp.state(dpid)


def test_changes_order_chained_groups():
    """A select group naming a fast-failover group is added after it and deleted before it."""
    ff = GroupSpec(1, 1, "ff", (Bucket((("output", 2),), 2),))
    sel = GroupSpec(1, 2, "select", (Bucket((("push_vlan",), ("group", 1)), weight=1),))
    ch = Changes(group_adds=[sel, ff], group_dels=[ff, sel])
    assert [(op, g.group_id) for op, g in ch.ordered()] == [
        ("group_add", 1), ("group_add", 2), ("group_del", 2), ("group_del", 1)]


# ---------------------------------------------------------------- header rewrites
def nat_hook(pkt: dict) -> dict:
    """A fake source NAT: every packet leaves with the public source address."""
    return dict(pkt, ipv4_src="203.0.113.1")


def test_rewriting_vnf_breaks_the_classifier_without_the_option(snet):
    """A NAT that rewrites ipv4_src loses its packets unless the graph says it rewrites."""
    snet.dp.hooks["nat"] = nat_hook
    snet.do(snet.fabric.add_graph(graph(hops=("h1", "nat", "h2"))))
    assert snet.dp.trace(PKT, "h1") == ["nat", "DROP at s2: no matching flow"]
    snet.do(snet.fabric.add_graph(graph(hops=("h1", "nat", "h2"), rewrites=["nat"])))
    assert snet.dp.trace(PKT, "h1") == ["nat", "h2"]
    flows, _ = snet.fabric.state_for(2)
    cls = [f for f in flows if dict(f.match).get("in_port") == 2]
    assert [(dict(f.match), f.priority) for f in cls] == [
        ({"in_port": 2, "eth_type": 0x0800, "vlan_vid": 0}, 100)]


def test_rewrites_with_scaled_out_nat(snet):
    """Each NAT instance listed in rewrites is classified by port; flows reach h2 via both."""
    snet.dp.hooks["nat"] = snet.dp.hooks["nat2"] = nat_hook
    snet.do(snet.fabric.add_graph(graph(hops=("h1", ["nat", "nat2"], "h2"),
                                        rewrites=["nat2", "nat"])))
    assert snet.fabric.graphs()["fg1"].rewrites == ("nat", "nat2")
    traces = [snet.dp.trace(p, "h1") for p in flows_of()]
    assert {t[0] for t in traces} == {"nat", "nat2"} and all(t[1:] == ["h2"] for t in traces)


def test_fake_vnf_hook_can_drop(snet):
    """A hook returning None drops the packet inside the VNF (a firewall)."""
    snet.dp.hooks["A"] = lambda p: None if p["udp_src"] % 2 else p
    snet.do(snet.fabric.add_graph(graph(hops=("h1", "A", "h2"))))
    assert snet.dp.trace(dict(PKT, udp_src=1), "h1") == ["A"]
    assert snet.dp.trace(dict(PKT, udp_src=2), "h1") == ["A", "h2"]


@pytest.mark.parametrize("first,second", [
    ({"hops": ("h1", "nat", "h2"), "rewrites": ["nat"]},
     {"hops": ("h3", "nat", "h2"), "match": dict(UDP5000, udp_dst=6000)}),
    ({"hops": ("h3", "nat", "h2"), "match": dict(UDP5000, udp_dst=6000)},
     {"hops": ("h1", "nat", "h2"), "rewrites": ["nat"]}),
    ({"hops": ("h1", "nat", "h2"), "rewrites": ["nat"]},
     {"hops": ("h3", "nat", "h2"), "rewrites": ["nat"], "priority": 300}),
])
def test_rewriting_port_shared_with_another_graph_is_refused(snet, first, second):
    """A rewriting VNF's port used by a second graph (either way round) is ambiguous: refused."""
    snet.do(snet.fabric.add_graph(graph("fg1", **first)))
    with pytest.raises(ForwardingGraphError,
                       match="port s2:2 of header-rewriting VNF 'nat' is also used by graph"):
        snet.fabric.add_graph(graph("fg2", **second))
    assert "fg2" not in snet.fabric.graphs()


def test_instances_sharing_a_port_are_refused(snet):
    """Two instances on one switch port could not be told apart when packets come back."""
    fabric = Fabric(SWITCHES, LINKS, SCALE_ATTS + [Attachment("A4", "s2", 1)])
    with pytest.raises(ForwardingGraphError, match="two hops share a switch port"):
        fabric.add_graph(graph(hops=("h1", ["A", "A4"], "h2")))
    with pytest.raises(ForwardingGraphError, match=r"unknown hop\(s\) 'X'"):
        fabric.add_graph(graph(hops=("h1", ["A", "X"], "h2")))


def test_from_dict_round_trip_with_instances_and_rewrites():
    """The list form and rewrites survive to_dict/from_dict; instances are kept sorted."""
    d = {"name": "lb", "match": {"ip_proto": 6, "tcp_dst": 80},
         "hops": ["h1", ["lb2", "lb1"], "fw", "h2"], "protection": False, "priority": 100,
         "rewrites": ["lb1", "lb2"]}
    fg = ForwardingGraphSpec.from_dict(d)
    assert fg.hops == ("h1", ("lb1", "lb2"), "fw", "h2")
    assert fg.instances(1) == ("lb1", "lb2") and fg.instances(2) == ("fw",)
    assert fg.to_dict() == dict(d, hops=["h1", ["lb1", "lb2"], "fw", "h2"])
    assert ForwardingGraphSpec.from_dict(fg.to_dict()) == fg
    assert "rewrites" not in ForwardingGraphSpec.from_dict(GOOD).to_dict()


@pytest.mark.parametrize("change,message", [
    ({"hops": [["h1", "h3"], "A", "h2"]}, "the ingress hop must be one attachment name"),
    ({"hops": ["h1", "A", ["h2"]]}, "the egress hop must be one attachment name"),
    ({"hops": ["h1", [], "h2"]}, "hop 1 lists no instances"),
    ({"hops": ["h1", ["A", "B", "A"], "h2"]}, "hop 1 lists instance 'A' twice"),
    ({"hops": ["h1", [f"v{k}" for k in range(17)], "h2"]}, "hop 1 lists 17 instances; at most 16"),
    ({"hops": ["h1", ["A", 3], "h2"]}, r"hops\[1\]\[1\]: instance 3 is not an attachment name"),
    ({"hops": ["h1", ["A", "B"], ["B", "C"], "h2"]}, "hop 'B' appears twice in a row"),
    ({"hops": ["h1", ["A", "B"], "C", "B", "h2"]}, "hop 'B' is a source twice"),
    ({"hops": ["h1", {"A": 1}, "h2"]}, "is not an attachment name"),
    ({"rewrites": ["h1"]}, r"rewrites\[0\]: 'h1' is not an instance of a VNF hop; VNF hops: A"),
    ({"rewrites": "A"}, "rewrites: expected a list of VNF attachment names"),
    ({"rewrites": ["A", "A"]}, "rewrites lists an attachment twice"),
    ({"hops": ["h"] + [f"v{k}" for k in range(300)]}, "has 301 hops; at most 256"),
])
def test_from_dict_rejects_bad_instances(change, message):
    """Malformed multi-instance hops and rewrites raise ForwardingGraphError saying what is wrong."""
    with pytest.raises(ForwardingGraphError, match=message):
        ForwardingGraphSpec.from_dict({**GOOD, **change})


def _one_at_a_time(changes: Changes) -> list[Changes]:
    """Each change of ``changes``, in ``ordered()`` order, as a Changes of its own."""
    field = {"group_add": "group_adds", "group_mod": "group_mods", "flow_add": "flow_adds",
             "flow_del": "flow_dels", "group_del": "group_dels"}
    return [Changes(**{field[op]: [spec]}) for op, spec in changes.ordered()]


@pytest.mark.parametrize("link", LINKS, ids=lambda lk: f"{lk.a}-{lk.b}")
def test_reroute_after_fast_failover_is_make_before_break(link):
    """A protected chain's dead link is bypassed by the fast-failover groups; the controller's
    reroute that follows, applied one flow or group change at a time, delivers the packet
    after every single change (no second gap)."""
    net = Net()
    net.do(net.fabric.add_graph(graph(protection=True)))
    net.link_down(link.a, link.b)
    assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"]
    changes = net.fabric.port_status(SWITCHES[link.a], link.a_port, up=False)
    for step in _one_at_a_time(changes):
        net.dp.apply(step)
        assert net.dp.trace(PKT, "h1") == ["A", "B", "h2"], step
    net.assert_synced()


def test_a_cut_under_an_unprotected_path_lets_only_its_classifiers_switch_at_once():
    """A link cut recomputes an unprotected chain broken by it and a protected one: only
    the unprotected chain's changed classifiers of the broken segment are ``at_once``
    (restored without waiting for the new path's barrier round trip; a cut further down a
    path changes a transit flow instead, in the make stage anyway); the protected one's
    reroute switches after its make stage. Applied stage by stage, both chains deliver
    after the last stage."""
    switches, links, atts = fat_tree(4)
    net = Net(switches, links, atts, vnfs={"v11", "v21"})
    plain = graph("plain", hops=("h00", "v11", "v21", "h31"))
    guarded = graph("guarded", hops=("h00", "v11", "v21", "h31"), protection=True,
                    match=dict(UDP5000, udp_dst=6000))
    net.do(net.fabric.add_graph(plain))
    net.do(net.fabric.add_graph(guarded))
    before = net.fabric.graph_paths("plain")
    seg = before[1]                                   # v11 -> v21
    link = net.link_down(seg[0], seg[1])    # its first link: the classifier must change
    changes = net.fabric.port_status(switches[link.a], link.a_port, up=False)
    assert changes.at_once
    gid = net.fabric.graph_cookie("plain")
    adds = {f.key(): f for f in changes.flow_adds}
    for key in changes.at_once:
        cookie = adds[key].cookie
        assert cookie & COOKIE_MASK == gid
        path = before[(cookie >> SEGMENT_SHIFT) & 0xFF]
        assert any({x, y} == {link.a, link.b} for x, y in zip(path, path[1:])), \
            "only segments the cut broke"
    moved = [f for f in changes.flow_adds if not dict(f.match).get("vlan_vid")
             and f.cookie & COOKIE_MASK == gid]
    assert {f.key() for f in moved} <= set(changes.at_once)
    for key in changes.at_once - {f.key() for f in moved}:
        assert key in changes.moves   # a transit flow where the new path leaves the old
    for _stage, run in changes.stages():
        net.dp.apply(Changes(group_adds=[s for op, s in run if op == "group_add"],
                             group_mods=[s for op, s in run if op == "group_mod"],
                             flow_adds=[s for op, s in run if op == "flow_add"],
                             flow_dels=[s for op, s in run if op == "flow_del"],
                             group_dels=[s for op, s in run if op == "group_del"]))
    assert net.dp.trace(PKT, "h00") == ["v11", "v21", "h31"]
    assert net.dp.trace(dict(PKT, udp_dst=6000), "h00") == ["v11", "v21", "h31"]
    net.assert_synced()
