"""The controller's core: forwarding graphs and topology events in, flow/group specs out.

:class:`Fabric` is plain Python (no os-ken): the app decodes OpenFlow events, calls one
method and sends back the :class:`~testbed.controller.specs.Changes` it returns, in
``Changes.ordered()`` order. Unit tests drive it with a fake data plane.

Steering. A graph with hops ``h0 .. hn`` has n segments; segment i carries packets from hop
i to hop i+1 and owns a VLAN id (1..4094, kept for the graph's lifetime so transit flows are
overwritten in place on reroute):

- at hop i's switch a classifier flow (priority ``fg.priority`` + number of classifier
  fields) matches in_port + IPv4 + classifier and either outputs straight to hop i+1 (same
  switch) or pushes the segment's tag and sends it along the shortest path of up links;
- transit switches match ``vlan_vid`` alone, the switch of hop i+1 pops the tag and outputs
  to the hop's port (priority 1000). A VNF sends packets back on the port it got them from,
  untagged, where the next segment's classifier picks them up.

Protection. For each segment and each switch of its primary path but the last, the forward
output goes through a fast-failover group: bucket 1 outputs to the primary port, bucket 2
re-tags the packet with a backup vid owned by that (segment, switch) and outputs to the
first port of a backup path to the segment's last switch. The backup path avoids the next
switch when that switch is not the destination (so it also survives a switch failure),
else (or if there is no such path) just the primary link. Without any backup path the
group has bucket 1 only and ``graph_backups`` reports it. Restoration still recomputes
protected graphs (new primary and backups) when port events arrive.

Desired state. A link going down recomputes only the graphs whose flows (backups included)
use it, to react fast; a link coming up or a switch event recomputes every graph (degraded
ones recover, the others return to shortest paths); paths are deterministic (BFS on a graph
built in sorted order). The fabric then diffs the union against what was installed: adds
for new or changed flows (OFPFC_ADD overwrites by match and priority), deletes for keys no
longer wanted, and likewise for groups. Flows carry ``cookie = graph_id << 32 | segment << 8 |
role`` so per-graph counters can be read with :data:`COOKIE_MASK`.

Switch (re)connection. The fabric's record of what is installed always equals the desired
state (``state_for``), whether or not a switch is connected: the app skips changes for a
switch that is not connected and, when one (re)connects, deletes every flow and group on it
and installs ``base_flows(dpid)`` plus ``state_for(dpid)``. ``switch_status`` is for a switch
dead in the data plane; a lost control connection does not stop OVS forwarding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx

from testbed.controller.specs import (
    ETH_TYPE_IPV4,
    Action,
    Attachment,
    Bucket,
    Changes,
    FlowSpec,
    ForwardingGraphSpec,
    GroupSpec,
    Link,
)
from testbed.errors import ControllerError, ForwardingGraphError

VLAN_MIN, VLAN_MAX = 1, 4094
TRANSIT_PRIORITY = 1000
COOKIE_SHIFT = 32
COOKIE_MASK = 0xFFFFFFFF00000000
cookie_mask = COOKIE_MASK
# Low cookie bits: segment << 8 | role.
ROLE_CLASSIFY, ROLE_TRANSIT, ROLE_DELIVER, ROLE_BACKUP, ROLE_BACKUP_DELIVER = 1, 2, 3, 4, 5
_MAX_GROUP_ID = 0xFFFFFF00  # OFPG_MAX


class _Pool:
    """Lowest-free allocator of small integer ids."""

    def __init__(self, lo: int, hi: int, what: str):
        self.lo, self.hi, self.what = lo, hi, what
        self.used: set[int] = set()
        self._hint = lo

    def take(self) -> int:
        for v in range(self._hint, self.hi + 1):
            if v not in self.used:
                self.used.add(v)
                self._hint = v + 1
                return v
        raise ForwardingGraphError(f"no free {self.what} left ({self.lo}..{self.hi} all in use)")

    def free(self, v: int) -> None:
        self.used.discard(v)
        self._hint = min(self._hint, v)


@dataclass
class _Graph:
    spec: ForwardingGraphSpec
    gid: int
    seg_vids: list[int]
    backup_vids: dict[tuple[int, str], int] = field(default_factory=dict)
    group_ids: dict[tuple[int, str], int] = field(default_factory=dict)
    paths: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)
    links: set[Link] = field(default_factory=set)  # every link its flows use, backups too
    flows: dict[tuple, FlowSpec] = field(default_factory=dict)
    groups: dict[tuple[int, int], GroupSpec] = field(default_factory=dict)


class Fabric:
    """Desired flow/group state of the switches for a set of forwarding graphs."""

    COOKIE_MASK = COOKIE_MASK

    def __init__(self, switches: dict[str, int], links: Iterable[Link],
                 attachments: Iterable[Attachment] = (),
                 vlan_range: tuple[int, int] = (VLAN_MIN, VLAN_MAX)):
        self._dpids = dict(switches)
        self._names = {dpid: name for name, dpid in self._dpids.items()}
        if len(self._names) != len(self._dpids):
            raise ControllerError(f"two switches share a dpid: {switches}")
        self._links = list(links)
        self._link_at: dict[tuple[str, int], Link] = {}
        for link in self._links:
            for sw, port in ((link.a, link.a_port), (link.b, link.b_port)):
                if sw not in self._dpids:
                    raise ControllerError(f"link {link} names unknown switch {sw!r}")
                if (sw, port) in self._link_at:
                    raise ControllerError(f"port {sw}:{port} is used by two links")
                self._link_at[(sw, port)] = link
            if link.a == link.b:
                raise ControllerError(f"link {link} loops back to its own switch")
        self._atts: dict[str, Attachment] = {}
        for att in attachments:
            self._check_attachment(att)
            self._atts[att.name] = att
        self._down_ports: set[tuple[str, int]] = set()
        self._down_switches: set[str] = set()
        self._topo: nx.Graph | None = None
        # Path memos, valid for one _topo (many graphs share their switch pairs).
        self._paths: dict[tuple[str, str], list[str] | None] = {}
        self._backups: dict[tuple, tuple[list[str], Link] | None] = {}
        self._vlans = _Pool(vlan_range[0], vlan_range[1], "VLAN id")
        self._group_pools: dict[int, _Pool] = defaultdict(
            lambda: _Pool(1, _MAX_GROUP_ID, "group id"))
        self._graphs: dict[str, _Graph] = {}
        self._next_gid = 1
        self._installed_flows: dict[tuple, FlowSpec] = {}
        self._installed_groups: dict[tuple[int, int], GroupSpec] = {}

    # ----------------------------------------------------------------- topology state
    def _check_attachment(self, att: Attachment) -> None:
        if att.switch not in self._dpids:
            raise ForwardingGraphError(f"attachment {att.name!r} names unknown switch "
                                       f"{att.switch!r}; known: {sorted(self._dpids)}")
        if (att.switch, att.port) in self._link_at:
            raise ForwardingGraphError(f"attachment {att.name!r}: port {att.switch}:{att.port} "
                                       "is a switch-to-switch link port")

    def switches(self) -> dict[str, int]:
        return dict(self._dpids)

    def links(self) -> list[Link]:
        return list(self._links)

    def link_states(self) -> list[dict]:
        """Every link as a dict (a, a_port, b, b_port, up) for the northbound."""
        return [{"a": l.a, "a_port": l.a_port, "b": l.b, "b_port": l.b_port,
                 "up": self._link_up(l)} for l in self._links]

    def attachments(self) -> dict[str, Attachment]:
        return dict(self._atts)

    def add_attachment(self, att: Attachment) -> Changes:
        """Add or move an attachment; graphs using a moved one are re-installed."""
        self._check_attachment(att)
        old = self._atts.get(att.name)
        self._atts[att.name] = att
        if old is not None and (old.switch, old.port) == (att.switch, att.port):
            return Changes()
        users = self._users_of(att.name)
        try:
            for name in users:
                self._check_classifier_keys(self._graphs[name].spec)
        except ForwardingGraphError:
            if old is None:
                del self._atts[att.name]
            else:
                self._atts[att.name] = old
            raise
        self._topo = None
        for name in users:
            self._compute(self._graphs[name])
        return self._sync()

    def remove_attachment(self, name: str) -> Changes:
        """Forget an attachment; refused while a graph uses it."""
        if name not in self._atts:
            raise ForwardingGraphError(f"unknown attachment {name!r}; known: {sorted(self._atts)}")
        users = self._users_of(name)
        if users:
            raise ForwardingGraphError(f"attachment {name!r} is used by forwarding graph(s) "
                                       f"{', '.join(users)}; remove them first")
        del self._atts[name]
        return Changes()

    def _users_of(self, att_name: str) -> list[str]:
        return [n for n, g in self._graphs.items() if att_name in g.spec.hops]

    def _link_up(self, link: Link) -> bool:
        return (link.a not in self._down_switches and link.b not in self._down_switches
                and (link.a, link.a_port) not in self._down_ports
                and (link.b, link.b_port) not in self._down_ports)

    def _up_links(self) -> frozenset[Link]:
        return frozenset(l for l in self._links if self._link_up(l))

    def port_status(self, dpid: int, port: int, up: bool) -> Changes:
        """A port went down or up: recompute the graphs (restoration). Idempotent: the
        event from the second end of a link that is already down changes nothing. Events
        of switches not in the wiring are ignored (the app ignores those switches too)."""
        if dpid not in self._names:
            return Changes()
        sw = self._names[dpid]
        before = self._up_links()
        if up:
            self._down_ports.discard((sw, port))
        else:
            self._down_ports.add((sw, port))
        after = self._up_links()
        if after == before:
            return Changes()  # an attachment port or the second end of a link
        return self._recompute(before, after)

    def switch_status(self, dpid: int, up: bool) -> Changes:
        """A whole switch died in the data plane (all its links count as down) or came back
        (its links count as up again, except ports reported down). A lost control
        connection alone is not this: OVS keeps forwarding; the app re-syncs on reconnect."""
        if dpid not in self._names:
            return Changes()
        sw = self._names[dpid]
        before, links_before = set(self._down_switches), self._up_links()
        if up:
            self._down_switches.discard(sw)
        else:
            self._down_switches.add(sw)
        if self._down_switches == before:
            return Changes()
        # Everything: a same-switch segment on it uses no link but is affected too.
        return self._recompute(links_before, self._up_links(), every=True)

    def _recompute(self, before: frozenset[Link], after: frozenset[Link],
                   every: bool = False) -> Changes:
        """Links only went down: recompute just the graphs using them, fast (the others'
        paths are still valid). Any link came up: recompute all, to restore degraded graphs
        and move the others back to shortest paths."""
        self._topo = None
        gone = before - after
        for g in self._graphs.values():
            if every or after - before or g.links & gone:
                self._compute(g)
        return self._sync()

    # ------------------------------------------------------------------------ graphs
    def add_graph(self, fg: ForwardingGraphSpec) -> Changes:
        """Install a graph, or replace the graph of the same name (only the diff is sent)."""
        unknown = [h for h in fg.hops if h not in self._atts]
        if unknown:
            raise ForwardingGraphError(
                f"forwarding graph {fg.name!r}: unknown hop(s) {', '.join(map(repr, unknown))}; "
                f"known attachments: {', '.join(sorted(self._atts)) or 'none'}")
        self._check_classifier_keys(fg)
        old = self._graphs.get(fg.name)
        n = len(fg.hops) - 1
        kept = old.seg_vids[:n] if old else []
        fresh: list[int] = []
        try:
            while len(kept) + len(fresh) < n:
                fresh.append(self._vlans.take())
        except ForwardingGraphError as e:
            for v in fresh:
                self._vlans.free(v)
            raise ForwardingGraphError(f"forwarding graph {fg.name!r}: {e}") from None
        if old:
            for v in old.seg_vids[n:]:
                self._vlans.free(v)
            g = old
            g.spec, g.seg_vids = fg, kept + fresh
        else:
            g = _Graph(spec=fg, gid=self._next_gid, seg_vids=fresh)
            self._next_gid += 1
            self._graphs[fg.name] = g
        self._compute(g)
        return self._sync()

    def remove_graph(self, name: str) -> Changes:
        """Remove a graph with all its flows, groups and VLAN ids."""
        g = self._graph(name)
        for v in g.seg_vids:
            self._vlans.free(v)
        for v in g.backup_vids.values():
            self._vlans.free(v)
        for (_, sw), gid in g.group_ids.items():
            self._group_pools[self._dpids[sw]].free(gid)
        del self._graphs[name]
        return self._sync()

    def _graph(self, name: str) -> _Graph:
        try:
            return self._graphs[name]
        except KeyError:
            raise ForwardingGraphError(f"unknown forwarding graph {name!r}; "
                                       f"known: {sorted(self._graphs)}") from None

    def graphs(self) -> dict[str, ForwardingGraphSpec]:
        return {n: g.spec for n, g in self._graphs.items()}

    def graph_paths(self, name: str) -> list[list[str]]:
        """Per segment, the switch path in use ([] while the segment has no path)."""
        return [list(p) for p in self._graph(name).paths]

    def graph_status(self, name: str) -> str:
        """"ok", or "degraded: ..." naming each segment without a path."""
        g = self._graph(name)
        return "degraded: " + "; ".join(g.notes) if g.notes else "ok"

    def graph_backups(self, name: str) -> list[str]:
        """For a protected graph, the (segment, switch) places left without a backup path."""
        return list(self._graph(name).unprotected)

    def graph_vlans(self, name: str) -> list[int]:
        """Every VLAN id the graph holds: segment vids, then backup vids."""
        g = self._graph(name)
        return list(g.seg_vids) + sorted(g.backup_vids.values())

    def graph_cookie(self, name: str) -> int:
        return self._graph(name).gid << COOKIE_SHIFT

    def graph_counters(self, name: str, flows: Iterable[dict]) -> dict:
        """Sum flow-stats rows of the graph (dicts with cookie, packets, bytes) per segment:
        ``in`` counts packets classified at the segment's source, ``out`` those handed to
        its destination (deliver flows, primary or backup). Rows of other graphs are
        ignored. Returns ingress/delivered totals and the per-segment list."""
        g = self._graph(name)
        hops = g.spec.hops
        segs = [{"segment": i, "from": hops[i], "to": hops[i + 1], "in_packets": 0,
                 "in_bytes": 0, "out_packets": 0, "out_bytes": 0} for i in range(len(hops) - 1)]
        for row in flows:
            cookie = int(row["cookie"])
            if cookie & COOKIE_MASK != g.gid << COOKIE_SHIFT:
                continue
            i, role = (cookie >> 8) & 0xFFFFFF, cookie & 0xFF
            if i >= len(segs):
                continue
            ends = []
            if role == ROLE_CLASSIFY:
                ends.append("in")
                if len(g.paths[i]) == 1:  # same switch: the classifier delivers too
                    ends.append("out")
            elif role in (ROLE_DELIVER, ROLE_BACKUP_DELIVER):
                ends.append("out")
            for end in ends:
                segs[i][f"{end}_packets"] += int(row.get("packets", 0))
                segs[i][f"{end}_bytes"] += int(row.get("bytes", 0))
        return {"ingress_packets": segs[0]["in_packets"], "ingress_bytes": segs[0]["in_bytes"],
                "delivered_packets": segs[-1]["out_packets"],
                "delivered_bytes": segs[-1]["out_bytes"], "segments": segs}

    def used_vlans(self) -> set[int]:
        return set(self._vlans.used)

    def state_for(self, dpid: int) -> tuple[list[FlowSpec], list[GroupSpec]]:
        """The graph flows and groups the switch should hold; with ``base_flows(dpid)``
        that is everything. Always equal to what the returned Changes have built."""
        flows: list[FlowSpec] = []
        groups: list[GroupSpec] = []
        for g in self._graphs.values():
            flows += [f for f in g.flows.values() if f.dpid == dpid]
            groups += [gr for gr in g.groups.values() if gr.dpid == dpid]
        return flows, groups

    def base_flows(self, dpid: int) -> list[FlowSpec]:
        """Table-miss: priority 0, empty match, no actions (drop)."""
        return [FlowSpec(dpid=dpid, priority=0, match=(), actions=())]

    # --------------------------------------------------------------------- computing
    def _classifier_keys(self, fg: ForwardingGraphSpec) -> list[tuple]:
        keys = []
        for i in range(len(fg.hops) - 1):
            src = self._atts[fg.hops[i]]
            f = self._classifier(fg, src, (), 0)
            keys.append(f.key())
        return keys

    def _check_classifier_keys(self, fg: ForwardingGraphSpec) -> None:
        """Two graphs with the same classifier at the same port would overwrite each other."""
        mine = self._classifier_keys(fg)
        if len(set(mine)) != len(mine):
            raise ForwardingGraphError(f"forwarding graph {fg.name!r}: two hops share a "
                                       "switch port, their returning packets cannot be told apart")
        for name, g in self._graphs.items():
            if name == fg.name:
                continue
            clash = set(mine) & set(self._classifier_keys(g.spec))
            if clash:
                dpid, _, _, match = min(clash, key=repr)
                raise ForwardingGraphError(
                    f"forwarding graph {fg.name!r}: classifier {dict(match)} at switch "
                    f"{self._names[dpid]} is already used by graph {name!r} (same priority); "
                    "use a different match or priority")

    def _classifier(self, fg: ForwardingGraphSpec, src: Attachment,
                    actions: tuple[Action, ...], cookie: int) -> FlowSpec:
        match = dict(fg.match, in_port=src.port, eth_type=ETH_TYPE_IPV4)
        return FlowSpec(dpid=self._dpids[src.switch], priority=fg.priority + len(fg.match),
                        match=match, actions=actions, cookie=cookie)

    def _topology(self) -> nx.Graph:
        if self._topo is None:
            self._paths, self._backups = {}, {}
            topo = nx.Graph()
            topo.add_nodes_from(sorted(s for s in self._dpids if s not in self._down_switches))
            ups = sorted(self._up_links(), key=lambda l: (min(l.a, l.b), max(l.a, l.b),
                                                          l.port_of(min(l.a, l.b))))
            for link in ups:
                if topo.has_edge(link.a, link.b):
                    topo.edges[link.a, link.b]["links"].append(link)
                else:
                    topo.add_edge(link.a, link.b, links=[link])
            self._topo = topo
        return self._topo

    def _path(self, topo: nx.Graph, a: str, b: str) -> list[str] | None:
        if (a, b) not in self._paths:
            path = None
            if a in topo and b in topo:
                try:
                    path = nx.shortest_path(topo, a, b)
                except nx.NetworkXNoPath:
                    pass
            self._paths[(a, b)] = path
        return self._paths[(a, b)]

    def _compute(self, g: _Graph) -> None:
        """Recompute the desired flows and groups of one graph (allocates and frees the
        backup vids and group ids it needs)."""
        fg, topo = g.spec, self._topology()
        flows: dict[tuple, FlowSpec] = {}
        groups: dict[tuple[int, int], GroupSpec] = {}
        g.paths, g.notes, g.unprotected = [[] for _ in g.seg_vids], [], []
        g.links = set()
        used_backups: set[tuple[int, str]] = set()
        base = g.gid << COOKIE_SHIFT

        def add(f: FlowSpec) -> None:
            flows[f.key()] = f

        # Last segment first and downstream first inside a segment: see Changes.ordered().
        for i in reversed(range(len(fg.hops) - 1)):
            src, dst = self._atts[fg.hops[i]], self._atts[fg.hops[i + 1]]
            vid, cookie = g.seg_vids[i], base | i << 8
            if src.switch == dst.switch and src.switch not in self._down_switches:
                out = ("in_port",) if src.port == dst.port else ("output", dst.port)
                add(self._classifier(fg, src, (out,), cookie | ROLE_CLASSIFY))
                g.paths[i] = [src.switch]
                continue
            path = self._path(topo, src.switch, dst.switch)
            if path is None:
                g.notes.insert(0, f"no path for segment {i} ({fg.hops[i]} -> {fg.hops[i + 1]})")
                continue
            g.paths[i] = path
            dst_dpid = self._dpids[dst.switch]
            add(FlowSpec(dst_dpid, TRANSIT_PRIORITY, {"vlan_vid": vid},
                         (("pop_vlan",), ("output", dst.port)), cookie | ROLE_DELIVER))
            for j in reversed(range(len(path) - 1)):
                s, nxt = path[j], path[j + 1]
                link = topo.edges[s, nxt]["links"][0]
                g.links.add(link)
                in_port = src.port if j == 0 else topo.edges[path[j - 1], s]["links"][0].port_of(s)
                fwd: Action = ("output", link.port_of(s))
                if fg.protection:
                    fwd = self._protect(g, i, path, j, link, in_port, dst, flows, groups, cookie)
                    used_backups.add((i, s))
                if j == 0:
                    add(self._classifier(fg, src, (("push_vlan",), ("set_vlan", vid), fwd),
                                         cookie | ROLE_CLASSIFY))
                else:
                    add(FlowSpec(self._dpids[s], TRANSIT_PRIORITY, {"vlan_vid": vid}, (fwd,),
                                 cookie | ROLE_TRANSIT))
        for key in [k for k in g.backup_vids if k not in used_backups]:
            self._vlans.free(g.backup_vids.pop(key))
        for key in [k for k in g.group_ids if k not in used_backups]:
            self._group_pools[self._dpids[key[1]]].free(g.group_ids.pop(key))
        g.unprotected.sort()
        g.flows, g.groups = flows, groups

    def _backup_path(self, topo: nx.Graph, path: list[str], j: int,
                     link: Link) -> tuple[list[str], Link] | None:
        """A path from path[j] to path[-1] avoiding path[j+1] (unless it is the destination)
        or at least the primary link, with the link its first hop takes."""
        s, nxt, dest = path[j], path[j + 1], path[-1]
        key = (s, nxt, dest, link)
        if key not in self._backups:
            self._backups[key] = self._find_backup(topo, s, nxt, dest, link)
        return self._backups[key]

    def _find_backup(self, topo: nx.Graph, s: str, nxt: str, dest: str,
                     link: Link) -> tuple[list[str], Link] | None:
        parallel = [l for l in topo.edges[s, nxt]["links"] if l != link]
        views = []
        if nxt != dest:
            views.append(nx.restricted_view(topo, [nxt], []))
        views.append(topo if parallel else nx.restricted_view(topo, [], [(s, nxt)]))
        for view in views:
            try:
                bp = nx.shortest_path(view, s, dest)
            except nx.NetworkXNoPath:
                continue
            first = parallel[0] if bp[1] == nxt else topo.edges[s, bp[1]]["links"][0]
            return bp, first
        return None

    def _protect(self, g: _Graph, i: int, path: list[str], j: int, link: Link, in_port: int,
                 dst: Attachment, flows: dict, groups: dict, cookie: int) -> Action:
        """The fast-failover group at path[j] for segment i (and its backup path's flows)."""
        topo, s = self._topology(), path[j]
        dpid = self._dpids[s]
        primary = link.port_of(s)
        buckets = [Bucket(actions=(("output", primary),), watch_port=primary)]
        backup = self._backup_path(topo, path, j, link)
        key = (i, s)
        if backup is not None and key not in g.backup_vids:
            try:
                g.backup_vids[key] = self._vlans.take()
            except ForwardingGraphError:
                backup = None  # out of VLAN ids: run unprotected rather than fail an event
        if backup is None:
            g.unprotected.append(f"segment {i} at {s}")
        else:
            bp, first = backup
            g.links.add(first)
            bvid, q = g.backup_vids[key], first.port_of(s)
            # OpenFlow drops an output to the in_port unless it says OFPP_IN_PORT.
            out = ("in_port",) if q == in_port else ("output", q)
            buckets.append(Bucket(actions=(("set_vlan", bvid), out), watch_port=q))
            for f in self._backup_flows(g, topo, bp, bvid, dst, cookie):
                flows[f.key()] = f
        if key not in g.group_ids:
            g.group_ids[key] = self._group_pools[dpid].take()
        gid = g.group_ids[key]
        groups[(dpid, gid)] = GroupSpec(dpid=dpid, group_id=gid, type="ff", buckets=tuple(buckets))
        return ("group", gid)

    def _backup_flows(self, g: _Graph, topo: nx.Graph, bp: list[str], vid: int, dst: Attachment,
                      cookie: int) -> list[FlowSpec]:
        out = [FlowSpec(self._dpids[bp[-1]], TRANSIT_PRIORITY, {"vlan_vid": vid},
                        (("pop_vlan",), ("output", dst.port)), cookie | ROLE_BACKUP_DELIVER)]
        for k in reversed(range(1, len(bp) - 1)):
            link = topo.edges[bp[k], bp[k + 1]]["links"][0]
            g.links.add(link)
            port = link.port_of(bp[k])
            out.append(FlowSpec(self._dpids[bp[k]], TRANSIT_PRIORITY, {"vlan_vid": vid},
                                (("output", port),), cookie | ROLE_BACKUP))
        return out

    # ----------------------------------------------------------------------- diffing
    def _sync(self) -> Changes:
        """Diff the desired state against what was installed (and record it installed)."""
        want_f: dict[tuple, FlowSpec] = {}
        want_g: dict[tuple[int, int], GroupSpec] = {}
        for g in self._graphs.values():
            want_f.update((k, f) for k, f in g.flows.items())
            want_g.update((k, gr) for k, gr in g.groups.items())
        ch = Changes()
        for k, gr in want_g.items():
            old = self._installed_groups.get(k)
            if old is None:
                ch.group_adds.append(gr)
            elif old != gr:
                ch.group_mods.append(gr)
        ch.flow_adds = [f for k, f in want_f.items() if self._installed_flows.get(k) != f]
        ch.flow_dels = [f for k, f in self._installed_flows.items() if k not in want_f]
        ch.group_dels = [gr for k, gr in self._installed_groups.items() if k not in want_g]
        self._installed_flows, self._installed_groups = want_f, want_g
        return ch
