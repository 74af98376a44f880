"""Isolation in the controller's flows, traced on the fake data plane: a frame entering at
a host or VNF port reaches only what a graph of that port allows, whatever tags, source
addresses or failures; and overlapping classifiers are refused unless priorities differ."""
from __future__ import annotations

import pytest
from fakedp import FakeDataplane
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.controller.logic import Fabric
from testbed.controller.specs import Attachment, ForwardingGraphSpec, Link
from testbed.errors import ForwardingGraphError

#        s2
#      /    \      red NS:  h1@s1 -> A@s2 -> B@s3 -> h2@s4   (UDP 5000, protected)
#  s1 <      > s4  blue NS: h3@s1 -> C@s3 -> D@s4 -> h4@s4   (UDP 6000)
#      \    /      X@s2, Y@s4: hosts in no graph
#        s3
SWITCHES = {"s1": 1, "s2": 2, "s3": 3, "s4": 4}
LINKS = [Link("s1", 10, "s2", 10), Link("s1", 11, "s3", 10),
         Link("s2", 11, "s4", 10), Link("s3", 11, "s4", 11)]
ATTS = [Attachment("h1", "s1", 1), Attachment("h3", "s1", 2), Attachment("A", "s2", 1),
        Attachment("X", "s2", 2), Attachment("B", "s3", 1), Attachment("C", "s3", 2),
        Attachment("h2", "s4", 1), Attachment("D", "s4", 2), Attachment("h4", "s4", 3),
        Attachment("Y", "s4", 4)]
VNFS = {"A", "B", "C", "D"}
IPS = {"h1": "10.0.0.1", "h2": "10.0.0.2", "h3": "10.0.0.3", "h4": "10.0.0.4",
       "X": "10.0.0.9", "Y": "10.0.0.10"}
RED = ForwardingGraphSpec("red.fg1", {"ip_proto": 17, "ipv4_dst": IPS["h2"], "udp_dst": 5000},
                          ("h1", "A", "B", "h2"), protection=True)
BLUE = ForwardingGraphSpec("blue.fg1", {"ip_proto": 17, "udp_dst": 6000},
                           ("h3", "C", "D", "h4"))


def allowed(src: str, graphs=(RED, BLUE)) -> set[str]:
    """Every attachment a frame entering at ``src`` may reach: the later hops of each
    graph ``src`` is a source of."""
    out: set[str] = set()
    for g in graphs:
        hops = [g.instances(k) for k in range(len(g.hops))]
        for i, names in enumerate(hops[:-1]):
            if src in names:
                out |= {x for later in hops[i + 1:] for x in later}
    return out


class Net:
    def __init__(self, graphs=(RED, BLUE)):
        self.fabric = Fabric(SWITCHES, LINKS, ATTS)
        self.dp = FakeDataplane(SWITCHES, LINKS, ATTS, vnfs=VNFS)
        for g in graphs:
            self.dp.apply(self.fabric.add_graph(g))

    def cut(self, a: str, b: str) -> None:
        link = self.dp.set_link(a, b, up=False)
        self.dp.apply(self.fabric.port_status(SWITCHES[link.a], link.a_port, False))


def red_packet(**kw) -> dict:
    return {"ip_proto": 17, "ipv4_src": IPS["h1"], "ipv4_dst": IPS["h2"], "udp_src": 40000,
            "udp_dst": 5000, **kw}


def test_legitimate_chains_deliver():
    """Untagged packets of each graph from its ingress pass every VNF in order."""
    net = Net()
    assert net.dp.trace(red_packet(), "h1") == ["A", "B", "h2"]
    blue = red_packet(ipv4_src=IPS["h3"], ipv4_dst=IPS["h4"], udp_dst=6000)
    assert net.dp.trace(blue, "h3") == ["C", "D", "h4"]


@pytest.mark.parametrize("cut", [None, ("s1", "s2"), ("s2", "s4"), ("s1", "s3")])
def test_every_chain_vlan_spoofed_from_every_port_reaches_nothing(cut):
    """Frames tagged with each VLAN id a graph uses (primary and backup), singly, under a
    priority tag or as QinQ, from every host and VNF port, reach no attachment; before and
    after a link cut moves traffic onto backup vids."""
    net = Net()
    if cut:
        net.cut(*cut)
    vids = sorted({v for _, _, v in net.fabric.used_vlans()})
    assert vids
    stacks = [[v] for v in vids] + [[0]] + [[v, 0] for v in vids] + [[0, v] for v in vids] \
        + [[v, w] for v in vids for w in vids[:3]]
    for src in sorted(a.name for a in ATTS):
        for vlans in stacks:
            for pkt in (red_packet(vlans=vlans), red_packet(vlans=vlans, udp_dst=6000)):
                reached = [r for r in net.dp.trace(pkt, src) if not r.startswith("DROP")]
                assert reached == [], (src, vlans, reached)


