"""The fabric's incremental paths give what recomputing everything gives.

``Fabric`` recomputes, on a link coming up, only the graphs whose path searches looked at
a switch whose links changed (``_recompute``), and diffs only the graphs recomputed or
removed (``_sync``). ``FullFabric`` below recomputes every graph on a link coming up and
diffs everything (``_sync_all``): the behaviour before those shortcuts. Seeded random
sequences of graph installs (some refused: their classifier overlaps another graph's),
scale-outs and -ins, removals, attachments moved, added and removed, and link and switch
events (protected and unprotected graphs, split flows and select groups, a parallel link,
a VLAN range small enough to run out; a link coming back meets the topology and path
memos ``Fabric`` kept from before its failure) must give equal ``Changes`` (in order),
equal errors and equal state.
"""
from __future__ import annotations

import random

import pytest

from testbed.controller.logic import Fabric, _Topology
from testbed.controller.specs import Attachment, ForwardingGraphSpec, Link
from testbed.errors import ForwardingGraphError

VNF_PORTS = (2, 3, 4, 5)


class FullFabric(Fabric):
    """The fabric recomputing every graph on a link coming up and diffing everything,
    comparing a graph's classifiers with every other graph's, finding the users of an
    attachment by looking at every graph and building every topology afresh (no
    topology or path memo kept from an earlier set of links down)."""

    def _recompute(self, gone, came, every=False):
        return super()._recompute(gone, came, every=every or bool(came))

    def _topology(self):
        if self._topo is None:
            self._topos.clear()
        return super()._topology()

    def _sync(self):
        return self._sync_all()

    def _near(self, ports):
        return set(self._graphs)

    def _users_of(self, att_name):
        return [n for n, g in self._graphs.items() if att_name in g.spec.attachment_names()]


def fat_tree(k: int = 4):
    """A k-ary fat-tree (one host and four VNF ports per edge switch) plus a second,
    parallel link between a00 and e00."""
    switches: dict[str, int] = {}
    links: list[Link] = []
    half = k // 2
    cores = [f"c{i}" for i in range(half * half)]
    for c in cores:
        switches[c] = len(switches) + 1
    atts = []
    for pod in range(k):
        aggs = [f"a{pod}{i}" for i in range(half)]
        edges = [f"e{pod}{i}" for i in range(half)]
        for s in aggs + edges:
            switches[s] = len(switches) + 1
        for i, agg in enumerate(aggs):
            for j, edge in enumerate(edges):
                links.append(Link(agg, 10 + j, edge, 10 + i))
            for j in range(half):
                links.append(Link(cores[i * half + j], 10 + pod, agg, 20 + j))
        for i, edge in enumerate(edges):
            atts.append(Attachment(f"h{pod}{i}", edge, 1, ip=f"10.0.{pod}.{i + 1}"))
            atts += [Attachment(f"v{pod}{i}_{p}", edge, p) for p in VNF_PORTS]
    links.append(Link("a00", 30, "e00", 30))
    return switches, links, atts


def random_graph(rng: random.Random, n: int, hosts: list[str], vnfs: list[str],
                 hops: list | None = None) -> ForwardingGraphSpec:
    """Graph ``g<n>``: its own classifier (UDP to port 5000 + n, or, for a select group,
    any IPv4 packet to its own address), 1..3 VNF hops of 1..3 instances."""
    if hops is None:
        src, dst = rng.sample(hosts, 2)
        pool = rng.sample(vnfs, 9)
        hops = [src]
        for _ in range(rng.randint(1, 3)):
            m = rng.randint(1, 3)
            hops.append(tuple(sorted(pool[:m])) if m > 1 else pool[0])
            pool = pool[m:]
        hops.append(dst)
    match = {"ip_proto": 17, "udp_dst": 5000 + n} if n % 3 else {"ipv4_dst": f"10.9.{n}.1"}
    return ForwardingGraphSpec(name=f"g{n}", match=match, hops=tuple(hops),
                               protection=bool(n % 2))


def state(f: Fabric) -> dict:
    """Everything the fabric reports: per graph its numbers, pairs, status and backups,
    per switch its flows and groups, the VLAN ids in use and the attachments."""
    out: dict = {"vlans": f.used_vlans(), "down": f.down_ports(), "atts": f.attachments()}
    for name in f.graphs():
        out[name] = (f.graph_ids(name), f.graph_pairs(name), f.graph_status(name),
                     f.graph_backups(name), f.graph_vlans(name))
    for dpid in f.switches().values():
        out[dpid] = f.state_for(dpid)
    return out


