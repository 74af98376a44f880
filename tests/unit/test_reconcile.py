"""Unit tests of hitless reconciliation: the diff between what a switch holds and the
desired state (``reconcile.diff``), the fabric's port learning on (re)connect, its graph
numbers surviving a controller restart, and reading switch replies back into specs.

Changes are applied to the fake data plane, which refuses what OVS refuses (a flow naming
a missing group, a group deleted while used...), so the order is proved as well.
"""

from __future__ import annotations

import pytest
from fakedp import FakeDataplane  # tests/unit is on sys.path (rootdir-relative, no __init__)
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from testbed.controller import ofmsg
from testbed.controller.logic import Fabric
from testbed.controller.reconcile import diff
from testbed.controller.specs import (
    Attachment,
    Bucket,
    Changes,
    FlowSpec,
    ForwardingGraphSpec,
    GroupSpec,
    Link,
)
from testbed.errors import ControllerError, ForwardingGraphError

# A square: s1-s2, s2-s3, s3-s4, s4-s1; h1 and fw on s1, h2 on s2, A on s3, h4 on s4.
SWITCHES = {"s1": 1, "s2": 2, "s3": 3, "s4": 4}
LINKS = [Link("s1", 10, "s2", 10), Link("s2", 11, "s3", 10), Link("s3", 11, "s4", 10),
         Link("s4", 11, "s1", 11)]
ATTS = [Attachment("h1", "s1", 1), Attachment("fw", "s1", 2), Attachment("h2", "s2", 1),
        Attachment("A", "s3", 1), Attachment("B", "s3", 2), Attachment("h4", "s4", 1)]
VNFS = {"fw", "A", "B"}
PKT = {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "udp_src": 4000,
       "udp_dst": 5001}


def chain(name="c", hops=("h1", "fw", "h2"), port=5001, **kw) -> ForwardingGraphSpec:
    return ForwardingGraphSpec(name=name, match={"ip_proto": 17, "ipv4_src": "10.0.0.1",
                                                 "ipv4_dst": "10.0.0.2", "udp_dst": port},
                               hops=hops, **kw)


def wanted(fabric: Fabric, dpid: int) -> tuple[list[FlowSpec], list[GroupSpec]]:
    flows, groups = fabric.state_for(dpid)
    return fabric.base_flows(dpid) + flows, groups


def reconcile_all(fabric: Fabric, dp: FakeDataplane) -> dict[int, Changes]:
    """What a reconnect of every switch sends, applied to the fake switches."""
    sent = {}
    for dpid in SWITCHES.values():
        have_f, have_g = dp.state(dpid)
        sent[dpid] = diff(*wanted(fabric, dpid), have_f, have_g)
        dp.apply(sent[dpid])
    return sent


def assert_holds(fabric: Fabric, dp: FakeDataplane) -> None:
    for dpid in SWITCHES.values():
        flows, groups = wanted(fabric, dpid)
        assert dp.state(dpid) == (set(flows), set(groups)), f"switch {dpid} differs"


def busy_fabric() -> Fabric:
    """A fabric with a history: graphs added, one removed, a link cut and back, so its
    numbers differ from those a fresh fabric would pick for the same graphs."""
    f = Fabric(SWITCHES, LINKS, ATTS)
    f.add_graph(chain("gone", ("h4", "B", "h2"), port=6000, protection=True))
    f.add_graph(chain("c", protection=True))
    f.add_graph(chain("scaled", ("h4", ("A", "B"), "h2"), port=7000))
    f.port_status(1, 10, False)
    f.remove_graph("gone")
    f.add_graph(chain("late", ("h2", "A", "h1"), port=8000, protection=True))
    return f


def restart(old: Fabric, with_ids: bool = True) -> Fabric:
    """What a restarted controller rebuilds from the saved state (see app._restore_state)."""
    new = Fabric(SWITCHES, LINKS, ATTS)
    new.set_port_states({p: False for p in old.down_ports()})
    for name, spec in old.graphs().items():
        if with_ids:
            new.restore_graph(spec, old.graph_ids(name))
        else:
            new.add_graph(spec)
    return new


# --------------------------------------------------------------------------- the diff
def test_a_switch_that_is_already_right_is_sent_nothing():
    """Reconnecting switches that hold exactly the desired state get no change at all."""
    f = busy_fabric()
    dp = FakeDataplane(f, LINKS, ATTS, vnfs=VNFS)
    sent = reconcile_all(f, dp)
    assert all(not ch for ch in sent.values()), sent


def test_a_restarted_fabric_rebuilds_the_same_flows_from_the_saved_numbers():
    """After a restart, graphs restored with their saved ids want exactly what the switches
    hold (nothing to send); restored without them, numbers differ and flows would move."""
    old = busy_fabric()
    dp = FakeDataplane(old, LINKS, ATTS, vnfs=VNFS)
    new = restart(old)
    assert all(not ch for ch in reconcile_all(new, dp).values())
    for name in old.graphs():
        assert new.graph_ids(name) == old.graph_ids(name)
        assert new.graph_paths(name) == old.graph_paths(name)
    fresh = restart(old, with_ids=False)
    assert any(diff(*wanted(fresh, d), *dp.state(d)) for d in SWITCHES.values())


