"""VLAN ids per link: each directed switch-to-switch link has its own pool, and a path's
id is rewritten hop by hop where two links' ids differ. Traced on the fake data plane, so
the tests prove the diffs deliver packets, not just the numbers."""
from __future__ import annotations

import itertools
import re

import pytest
from fakedp import FakeDataplane  # tests/unit is on sys.path (rootdir-relative, no __init__)
from test_controller_incremental import fat_tree

from testbed.controller.logic import Fabric
from testbed.controller.specs import Attachment, Changes, ForwardingGraphSpec, Link
from testbed.errors import ForwardingGraphError

#        s2
#      /    \          h1@s1, h2@s4; f1..f4: a filler host on each switch
#  s1 <      > s4
#      \    /
#        s3
SWITCHES = {"s1": 1, "s2": 2, "s3": 3, "s4": 4}
LINKS = [Link("s1", 10, "s2", 10), Link("s1", 11, "s3", 10),
         Link("s2", 11, "s4", 10), Link("s3", 11, "s4", 11)]
ATTS = [Attachment("h1", "s1", 1), Attachment("h2", "s4", 1)] + [
    Attachment(f"f{k}", f"s{k}", 5) for k in range(1, 5)]
MATCH = {"ip_proto": 17, "ipv4_dst": "10.0.0.2", "udp_dst": 5000}
PKT = {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2", "udp_src": 40000,
       "udp_dst": 5000}


class Net:
    """A Fabric and a fake data plane kept in step by applying every Changes."""

    def __init__(self, switches=SWITCHES, links=LINKS, atts=ATTS, **kw):
        self.fabric = Fabric(switches, links, atts, **kw)
        self.dp = FakeDataplane(switches, links, atts)
        self.switches, self.links = switches, links
        self.fillers = 0

    def do(self, changes: Changes) -> Changes:
        self.dp.apply(changes)
        for dpid in self.switches.values():
            flows, groups = self.fabric.state_for(dpid)
            assert self.dp.state(dpid) == (set(flows + self.fabric.base_flows(dpid)),
                                           set(groups)), f"switch {dpid} differs"
        return changes

    def occupy(self, a: str, b: str, vids: set[int]) -> None:
        """Leave exactly ``vids`` used on the link a -> b: one-link graphs from filler
        ``f<a>`` to ``f<b>`` take ids 1..max(vids) there, those not in ``vids`` are
        removed again."""
        names = {}
        for v in range(1, max(vids) + 1):
            self.fillers += 1
            name = f"fill{self.fillers}"
            self.do(self.fabric.add_graph(ForwardingGraphSpec(
                name, {"ip_proto": 17, "udp_dst": 9000 + self.fillers},
                (f"f{a[1:]}", f"f{b[1:]}"))))
            assert self.fabric.graph_pairs(name)[0]["vlans"] == [v]
            names[v] = name
        for v, name in names.items():
            if v not in vids:
                self.do(self.fabric.remove_graph(name))

    def cut(self, a: str, b: str, react: bool) -> None:
        link = self.dp.set_link(a, b, up=False)
        if react:
            self.do(self.fabric.port_status(self.switches[link.a], link.a_port, False))


def rewrites(fabric: Fabric) -> list:
    """Every set_vlan action of a transit or backup flow (not a classifier's push) or of a
    group bucket, as (switch dpid, vid)."""
    out = []
    for dpid in fabric.switches().values():
        flows, groups = fabric.state_for(dpid)
        for f in flows:
            if dict(f.match).get("vlan_vid"):
                out += [(dpid, a[1]) for a in f.actions if a[0] == "set_vlan"]
        for g in groups:
            out += [(dpid, a[1]) for b in g.buckets for a in b.actions if a[0] == "set_vlan"]
    return out


def test_a_path_whose_links_share_no_free_id_is_rewritten_hop_by_hop():
    """With ids 1..2 per link, a third pair whose two links have only different ids free
    gets one id per link (2, then 1), the switch between rewrites the tag, and the packet
    arrives untagged; three pairs fit where the old fabric-wide pool of 2 ids held two."""
    net = Net(vlan_range=(1, 2))
    net.occupy("s1", "s2", {1})
    net.occupy("s2", "s4", {2})
    net.do(net.fabric.add_graph(ForwardingGraphSpec("fg", MATCH, ("h1", "h2"))))
    pair = net.fabric.graph_pairs("fg")[0]
    assert (pair["path"], pair["vlans"], pair["vlan"]) == (["s1", "s2", "s4"], [2, 1], 2)
    s2_flows = [f for f in net.fabric.state_for(2)[0] if f.match and
                dict(f.match).get("vlan_vid") == 2]
    assert [f.actions for f in s2_flows] == [(("set_vlan", 1), ("output", 11))]
    assert net.dp.trace(PKT, "h1") == ["h2"]
    assert len(net.fabric.graphs()) == 3
    assert all(net.fabric.graph_status(n) == "ok" for n in net.fabric.graphs())