def both(inc: Fabric, full: Fabric, op: str, *args):
    """Apply one operation to both fabrics: the same Changes or the same error."""
    results = []
    for f in (inc, full):
        try:
            results.append(("ok", getattr(f, op)(*args)))
        except ForwardingGraphError as exc:
            results.append(("error", str(exc)))
    assert results[0] == results[1], f"{op}{args}: incremental != full"
    return results[0]


@pytest.mark.parametrize("seed", range(16))
def test_incremental_recompute_and_diff_equal_recomputing_everything(seed):
    """Every step of a random sequence gives the same Changes (same order) and the same
    graphs, flows, groups and VLAN ids as recomputing all graphs and diffing everything,
    while recomputing fewer graphs."""
    rng = random.Random(seed)
    switches, links, atts = fat_tree()
    vlans = (1, 3) if seed % 4 == 0 else (1, 4094)    # some seeds run out of VLAN ids
    inc = Fabric(switches, links, atts, vlan_range=vlans)
    full = FullFabric(switches, links, atts, vlan_range=vlans)
    computed = {inc: 0, full: 0}
    for f in (inc, full):
        def counting(g, f=f, compute=f._compute):
            computed[f] += 1
            compute(g)
        f._compute = counting
    hosts = sorted(a.name for a in atts if a.name.startswith("h"))
    vnfs = sorted(a.name for a in atts if a.name.startswith("v"))
    specs: dict[str, ForwardingGraphSpec] = {}
    n = 0
    for _ in range(120):
        r = rng.random()
        if r < 0.2 or not specs:
            n += 1
            fg = random_graph(rng, n, hosts, vnfs)
            if specs and rng.random() < 0.2:      # another graph's classifier and ingress
                other = specs[rng.choice(sorted(specs))]
                fg = ForwardingGraphSpec(name=fg.name, match=other.match,
                                         hops=(other.hops[0], *fg.hops[1:]))
            if both(inc, full, "add_graph", fg)[0] == "ok":
                specs[fg.name] = fg
        elif r < 0.25:                 # move, add or remove a VNF port
            name = rng.choice(vnfs + ["extra"])
            sw = rng.choice(sorted(s for s in switches if s.startswith("e")))
            if rng.random() < 0.3:
                both(inc, full, "remove_attachment", name)
            else:
                both(inc, full, "add_attachment", Attachment(name, sw, rng.randint(2, 9)))
        elif r < 0.35:                 # scale a VNF hop out or in
            fg = specs[rng.choice(sorted(specs))]
            hops = list(fg.hops)
            k = rng.randrange(1, len(hops) - 1)
            used = {x for i in range(len(hops)) for x in fg.instances(i)}
            now = list(fg.instances(k))
            if len(now) > 1 and rng.random() < 0.5:
                now.remove(rng.choice(now))
            else:
                now.append(rng.choice([v for v in vnfs if v not in used]))
            hops[k] = tuple(sorted(now)) if len(now) > 1 else now[0]
            new = random_graph(rng, int(fg.name[1:]), hosts, vnfs, hops)
            if both(inc, full, "add_graph", new)[0] == "ok":
                specs[new.name] = new
        elif r < 0.42:
            name = rng.choice(sorted(specs))
            both(inc, full, "remove_graph", name)
            del specs[name]
        elif r < 0.9:                  # one end of a link, or both
            link = rng.choice(links)
            up = rng.random() < 0.5
            ends = [(link.a, link.a_port), (link.b, link.b_port)]
            for sw, port in ends[:rng.randint(1, 2)]:
                both(inc, full, "port_status", switches[sw], port, up)
        else:                          # a switch's whole port description
            sw = rng.choice(sorted(switches))
            ports = {p: rng.random() < 0.6 for s, p in
                     [(l.a, l.a_port) for l in links] + [(l.b, l.b_port) for l in links]
                     if s == sw}
            both(inc, full, "switch_ports", switches[sw], ports)
        assert state(inc) == state(full)
    assert computed[inc] < computed[full]      # the shortcut was taken