def test_reconnect_after_a_link_died_unseen_moves_traffic_off_it_in_a_safe_order():
    """Switches programmed while s1-s2 was up; the link dies while the controller is away;
    the new controller learns the ports, and the diff it sends (checked by the fake switch
    at each step) makes the chain flow around through s4 and s3."""
    old = Fabric(SWITCHES, LINKS, ATTS)
    old.add_graph(chain(protection=True))
    old.add_graph(chain("plain", port=5002))
    dp = FakeDataplane(old, LINKS, ATTS, vnfs=VNFS)
    assert old.graph_paths("c") == [["s1"], ["s1", "s2"]]
    dp.set_link("s1", "s2", up=False)
    new = restart(old)
    assert new.graph_paths("c") == [["s1"], ["s1", "s2"]]  # the prior: believed up
    for sw, dpid in SWITCHES.items():  # what the port descriptions say
        new.switch_ports(dpid, {p: dp.live(sw, p) for (s, p) in dp.peer if s == sw})
    assert new.graph_paths("c") == [["s1"], ["s1", "s4", "s3", "s2"]]
    sent = reconcile_all(new, dp)
    assert sent[SWITCHES["s3"]].flow_adds and sent[SWITCHES["s1"]]
    assert_holds(new, dp)
    assert dp.trace(PKT, "h1") == ["fw", "h2"]
    assert dp.trace(dict(PKT, udp_dst=5002), "h1") == ["fw", "h2"]


def test_stray_wrong_and_unclear_entries_are_replaced_or_removed():
    """What the switch holds beyond the desired state is deleted (classifiers before
    transit flows, groups last), a flow whose cookie or actions differ is re-added, a
    group whose buckets differ is modified, and a key read back twice differently is
    rewritten."""
    base = FlowSpec(1, 0, (), ())
    transit = FlowSpec(1, 1000, {"vlan_vid": 7}, (("output", 10),), cookie=1 << 32 | 2)
    classify = FlowSpec(1, 104, {"in_port": 1, "eth_type": 0x800}, (("group", 1),),
                        cookie=1 << 32 | 1)
    ff = GroupSpec(1, 1, "ff", (Bucket((("output", 10),), watch_port=10),))
    stray_cls = FlowSpec(1, 104, {"in_port": 2, "eth_type": 0x800}, (("group", 9),), 0xdead)
    stray_transit = FlowSpec(1, 1000, {"vlan_vid": 9}, (("output", 11),), cookie=0xbeef)
    stray_group = GroupSpec(1, 9, "ff", (Bucket((("output", 11),), watch_port=11),))
    held_f = [base, FlowSpec(1, 1000, {"vlan_vid": 7}, (("output", 10),), cookie=5),
              classify, FlowSpec(1, 104, {"in_port": 1, "eth_type": 0x800}, (("drop",),)),
              stray_transit, stray_cls]
    held_g = [GroupSpec(1, 1, "ff", (Bucket((("output", 11),), watch_port=11),)), stray_group]
    ch = diff([base, transit, classify], [ff], held_f, held_g)
    assert ch.flow_adds == [transit, classify] and ch.group_mods == [ff]
    assert ch.group_adds == [] and ch.group_dels == [stray_group]
    assert ch.ordered()[-3:] == [("flow_del", stray_cls), ("flow_del", stray_transit),
                                 ("group_del", stray_group)]


def test_a_desired_state_with_two_flows_on_one_key_is_refused():
    """Two different desired flows with one (table, priority, match) cannot both be held:
    the diff says so instead of sending one at random."""
    a = FlowSpec(1, 1000, {"vlan_vid": 7}, (("output", 10),))
    b = FlowSpec(1, 1000, {"vlan_vid": 7}, (("output", 11),))
    with pytest.raises(ControllerError, match="share the key"):
        diff([a, b], [], [], [])


# ---------------------------------------------------------------------- port learning
def test_port_description_sets_every_link_port_and_missing_ones_are_down():
    """A switch's port description sets each of its ports; a link port it does not list
    is down; a link is up only while both its ends are."""
    f = Fabric(SWITCHES, LINKS, ATTS)
    f.add_graph(chain())
    assert f.graph_paths("c")[1] == ["s1", "s2"]
    f.switch_ports(2, {1: True, 10: True})            # s2 lists no port 11: s2-s3 down
    assert ("s2", 11) in f.down_ports()
    f.switch_ports(1, {1: True, 2: True, 10: False, 11: True})
    assert f.graph_paths("c")[1] == []                 # s1-s2 and s2-s3 both down
    assert f.graph_status("c").startswith("degraded")
    f.switch_ports(1, {1: True, 2: True, 10: True, 11: True})
    assert f.graph_paths("c")[1] == ["s1", "s2"]
    f.switch_ports(2, {1: True, 10: False, 11: True})  # one end down: the link is down
    assert f.graph_paths("c")[1] == ["s1", "s4", "s3", "s2"]
    assert not f.switch_ports(99, {10: False})         # not in the wiring: ignored