def test_spoofed_source_from_other_ports_reaches_nothing():
    """A red packet carrying h1's source address, sent untagged from any port but red's
    ingress and VNFs, reaches nothing; the hosts of blue (same switch as h1 and other
    switches) and hosts in no graph are all refused."""
    net = Net()
    for src in ("h3", "X", "Y", "h4", "h2", "C", "D"):
        reached = [r for r in net.dp.trace(red_packet(), src) if not r.startswith("DROP")]
        assert reached == [], (src, reached)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(src=st.sampled_from(sorted(a.name for a in ATTS)),
       ip_src=st.sampled_from(sorted(IPS.values())), ip_dst=st.sampled_from(sorted(IPS.values())),
       dport=st.sampled_from([5000, 6000, 7000]),
       vlans=st.one_of(st.just([]), st.lists(st.integers(0, 12), min_size=1, max_size=2)),
       cut=st.sampled_from([None, ("s1", "s2"), ("s2", "s4"), ("s1", "s3"), ("s3", "s4")]))
def test_a_frame_reaches_only_what_its_ports_graphs_allow(src, ip_src, ip_dst, dport, vlans,
                                                          cut):
    """Any frame (any source/destination address, port, VLAN stack, after any single link
    cut) entering at any port reaches only later hops of a graph of that port, and never
    arrives anywhere still tagged."""
    net = Net()
    if cut:
        net.cut(*cut)
    pkt = red_packet(ipv4_src=ip_src, ipv4_dst=ip_dst, udp_dst=dport, vlans=vlans)
    reached = [r for r in net.dp.trace(pkt, src) if not r.startswith("DROP")]
    assert set(reached) <= allowed(src), (src, pkt, reached)
    assert not vlans or reached == []


# --------------------------------------------------------------------- overlapping classifiers
ISSUE_A = {"ipv4_src": "10.0.0.1"}
ISSUE_B = {"ipv4_dst": "10.0.0.2"}


def test_overlapping_classifiers_at_one_ingress_are_refused_naming_both():
    """{ipv4_src h1} and {ipv4_dst h2} from the same host: the second graph is refused with
    both names, the port and a packet both would take; nothing of it is installed."""
    net = Net(graphs=())
    net.dp.apply(net.fabric.add_graph(ForwardingGraphSpec("web.fg1", ISSUE_A, ("h1", "C", "h4"))))
    with pytest.raises(ForwardingGraphError) as e:
        net.fabric.add_graph(ForwardingGraphSpec("mail.fg1", ISSUE_B, ("h1", "D", "h2")))
    msg = str(e.value)
    assert "'mail.fg1' overlaps forwarding graph 'web.fg1' at s1:1 (h1)" in msg
    assert "ipv4_src 10.0.0.1, ipv4_dst 10.0.0.2 matches both" in msg
    assert "mail.fg1" not in net.fabric.graphs()


def test_disjoint_classifiers_share_an_ingress():
    """Classifiers no packet satisfies together may share an ingress at one priority."""
    net = Net(graphs=())
    net.dp.apply(net.fabric.add_graph(ForwardingGraphSpec("a", {"ipv4_dst": "10.0.0.0/31"},
                                                          ("h1", "C", "h4"))))
    net.dp.apply(net.fabric.add_graph(ForwardingGraphSpec("b", {"ipv4_dst": "10.0.0.2/31"},
                                                          ("h1", "D", "h2"))))
    assert set(net.fabric.graphs()) == {"a", "b"}


@pytest.mark.parametrize("first, second", [(100, 200), (200, 100)])
def test_precedence_decides_overlap_deterministically(first, second):
    """With different priorities the overlap is accepted and the higher one takes the
    packet both match, whichever was installed first; the other keeps its own packets."""
    net = Net(graphs=())
    net.dp.apply(net.fabric.add_graph(ForwardingGraphSpec("web.fg1", ISSUE_A, ("h1", "C", "h4"),
                                                          priority=first)))
    net.dp.apply(net.fabric.add_graph(ForwardingGraphSpec("mail.fg1", ISSUE_B, ("h1", "D", "h2"),
                                                          priority=second)))
    both = red_packet(udp_dst=7000)
    winner = ["C", "h4"] if first > second else ["D", "h2"]
    assert net.dp.trace(both, "h1") == winner
    assert net.dp.trace(red_packet(udp_dst=7000, ipv4_dst="10.0.0.4"), "h1") == ["C", "h4"]
    assert net.dp.trace(red_packet(udp_dst=7000, ipv4_src="10.0.0.7"), "h1") == ["D", "h2"]