def test_small_per_link_pools_carry_many_pairs_and_refuse_only_full_links():
    """On a k=4 fat-tree with ids 1..2 per link, host-to-host graphs are added until links
    fill: far more than 2 fit, every one installed delivers its packets (rewritten hop
    by hop where needed), and every refusal names a link that already carries 2 ids."""
    switches, links, atts = fat_tree()
    hosts = sorted(a.name for a in atts if a.name.startswith("h"))
    ip = {a.name: a.ip for a in atts}
    net = Net(switches, links, atts, vlan_range=(1, 2))
    installed, refused = [], 0
    for n, (a, b) in enumerate(itertools.permutations(hosts, 2)):
        spec = ForwardingGraphSpec(f"g{n}", {"ip_proto": 17, "udp_dst": 5000 + n}, (a, b))
        try:
            net.do(net.fabric.add_graph(spec))
        except ForwardingGraphError as exc:
            refused += 1
            m = re.search(r"on link (\w+):(\d+) -> (\w+):(\d+) \(1..2 all in use\)", str(exc))
            assert m, exc
            on_link = {v for sw, port, v in net.fabric.used_vlans()
                       if (sw, port) == (m[3], int(m[4]))}
            assert on_link == {1, 2}, (exc, on_link)
            continue
        installed.append((spec, a, b))
    assert len(installed) > 2 and refused
    assert rewrites(net.fabric)      # some paths did need a hop-by-hop rewrite
    for spec, a, b in installed:
        pkt = {"ip_proto": 17, "ipv4_src": ip[a], "ipv4_dst": ip[b], "udp_src": 40000,
               "udp_dst": dict(spec.match)["udp_dst"]}
        assert net.dp.trace(pkt, a) == [b], spec.name


def test_a_reroute_onto_a_full_link_degrades_the_graph_naming_the_link():
    """A link failure whose reroute needs an id on a full link leaves the pair without a
    path (the event is not refused), says which link in the graph's status, and the pair
    comes back once the failed link does."""
    net = Net(vlan_range=(1, 1))
    net.do(net.fabric.add_graph(ForwardingGraphSpec("fg", MATCH, ("h1", "h2"))))
    net.occupy("s1", "s3", {1})
    net.cut("s1", "s2", react=True)
    assert net.fabric.graph_status("fg") == (
        "degraded: no VLAN id for segment 0 (h1 -> h2): no free VLAN id left on link "
        "s1:11 -> s3:10 (1..1 all in use)")
    assert net.fabric.graph_pairs("fg")[0]["path"] == []
    assert net.dp.trace(PKT, "h1") == ["DROP at s1: no matching flow"]
    net.dp.set_link("s1", "s2", up=True)
    net.do(net.fabric.port_status(1, 10, True))
    assert net.fabric.graph_status("fg") == "ok"
    assert net.dp.trace(PKT, "h1") == ["h2"]


def test_restore_graph_round_trip_keeps_per_link_ids_and_rewrites():
    """A restarted fabric given each graph's saved ids (in another order) holds the very
    same per-link ids, flows (the rewrite included) and groups as the old one."""
    old = Net(vlan_range=(1, 2))
    old.occupy("s1", "s2", {1})
    old.occupy("s2", "s4", {2})
    old.do(old.fabric.add_graph(ForwardingGraphSpec("fg", MATCH, ("h1", "h2"),
                                                    protection=True)))
    assert rewrites(old.fabric)
    saved = {n: old.fabric.graph_ids(n) for n in old.fabric.graphs()}
    assert saved["fg"]["pair_vids"] == [[0, "h1", "h2", [["s2", 10, 2], ["s4", 10, 1]]]]
    new = Fabric(SWITCHES, LINKS, ATTS, vlan_range=(1, 2))
    for name in reversed(list(old.fabric.graphs())):
        new.restore_graph(old.fabric.graphs()[name], saved[name])
    for name in old.fabric.graphs():
        assert new.graph_ids(name) == saved[name]
        assert new.graph_pairs(name) == old.fabric.graph_pairs(name)
    assert new.used_vlans() == old.fabric.used_vlans()
    for dpid in SWITCHES.values():
        assert new.state_for(dpid)[0] and set(new.state_for(dpid)[0]) == \
            set(old.fabric.state_for(dpid)[0])
        assert set(new.state_for(dpid)[1]) == set(old.fabric.state_for(dpid)[1])


@pytest.mark.parametrize("cut", [("s1", "s2"), ("s2", "s4")])
def test_protection_with_rewrites_delivers_on_the_backup(cut):
    """Pools filled so that the primary path (at s2, in its fast-failover group's primary
    bucket) and both backup paths (from s1 via s3; from s2 back through s1 and s3) each
    change id on the way: a primary link failing still delivers, on the backup at once
    and after the controller reacts."""
    net = Net(vlan_range=(1, 4))
    net.occupy("s1", "s2", {1, 3})
    net.occupy("s2", "s4", {2, 4})
    net.occupy("s1", "s3", {2})
    net.occupy("s3", "s4", {3, 4})
    net.occupy("s2", "s1", {1})
    net.do(net.fabric.add_graph(ForwardingGraphSpec("fg", MATCH, ("h1", "h2"),
                                                    protection=True)))
    assert net.fabric.graph_backups("fg") == []
    assert net.fabric.graph_pairs("fg")[0]["vlans"] == [2, 1]
    (s2_group,) = net.fabric.state_for(2)[1]
    assert s2_group.buckets[0].actions == (("set_vlan", 1), ("output", 11))  # 2 -> 1
    ids = {k[-1]: v for *k, v in net.fabric.graph_ids("fg")["backup_vids"]}
    assert ids == {"s1": [["s3", 10, 3], ["s4", 11, 2]],               # 3 -> 2 at s3
                   "s2": [["s1", 10, 2], ["s3", 10, 1], ["s4", 11, 1]]}  # 2 -> 1 at s1
    assert net.dp.trace(PKT, "h1") == ["h2"]
    net.cut(*cut, react=False)
    assert net.dp.trace(PKT, "h1") == ["h2"]          # fast failover, rewritten per hop
    net.cut(*cut, react=True)
    assert net.dp.trace(PKT, "h1") == ["h2"]
    assert net.fabric.graph_status("fg") == "ok"