def test_saved_ids_that_do_not_fit_are_refused_and_change_nothing():
    """restore_graph refuses malformed or taken numbers with a message naming the graph,
    leaving the fabric as it was (add_graph then gives new numbers)."""
    old = busy_fabric()
    new = Fabric(SWITCHES, LINKS, ATTS)
    ids = old.graph_ids("c")
    new.restore_graph(old.graphs()["c"], ids)
    before = (new.used_vlans(), new.graphs())
    held = new.graph_ids("c")["pair_vids"]      # ids "c" holds now, on its links
    with pytest.raises(ForwardingGraphError, match="'late': saved ids: VLAN ids .* taken"):
        new.restore_graph(old.graphs()["late"], dict(old.graph_ids("late"), pair_vids=held))
    nowhere = [[0, "h2", "A", [["s1", 1, 7]]]]  # s1:1 is a host port, not a link's end
    with pytest.raises(ForwardingGraphError, match="'late': saved ids: VLAN ids .* s1:1"):
        new.restore_graph(old.graphs()["late"], dict(old.graph_ids("late"), pair_vids=nowhere))
    with pytest.raises(ForwardingGraphError, match="'late': saved ids are malformed"):
        new.restore_graph(old.graphs()["late"], dict(old.graph_ids("late"),
                                                     pair_vids=[[0, "h2", "A", 5]]))
    with pytest.raises(ForwardingGraphError, match="'late': saved ids are malformed"):
        new.restore_graph(old.graphs()["late"], {"gid": 9})
    with pytest.raises(ForwardingGraphError, match=r"graph id \d+ is taken"):
        new.restore_graph(old.graphs()["late"], dict(old.graph_ids("late"), gid=ids["gid"]))
    assert (new.used_vlans(), new.graphs()) == before
    new.add_graph(old.graphs()["late"])
    assert new.graph_status("late") == "ok"


# --------------------------------------------------------------- reading replies back
class _Dp:
    """What ofmsg needs of an os-ken datapath, without a connection."""

    ofproto, ofproto_parser, id = ofp, parser, 1

    def set_xid(self, msg):
        msg.xid = 1


def _stats_of(mod) -> parser.OFPFlowStats:
    """The flow-stats entry a switch would return for a flow mod, through os-ken's own
    serialiser and parser (match and instructions as bytes and back)."""
    buf = bytearray()
    mod.match.serialize(buf, 0)
    match = parser.OFPMatch.parser(bytes(buf), 0)
    insts = []
    for inst in mod.instructions:
        b = bytearray()
        inst.serialize(b, 0)
        insts.append(parser.OFPInstructionActions.parser(bytes(b), 0))
    return parser.OFPFlowStats(table_id=mod.table_id, duration_sec=1, duration_nsec=0,
                               priority=mod.priority, idle_timeout=0, hard_timeout=0,
                               flags=0, cookie=mod.cookie, packet_count=5, byte_count=500,
                               match=match, instructions=insts)


def test_flows_and_groups_read_back_equal_the_specs_they_were_built_from():
    """Every kind of flow and group the fabric builds (tagging, masked split fields,
    prefixes, in_port output, pop, groups) reads back from os-ken's parsed form as the
    same spec, so an unchanged switch compares equal."""
    dp = _Dp()
    f = busy_fabric()
    f.add_graph(ForwardingGraphSpec("pfx", {"ip_proto": 6, "ipv4_dst": "10.0.0.0/8"},
                                    ("h4", ("A", "B"), "h1")))
    f.add_graph(ForwardingGraphSpec("sel", {"ipv4_src": "10.0.0.4"}, ("h4", ("A", "B"), "h2"),
                                    priority=110))   # overlaps "pfx": a precedence decides
    specs_f = [s for d in SWITCHES.values() for s in wanted(f, d)[0]]
    specs_g = [g for d in SWITCHES.values() for g in wanted(f, d)[1]]
    assert any(isinstance(v, tuple) for s in specs_f for _, v in s.match)
    assert {g.type for g in specs_g} == {"ff", "select"}
    for spec in specs_f:
        dp.id = spec.dpid
        assert ofmsg.flow_spec(dp, _stats_of(ofmsg.flow_add(dp, spec))) == spec
    for spec in specs_g:
        dp.id = spec.dpid
        mod = ofmsg.group_mod(dp, spec, "add")
        buf = bytearray()
        for b in mod.buckets:
            b.serialize(buf, len(buf))
        buckets, off = [], 0
        while off < len(buf):
            bucket = parser.OFPBucket.parser(bytes(buf), off)
            buckets.append(bucket)
            off += bucket.len
        desc = parser.OFPGroupDescStats(mod.type, mod.group_id, buckets)
        assert ofmsg.group_spec(dp, desc) == spec
