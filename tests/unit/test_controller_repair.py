"""Unit tests of the link-down reaction path: repairs prepared ahead (``prepare_repair``)
and the per-graph diff of ``port_status`` must give exactly what the whole-fabric
recomputation (``set_port_states``) gives, and leave the same state behind.
"""

from __future__ import annotations

import random

import pytest
from fakedp import FakeDataplane  # tests/unit is on sys.path (rootdir-relative, no __init__)
from test_controller_logic import fat_tree

from testbed.controller.logic import Fabric
from testbed.controller.specs import ForwardingGraphSpec
from testbed.errors import ForwardingGraphError

SWITCHES, LINKS, ATTS = fat_tree(4)
NAMES = [a.name for a in ATTS]


def _graphs(n: int = 24, seed: int = 7) -> list[ForwardingGraphSpec]:
    """Seeded graphs: protected and not, some with a scaled-out VNF hop (select groups or
    split flows), some with two VNFs."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hosts = rng.sample(NAMES, 5)
        hops: list = [hosts[0], hosts[1], hosts[2], hosts[3]]
        if i % 4 == 1:
            hops[1] = (hosts[1], hosts[4])
        if i % 5 == 2:
            hops = [hosts[0], hosts[1], hosts[3]]
        match = {"ip_proto": 17 if i % 3 else 6, "ipv4_dst": f"10.0.{i}.0/24"}
        out.append(ForwardingGraphSpec(name=f"g{i}", match=match, hops=tuple(hops),
                                       protection=i % 2 == 0))
    return out


def _fabric(vlan_range: tuple[int, int] = (1, 4094)) -> Fabric:
    """The seeded graphs installed; with a small VLAN range, those refused are left out."""
    fabric = Fabric(SWITCHES, LINKS, ATTS, vlan_range=vlan_range)
    for fg in _graphs():
        try:
            fabric.add_graph(fg)
        except ForwardingGraphError:
            assert vlan_range != (1, 4094)
    return fabric


def _state(fabric: Fabric) -> tuple:
    """Everything a caller can read of the fabric's computed state."""
    names = sorted(fabric.graphs())
    return ({d: tuple(map(frozenset, fabric.state_for(d))) for d in SWITCHES.values()},
            {n: (fabric.graph_ids(n), fabric.graph_pairs(n), fabric.graph_status(n),
                 fabric.graph_backups(n)) for n in names},
            fabric.used_vlans(), fabric.down_ports())


def _ops(changes) -> list:
    return [(op, spec) for op, spec in changes.ordered()]


@pytest.mark.parametrize("vlan_range", [(1, 4094), (1, 12)])
def test_link_down_equals_whole_fabric_recomputation_for_every_link(vlan_range):
    """For every link in turn, a port-down event with and without prepared repairs sends
    the same changes in the same order as recomputing the whole fabric and leaves the
    same state (after the cut and after the link is back); also with 12 VLAN ids per link,
    where reroutes run out of ids (the prepared repair replays the pools' changes)."""
    ref, direct, prepared = (_fabric(vlan_range) for _ in range(3))
    assert _state(direct) == _state(ref) == _state(prepared)
    changed = 0
    for link in LINKS:
        before = _state(prepared)
        for lk in prepared.unprepared_links():
            prepared.prepare_repair(lk)
        assert prepared.unprepared_links() == []
        assert _state(prepared) == before, "preparing changed the fabric"
        want = prepared.prepare_repair(link)
        got_ref = ref.set_port_states({(link.a, link.a_port): False})
        got_direct = direct.port_status(SWITCHES[link.a], link.a_port, False)
        # the other end first: either end uses the prepared repair
        got = prepared.port_status(SWITCHES[link.b], link.b_port, False)
        assert got is want
        assert _ops(got_direct) == _ops(got_ref), link
        assert _ops(got) == _ops(got_ref), link
        changed += bool(got)
        prepared.port_status(SWITCHES[link.a], link.a_port, False)
        direct.port_status(SWITCHES[link.b], link.b_port, False)
        ref.set_port_states({(link.b, link.b_port): False})
        assert _state(direct) == _state(ref) == _state(prepared), link
        for fabric in (ref, direct, prepared):
            fabric.port_status(SWITCHES[link.a], link.a_port, True)
            fabric.port_status(SWITCHES[link.b], link.b_port, True)
        assert _state(direct) == _state(ref) == _state(prepared), link
    assert changed > len(LINKS) // 2, "too few links carry graphs for the test to mean much"


def test_applied_changes_leave_switches_holding_the_desired_state():
    """Changes from prepared repairs, applied to a fake data plane after the cut of every
    other link and its return, leave every switch holding exactly base flows plus
    ``state_for``."""
    fabric = Fabric(SWITCHES, LINKS, ATTS)
    dp = FakeDataplane(SWITCHES, LINKS, ATTS)
    for fg in _graphs():
        dp.apply(fabric.add_graph(fg))

    def synced() -> None:
        for dpid in SWITCHES.values():
            flows, groups = fabric.state_for(dpid)
            want = (set(flows + fabric.base_flows(dpid)), set(groups))
            assert dp.state(dpid) == want, dpid

    for link in LINKS[::2]:
        for lk in fabric.unprepared_links():
            fabric.prepare_repair(lk)
        dp.set_link(link.a, link.b, up=False)
        dp.apply(fabric.port_status(SWITCHES[link.a], link.a_port, False))
        synced()
        dp.set_link(link.a, link.b, up=True)
        dp.apply(fabric.port_status(SWITCHES[link.a], link.a_port, True))
        synced()


def test_a_change_after_preparing_makes_the_repair_stale():
    """A repair prepared before a graph is added is not used after it: the cut recomputes
    and sends what the whole-fabric recomputation sends."""
    ref, prepared = _fabric(), _fabric()
    link = max(LINKS, key=lambda lk: len(prepared.prepare_repair(lk)))
    stale = prepared.prepare_repair(link)
    extra = ForwardingGraphSpec(name="extra", match={"ip_proto": 17, "ipv4_dst": "10.1.0.0/24"},
                                hops=(NAMES[0], NAMES[5], NAMES[9]), protection=True)
    ref.add_graph(extra)
    prepared.add_graph(extra)
    got = prepared.port_status(SWITCHES[link.a], link.a_port, False)
    assert got is not stale
    assert _ops(got) == _ops(ref.set_port_states({(link.a, link.a_port): False}))
    assert _state(prepared) == _state(ref)


def test_repairs_survive_port_events_that_change_no_link_and_no_other_change():
    """An attachment port going down and up keeps the prepared repairs (the cut then
    returns the prepared Changes); removing a graph, moving an attachment or setting port
    states makes them stale (the cut recomputes)."""
    fabric = _fabric()
    link = LINKS[0]
    att = ATTS[0]
    for change in (None, lambda f: f.remove_graph("g3"),
                   lambda f: f.add_attachment(type(att)(att.name, att.switch, 7)),
                   lambda f: f.set_port_states({(att.switch, att.port): False})):
        want = fabric.prepare_repair(link)
        fabric.port_status(SWITCHES[att.switch], att.port, False)
        fabric.port_status(SWITCHES[att.switch], att.port, True)
        if change is not None:
            change(fabric)
        got = fabric.port_status(SWITCHES[link.a], link.a_port, False)
        assert (got is want) == (change is None)
        fabric.port_status(SWITCHES[link.a], link.a_port, True)