def test_graph_left_without_backup_vlans_gets_them_at_the_next_link_up():
    """A protected graph whose backup ran out of VLAN ids on a link gets them once ids
    are free there, at the next link coming up even far from its paths (in a part of the
    network its path searches never reach), as recomputing everything does."""
    #  s1 --- s2        mine: h1 -> h2 (primary s1-s2, backup s1-s3-s2)
    #    \   /         other: h3 -> h4 (s3-s2: takes the only id of the link s3 -> s2)
    #     s3           s4 --- s5: far away (no link to the others)
    switches = {"s1": 1, "s2": 2, "s3": 3, "s4": 4, "s5": 5}
    links = [Link("s1", 10, "s2", 10), Link("s1", 11, "s3", 10), Link("s3", 11, "s2", 11),
             Link("s4", 10, "s5", 10)]
    atts = [Attachment("h1", "s1", 1), Attachment("h2", "s2", 1), Attachment("h3", "s3", 1),
            Attachment("h4", "s2", 2)]
    inc = Fabric(switches, links, atts, vlan_range=(1, 1))
    full = FullFabric(switches, links, atts, vlan_range=(1, 1))
    other = ForwardingGraphSpec(name="other", match={"ip_proto": 17, "udp_dst": 6000},
                                hops=("h3", "h4"))
    mine = ForwardingGraphSpec(name="mine", match={"ip_proto": 17, "udp_dst": 6001},
                               hops=("h1", "h2"), protection=True)
    both(inc, full, "add_graph", other)
    both(inc, full, "add_graph", mine)
    assert inc.graph_backups("mine") == ["segment 0 at s1"] == full.graph_backups("mine")
    both(inc, full, "remove_graph", "other")
    assert inc.graph_backups("mine")             # nothing recomputed it yet
    for up in (False, True):
        both(inc, full, "port_status", switches["s4"], 10, up)
        assert state(inc) == state(full)
    assert inc.graph_backups("mine") == []


def test_a_link_up_recomputes_only_graphs_whose_paths_change():
    """After a link comes up at a switch an unprotected graph's searches scanned, the graph
    keeps its flows untouched (the same dict: not recomputed, nothing sent) when its paths
    and links are still the shortest; a graph the cut had moved is recomputed back onto
    its old path. Both as recomputing everything gives."""
    #  s1 --- s2 --- s4      a: h1 -> h4 (s1-s2-s4)
    #   |      |             b: h3 -> h2 (s3-s2); the cut s1-s3 moves nothing of b's
    #  s3 ----+              c: h1 -> h2 (s1-s2), moved onto s1-s3-s2 by the cut s1-s2
    switches = {"s1": 1, "s2": 2, "s3": 3, "s4": 4}
    links = [Link("s1", 10, "s2", 10), Link("s1", 11, "s3", 10), Link("s3", 11, "s2", 11),
             Link("s2", 12, "s4", 10)]
    atts = [Attachment("h1", "s1", 1), Attachment("h2", "s2", 1), Attachment("h3", "s3", 1),
            Attachment("h4", "s4", 1)]
    inc, full = Fabric(switches, links, atts), FullFabric(switches, links, atts)
    graphs = {n: ForwardingGraphSpec(name=n, match={"ip_proto": 17, "udp_dst": 6000 + i},
                                     hops=hops)
              for i, (n, hops) in enumerate((("a", ("h1", "h4")), ("b", ("h3", "h2")),
                                             ("c", ("h1", "h2"))))}
    for g in graphs.values():
        both(inc, full, "add_graph", g)
    kept = {n: inc._graphs[n].flows for n in ("a", "b")}
    for up in (False, True):                         # s1-s3: no graph's path uses it
        both(inc, full, "port_status", switches["s1"], 11, up)
        assert state(inc) == state(full)
    assert all(inc._graphs[n].flows is kept[n] for n in kept)
    assert all(inc._graphs[n].fresh for n in kept)
    both(inc, full, "port_status", switches["s1"], 10, False)     # c moves to s1-s3-s2
    assert inc.graph_paths("c") == [["s1", "s3", "s2"]]
    moved = inc._graphs["c"].flows
    both(inc, full, "port_status", switches["s1"], 10, True)      # and back
    assert inc.graph_paths("c") == [["s1", "s2"]] and inc._graphs["c"].flows is not moved
    assert state(inc) == state(full)


def test_a_topology_made_link_by_link_equals_one_built_from_the_up_links():
    """Taking links down and up one at a time (the parallel pair often), each topology
    made from the one before (``_Topology.with_link``) has the neighbours, switch pairs and
    links, in the same orders, of one built from the links up, and the one before is left
    as it was."""
    switches, links, _ = fat_tree(4)
    order = sorted(links, key=lambda lk: (min(lk.a, lk.b), max(lk.a, lk.b),
                                          lk.port_of(min(lk.a, lk.b))))

    def shape(t):
        return ([(n, list(nb)) for n, nb in t.adj.items()],
                sorted((k, v["links"]) for k, v in t.edges.items()))

    def built(up):
        return _Topology(sorted(switches), [lk for lk in order if lk in up])
    pair = [lk for lk in links if {lk.a, lk.b} == {"a00", "e00"}]
    rng = random.Random(5)
    up = set(links)
    topo = built(up)
    for _ in range(400):
        link = rng.choice(links + pair * 10)
        before = shape(topo)
        was_down = link not in up
        (up.add if was_down else up.discard)(link)
        new = topo.with_link(link, was_down)
        assert shape(topo) == before
        assert shape(new) == shape(built(up))
        topo = new
