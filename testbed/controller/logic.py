"""The controller's core: forwarding graphs and topology events in, flow/group specs out.

:class:`Fabric` is plain Python (no os-ken): the app decodes OpenFlow events, calls one
method and sends back the :class:`~testbed.controller.specs.Changes` it returns, in
``Changes.ordered()`` order. Unit tests drive it with a fake data plane.

Steering. A graph with hops ``h0 .. hn`` has n segments; segment i carries packets from hop
i to hop i+1. A hop may have several instances (a scaled-out VNF), so a segment is a set of
paths, one per (source instance, destination instance) pair, carried tagged between
switches (see "VLAN ids per link" below):

- at each instance of hop i a classifier flow (priority ``fg.priority``) matches in_port +
  untagged (``vlan_vid`` none) + IPv4 + classifier. With one destination instance
  it either outputs straight to it (same switch) or pushes the pair's tag and sends it
  along the shortest path of up links (the pair's *actions*). With several reachable
  destination instances (n, in sorted order) the flows are balanced:

  * the classifier fixes ip_proto to UDP (17) or TCP (6) (true of a rewriting source too:
    a NAT keeps the protocol): the classifier is replaced by 2**b masked flows, b =
    ceil(log2(n)), at the classifier's priority, each matching the classifier
    plus ``udp_src``/``tcp_src`` = (v, 2**b - 1), v = 0 .. 2**b - 1, with the actions of
    instance ``v % n``; so a flow's instance is chosen by the low bits of its L4 source
    port (with n = 3: ports ending in 0b00 and 0b11 -> first, 0b01 -> second, 0b10 ->
    third). If the classifier already matches that source port exactly (and the source
    does not rewrite headers) there is one flow only: the plain classifier sends it to
    the instance its port's low bits choose. This split is needed because OVS's select
    hash covers L4 ports for TCP/SCTP only: every UDP flow between two addresses would
    land on one bucket;
  * otherwise a SELECT group with one bucket (weight 1) per reachable destination
    instance doing the pair's actions, so OVS balances by its default hash (MACs, VLAN,
    IPv4 addresses and protocol, L4 ports of TCP/SCTP only): per address pair, or per
    TCP flow.

  The same fields choose the instance at every hop, so between two scaled-out hops which
  pairs carry a flow is correlated; each hop is still balanced, which is what scaling
  needs;
- transit switches match ``in_port`` (the switch-to-switch port the path enters by) and
  ``vlan_vid`` (the id of that link), set the next link's id where it differs and output;
  the switch of the destination instance (same match) pops the tag and outputs to its
  port (priority 1000). A VNF sends packets back on the port it got them from, untagged,
  where the next segment's classifier picks them up;
- a VNF instance listed in the graph's ``rewrites`` (NAT, load balancer) changes the
  headers the classifier looks at, so its returning packets are classified by in_port +
  IPv4 alone (priority ``fg.priority``); its port may not be used by another graph.

VLAN ids per link (like MPLS label swapping). Since every tagged flow matches in_port and
vid, an id only has to be unique among the paths entering one switch by one port: each
directed link, named by where it ends (receiving switch, in_port), has its own pool of
ids (``vlan_range``, 1..4094 by default, for each link). A pair's path s0 .. sn holds one
id per link, vid_1 .. vid_n: s0 pushes a tag and sets vid_1, each sj matches (in_port_j,
vid_j) and sets vid_j+1 where it differs, sn matches (in_port_n, vid_n) and pops.
Allocation is deterministic (the same pools and calls give the same ids): a path with no
ids takes the lowest id free on every one of its links when there is one (so, in a fabric
with room, a pair keeps one id end to end and there are no rewrites); otherwise each link
takes the id of the link before it when free there, else its lowest free id. Across a
reroute a pair keeps its id on every link it still uses, so only the flows of switches
whose links changed are rewritten; ids of links it no longer uses are freed at once.
Pairs that went away free theirs before new pairs are given ids (a new pair on the same
links then takes them, and its flows overwrite theirs in place). A pair finding a link's
pool full makes ``add_graph`` refuse the graph, naming the link, with nothing changed;
outside ``add_graph`` (a reroute) it first frees its own backups' ids and tries again,
and failing that is left without a path (the graph is degraded, its status names the
link) until a later recomputation finds ids (see ``_recompute``).

Isolation (docs/isolation.md). Only classifier flows take frames from host and VNF ports,
and only untagged ones; tagged flows take frames only from the switch-to-switch port their
path uses; everything else meets the table-miss drop. So a frame entering at a host or VNF
port reaches only what a graph of that port allows, whatever tags (a chain's vid, a
priority tag, QinQ) or source addresses it carries. Two graphs whose classifiers overlap at
one port (``mano.classifiers``: some packet matches both) at the same priority are refused;
with different priorities the higher one takes the packets both match.

Protection. For each pair and each switch of its primary path but the last, the forward
output goes through a fast-failover group: bucket 1 sets the next link's id where it
differs (always at the ingress, whose flow then only pushes the tag: a reroute changes id
and port in one group change) and outputs to the primary port, bucket 2 sets the first
id of a backup path owned by that (pair, switch) and outputs to its first port; the
backup path runs to the pair's last switch, with ids per link rewritten hop by hop like
a primary path's. The backup path avoids the next
switch when that switch is not the destination (so it also survives a switch failure),
else (or if there is no such path) just the primary link. Without any backup path the
group has bucket 1 only and ``graph_backups`` reports it. A select bucket (or split flow)
ends in the pair's fast-failover group. Restoration still recomputes protected graphs (new
primary and backups) when port events arrive.

Desired state. A link going down recomputes only the graphs whose flows (backups included)
use it, to react fast; a link coming up or a switch event recomputes every graph (degraded
ones recover, the others return to shortest paths), skipping those whose path searches
never looked at a switch whose links changed since they were computed (their result would
be the same); paths are deterministic (BFS on a graph built in sorted order). A link's
failure can be prepared ahead (``prepare_repair``: its outcome computed and kept for the
current ``generation``), so the event then only installs it. The fabric then diffs the
union against what was installed: adds
for new or changed flows (OFPFC_ADD overwrites by match and priority), deletes for keys no
longer wanted, and likewise for groups. Scaling a hop out or in therefore rewrites only the
classifiers feeding it and adds or removes the flows of the pairs that come or go. Flows
carry ``cookie = graph_id << 32 | slot << 24 | segment << 8 | role`` so per-graph counters can
be read with :data:`COOKIE_MASK`; ``slot`` is a stable per-hop number of the instance
(the source instance for classifiers, the destination one for the others), which is how
``graph_counters`` reports each instance's share. A masked (split) classifier flow has
role ``ROLE_SPLIT`` and carries both: ``dst slot << 24 | src slot << 16 | segment << 8``
(segments fit in 8 bits: at most 256 hops).

Switch (re)connection. The fabric's record of what is installed always equals the desired
state (``state_for``), whether or not a switch is connected: the app skips changes for a
switch that is not connected and, when one (re)connects, first hands its whole port
description to ``switch_ports`` (links are the wiring's, static; a link is up while both
its ports are), then sends only the difference between what the switch holds and
``base_flows(dpid)`` plus ``state_for(dpid)`` (``reconcile.diff``). A restarted controller
gets each graph back with its old numbers (``graph_ids``, ``restore_graph``), so an
unchanged network needs no change at all. A switch dead in the data plane is seen as its
neighbours' ports going down (port status); a lost control connection does not stop OVS
forwarding.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import pairwise

from mano import classifiers
from testbed.controller.paths import shortest_path
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
    is_classifier,
)
from testbed.errors import ControllerError, ForwardingGraphError

VLAN_MIN, VLAN_MAX = 1, 4094
TOPOLOGIES_KEPT = 4     # topologies (with path memos) kept by their set of links down
TRANSIT_PRIORITY = 1000
UNTAGGED = 0  # a vlan_vid match of 0: no 802.1Q tag at all (OFPVID_NONE)
COOKIE_SHIFT = 32
COOKIE_MASK = 0xFFFFFFFF00000000
cookie_mask = COOKIE_MASK
# Low cookie bits: slot << 24 | segment << 8 | role; a split flow adds src slot << 16.
SLOT_SHIFT, SOURCE_SHIFT, SEGMENT_SHIFT = 24, 16, 8
ROLE_CLASSIFY, ROLE_TRANSIT, ROLE_DELIVER, ROLE_BACKUP, ROLE_BACKUP_DELIVER = 1, 2, 3, 4, 5
ROLE_SPLIT = 6  # a masked classifier flow: one L4-source-port share of a scaled-out hop
# ip_proto -> the source-port field a scaled-out hop's flows are split on.
SPLIT_FIELD = {17: "udp_src", 6: "tcp_src"}
_MAX_GROUP_ID = 0xFFFFFF00  # OFPG_MAX
_MAX_SLOT = 0xFF

PairKey = tuple[int, str, str]  # (segment, source instance, destination instance)
# A directed link, named by where it ends: (receiving switch, its port). Each has its own
# VLAN id pool; a path's VLAN ids are one per link it crosses, in path order.
InLink = tuple[str, int]
# A switch path, the link each hop takes, and the in-link each hop enters by.
_Route = tuple[list[str], list[Link], list[InLink]]


SPLIT_TOLERANCE = 0.10   # every instance's share of the split within 10 % of 1/n
MAX_SPLIT_BITS = 8


def split_mask(n: int) -> int:
    """The source-port mask that splits flows among n instances: ``2**b - 1`` with b the
    fewest bits (at least ceil(log2 n)) for which the ``2**b`` values, dealt out as
    ``v % n``, give every instance a share within ``SPLIT_TOLERANCE`` of 1/n (shares are
    ``floor(2**b/n)`` or ``ceil(2**b/n)`` values of ``2**b``); 0 for one instance. So
    n = 2, 4, 8 use 1, 2, 3 bits, n = 3, 5, 7 use 5, 5, 6 bits and n = 6 uses 6 bits."""
    if n <= 1:
        return 0
    for b in range((n - 1).bit_length(), MAX_SPLIT_BITS + 1):
        q, r = divmod(1 << b, n)
        hi, lo = (q + (r > 0)) * n / (1 << b), q * n / (1 << b)
        if hi <= 1 + SPLIT_TOLERANCE and lo >= 1 - SPLIT_TOLERANCE:
            return (1 << b) - 1
    return (1 << MAX_SPLIT_BITS) - 1


def split_instance(port: int, n: int) -> int:
    """Which of n instances (index in sorted order) the flow of this source port goes to."""
    return (port & split_mask(n)) % n if n > 1 else 0


def _match_text(fg: ForwardingGraphSpec, src: Attachment) -> str:
    if src.name in fg.rewrites:
        return f"any IPv4 packet returning from rewriting VNF {src.name}"
    return classifiers.describe(classifiers.masked(fg.match))


def _hop_json(hop: str | tuple[str, ...]) -> str | list[str]:
    return hop if isinstance(hop, str) else list(hop)


class _Journal:
    """Where the id pools of one fabric record what they take and free while a record is
    open (``entries`` not None): undone when an ``add_graph`` fails half-way, and kept
    (``net``) by ``prepare_repair`` to make the pools' changes when the link fails."""

    def __init__(self) -> None:
        self.entries: list[tuple[_Pool, int, bool]] | None = None

    def undo(self, entries: list[tuple[_Pool, int, bool]]) -> None:
        for pool, v, took in reversed(entries):
            if took:
                pool.used.discard(v)
                pool._hint = min(pool._hint, v)
            else:
                pool.used.add(v)

    @staticmethod
    def net(entries: list[tuple[_Pool, int, bool]]) -> list[tuple[_Pool, set[int], set[int]]]:
        """What ``entries`` change, per pool: (pool, ids taken, ids freed), leaving out
        ids taken and freed again (or freed and taken again)."""
        first: dict[tuple[int, int], bool] = {}
        last: dict[tuple[int, int], tuple[_Pool, int, bool]] = {}
        for e in entries:
            k = (id(e[0]), e[1])
            first.setdefault(k, e[2])
            last[k] = e
        out: dict[int, tuple[_Pool, set[int], set[int]]] = {}
        for k, (pool, v, took) in last.items():
            if took == first[k]:    # used at the end iff free at the start: a change
                o = out.setdefault(id(pool), (pool, set(), set()))
                (o[1] if took else o[2]).add(v)
        return list(out.values())

    @staticmethod
    def apply(changes: list[tuple[_Pool, set[int], set[int]]]) -> None:
        """Make the changes ``net`` gave on the pools as they were when they were made."""
        for pool, taken, freed in changes:
            pool.used |= taken
            if freed:
                pool.used -= freed
                pool._hint = min(pool._hint, min(freed))


class _Pool:
    """Lowest-free allocator of small integer ids (``_hint``: every id below it is used)."""

    def __init__(self, lo: int, hi: int, what: str, journal: _Journal | None = None,
                 where: str = ""):
        self.lo, self.hi, self.what, self.where = lo, hi, what, where
        self.used: set[int] = set()
        self._hint = lo
        self.journal = journal

    def _log(self, v: int, took: bool) -> None:
        if self.journal is not None and self.journal.entries is not None:
            self.journal.entries.append((self, v, took))

    def take(self, prefer: int | None = None) -> int:
        """``prefer`` if it is in range and free, else the lowest free id."""
        if prefer is not None and self.lo <= prefer <= self.hi and prefer not in self.used:
            self.used.add(prefer)
            self._log(prefer, True)
            return prefer
        for v in range(self._hint, self.hi + 1):
            if v not in self.used:
                self.used.add(v)
                self._hint = v + 1
                self._log(v, True)
                return v
        raise ForwardingGraphError(f"no free {self.what} left{self.where} "
                                   f"({self.lo}..{self.hi} all in use)")

    def next_free(self, v: int) -> int | None:
        """The lowest free id >= v, or None."""
        v = max(v, self._hint)
        used = self.used
        while v <= self.hi and v in used:
            v += 1
        return v if v <= self.hi else None

    def free(self, v: int) -> None:
        if v in self.used:
            self.used.discard(v)
            self._log(v, False)
        self._hint = min(self._hint, v)


class _Topology:
    """The switches and their up links as an undirected graph: ``edges[a, b]["links"]``
    (either order, one shared dict) lists the up links between two switches in wiring
    order, ``adj[n]`` the neighbours of ``n`` in the order their first link appears, and
    ``n in topo`` says whether ``n`` is a switch. The shape and orders networkx's ``Graph``
    gave, built plainly (it is rebuilt after every link event)."""

    __slots__ = ("adj", "edges")

    def __init__(self, nodes: Iterable[str], ups: Iterable[Link]):
        self.adj: dict[str, dict[str, None]] = {n: {} for n in nodes}
        self.edges: dict[tuple[str, str], dict[str, list[Link]]] = {}
        for link in ups:
            e = self.edges.get((link.a, link.b))
            if e is None:
                self.edges[(link.a, link.b)] = self.edges[(link.b, link.a)] = {"links": [link]}
                self.adj[link.a][link.b] = None
                self.adj[link.b][link.a] = None
            else:
                e["links"].append(link)

    def __contains__(self, node: str) -> bool:
        return node in self.adj

    def with_link(self, link: Link, up: bool) -> _Topology:
        """This topology with ``link`` (a link between two switches of it, now down, or
        up) up, or down: a new one equal to building it from the changed set of up links
        (the same orders), made from this one's dicts, changing only the two switches'
        entries (this one is left as it is)."""
        a, b = link.a, link.b
        new = _Topology((), ())
        new.adj, new.edges = dict(self.adj), dict(self.edges)
        e = self.edges.get((a, b))
        had = e["links"] if e is not None else []
        lo = min(a, b)
        links = sorted([*had, link], key=lambda lk: lk.port_of(lo)) if up else \
            [lk for lk in had if lk != link]
        if links:
            new.edges[(a, b)] = new.edges[(b, a)] = {"links": links}
        else:
            del new.edges[(a, b)], new.edges[(b, a)]
        if bool(had) != bool(links):      # the switches became, or stopped being, neighbours
            for n, m in ((a, b), (b, a)):
                nbs = [x for x in self.adj[n] if x != m] + ([m] if links else [])
                # in the order of their first link: links are taken by switch pair
                new.adj[n] = dict.fromkeys(sorted(nbs, key=lambda x, n=n: (min(n, x),
                                                                          max(n, x))))
        return new


@dataclass
class _Graph:
    spec: ForwardingGraphSpec
    gid: int
    # pair -> {in-link: vid} for each link of its path, in path order (empty: no path or
    # a same-switch pair). The inner dicts are replaced, never changed in place.
    pair_vids: dict[PairKey, dict[InLink, int]]
    slots: dict[tuple[int, str], int]  # (hop index, instance) -> slot, stable while present
    # (segment, src, dst, switch) -> {in-link: vid} along the backup path from that switch
    backup_vids: dict[tuple[int, str, str, str], dict[InLink, int]] = field(
        default_factory=dict)
    # ("ff", segment, src, dst, switch) or ("select", segment, src, switch) -> group id
    group_ids: dict[tuple, int] = field(default_factory=dict)
    pair_paths: dict[PairKey, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unprotected: list[str] = field(default_factory=list)
    links: set[Link] = field(default_factory=set)  # every link its flows use, backups too
    flows: dict[tuple, FlowSpec] = field(default_factory=dict)
    groups: dict[tuple[int, int], GroupSpec] = field(default_factory=dict)
    # For counters: classifier (and split flow) cookies that deliver straight to a
    # same-switch instance, and per select group the same-switch buckets (index ->
    # instance), counted by group stats.
    direct: dict[int, str] = field(default_factory=dict)
    select_direct: dict[tuple[int, int], dict[int, str]] = field(default_factory=dict)
    # The switches whose neighbours its path searches looked at (``paths.shortest_path``'s
    # ``scanned``), and whether its flows are still what computing it now would give
    # (see ``Fabric._recompute``).
    scanned: set[str] = field(default_factory=set)
    fresh: bool = False
    short: bool = False         # a pair or backup went without VLAN ids (a link's pool was empty)

    def pairs(self, i: int) -> list[PairKey]:
        fg = self.spec
        return [(i, s, d) for s in fg.instances(i) for d in fg.instances(i + 1)]


def diff_state(old_f: dict[tuple, FlowSpec], old_g: dict[tuple[int, int], GroupSpec],
               new_f: dict[tuple, FlowSpec], new_g: dict[tuple[int, int], GroupSpec]
               ) -> Changes:
    """What turns switches holding ``old_f``/``old_g`` (flows and groups by key) into
    ``new_f``/``new_g``: groups added or modified (new order), flows added where new or
    different (OFPFC_ADD overwrites by match and priority; the keys of those that
    overwrite one are ``moves``), flows and groups deleted whose key is no longer wanted
    (old order)."""
    ch = Changes()
    for k, gr in new_g.items():
        was = old_g.get(k)
        if was is None:
            ch.group_adds.append(gr)
        elif was != gr:
            ch.group_mods.append(gr)
    ch.flow_adds = [f for k, f in new_f.items() if old_f.get(k) != f]
    ch.moves = frozenset(f.key() for f in ch.flow_adds if f.key() in old_f)
    ch.flow_dels = [f for k, f in old_f.items() if k not in new_f]
    ch.group_dels = [gr for k, gr in old_g.items() if k not in new_g]
    return ch


def _changes_state(method):
    """A Fabric method that may change the desired state moves the generation on (also
    when it raises: it may have changed something first)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            self._generation += 1
    return wrapper


# A graph's computed state (``_compute`` replaces these, mutating only the three id maps).
_GRAPH_STATE = ("pair_paths", "unprotected", "links", "direct", "select_direct", "notes",
                "scanned", "fresh", "short", "flows", "groups", "pair_vids", "backup_vids",
                "group_ids")


def _graph_state(g: _Graph, copy: bool = False) -> tuple:
    state = tuple(getattr(g, f) for f in _GRAPH_STATE)
    return (*state[:-3], dict(g.pair_vids), dict(g.backup_vids), dict(g.group_ids)) if copy \
        else state


def _set_graph_state(g: _Graph, state: tuple) -> None:
    for name, value in zip(_GRAPH_STATE, state, strict=True):
        setattr(g, name, value)


@dataclass
class _Repair:
    """A link failure's prepared outcome: the Changes it sends, the state of the graphs it
    recomputes, and what it takes from and frees to the id pools (VLAN ids of every link,
    group ids of every switch; ``_Journal.net``): made on the pools as they were when it
    was prepared (the generation is unchanged), that gives the pools' state afterwards."""

    changes: Changes
    graphs: dict[str, tuple]
    pools: list[tuple[_Pool, set[int], set[int]]]     # see _Journal.net


class Fabric:
    """Desired flow/group state of the switches for a set of forwarding graphs.

    ``switches``: name -> dpid; ``links``: the wiring (static); ``attachments``: host and
    VNF ports; ``vlan_range``: (lowest, highest) VLAN id each directed link may give out
    (every link has its own pool; ControllerError unless 1 <= lowest <= highest <= 4094).
    """

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
        # Indexes: the attachment names at each (switch, port), the graphs naming each
        # attachment, and the names each graph was indexed under (see _reindex).
        self._at_port: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._named_by: dict[str, set[str]] = defaultdict(set)
        self._indexed: dict[str, frozenset[str]] = {}
        for att in attachments:
            self._check_attachment(att)
            self._set_att(att.name, att)
        self._down_ports: set[tuple[str, int]] = set()
        # the wiring in the order _Topology takes the up links (by switch pair, then port)
        self._link_order = sorted(self._links, key=lambda l: (
            min(l.a, l.b), max(l.a, l.b), l.port_of(min(l.a, l.b))))
        self._switch_order = sorted(self._dpids)
        # the topologies (with their memos, see _topology) of the sets of links down met
        # lately, by that set, least recently used first
        self._topos: dict[frozenset[Link], tuple] = {}
        self._topo: _Topology | None = None
        self._adj: dict[str, tuple[str, ...]] = {}     # _topo's adjacency, see _topology
        # Path memos, valid for one _topo (many graphs share their switch pairs), each
        # with the switches its search scanned.
        # A path memo entry: (path, links, in-links) or None, and the switches scanned.
        self._paths: dict[tuple[str, str], tuple[_Route | None, frozenset]] = {}
        self._backups: dict[tuple, tuple[_Route | None, frozenset]] = {}
        lo, hi = vlan_range
        if not VLAN_MIN <= lo <= hi <= VLAN_MAX:
            raise ControllerError(f"vlan_range {vlan_range} is not within "
                                  f"{VLAN_MIN}..{VLAN_MAX} (lowest, highest)")
        self._vlan_range = (lo, hi)
        # Every pool records into this journal while one is open (see _Journal).
        self._journal = _Journal()
        # One VLAN id pool per directed link, made when first used (see _link_pool).
        self._link_vlans: dict[InLink, _Pool] = {}
        self._group_pools: dict[int, _Pool] = defaultdict(
            lambda: _Pool(1, _MAX_GROUP_ID, "group id", self._journal))
        self._strict = False      # add_graph: a pair without VLAN ids refuses the graph
        self._graphs: dict[str, _Graph] = {}
        self._sorted_names: list[str] | None = None   # graph_names' answer, kept
        self._sigs: dict[str, tuple] = {}        # see _signature
        self._next_gid = 1
        # What the last diff (``_sync``) installed: the union of flows and groups, and per
        # graph (in graph order) the dicts of flows and groups it had then; ``_shared``:
        # some key was held by two graphs then.
        self._installed_flows: dict[tuple, FlowSpec] = {}
        self._installed_groups: dict[tuple[int, int], GroupSpec] = {}
        self._generation = 0
        self._repairs: dict[Link, _Repair] = {}       # see prepare_repair
        self._repairs_gen = 0
        self._synced: dict[str, tuple[dict, dict]] = {}
        self._shared = False
        # Graphs whose flows or groups may have been replaced, or that came or went, since
        # the last diff (a superset: ``_sync`` looks only at these), and each graph's
        # place in the graph order (the order of ``_graphs``).
        self._touched: set[str] = set()
        self._pos: dict[str, int] = {}
        self._synced_pos: dict[str, int] = {}      # _pos of each graph in _synced
        self._next_pos = 0

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

    def _set_att(self, name: str, att: Attachment | None) -> None:
        """Set (None: forget) attachment ``name``, keeping ``_at_port``."""
        old = self._atts.pop(name, None)
        if old is not None:
            self._at_port[(old.switch, old.port)].discard(name)
        if att is not None:
            self._atts[name] = att
            self._at_port[(att.switch, att.port)].add(name)

    def _reindex(self, name: str) -> None:
        """Index graph ``name`` under the attachments its spec names now (none if gone)."""
        for att in self._indexed.pop(name, ()):
            self._named_by[att].discard(name)
        g = self._graphs.get(name)
        if g is not None:
            names = self._indexed[name] = frozenset(g.spec.attachment_names())
            for att in names:
                self._named_by[att].add(name)

    @_changes_state
    def add_attachment(self, att: Attachment) -> Changes:
        """Add or move an attachment; graphs using a moved one are re-installed."""
        self._check_attachment(att)
        old = self._atts.get(att.name)
        self._set_att(att.name, att)
        if old is not None and (old.switch, old.port) == (att.switch, att.port):
            return Changes()
        users = self._users_of(att.name)
        if old is None and not users:
            return Changes()        # a new port no graph names yet: no flow changes
        try:
            for name in users:
                self._check_classifier_keys(self._graphs[name].spec)
        except ForwardingGraphError:
            self._set_att(att.name, old)
            raise
        self._topo = None
        for name in users:
            self._compute(self._graphs[name])
        return self._sync()

    @_changes_state
    def remove_attachment(self, name: str) -> Changes:
        """Forget an attachment; refused while a graph uses it."""
        if name not in self._atts:
            raise ForwardingGraphError(f"unknown attachment {name!r}; known: {sorted(self._atts)}")
        users = self._users_of(name)
        if users:
            raise ForwardingGraphError(f"attachment {name!r} is used by forwarding graph(s) "
                                       f"{', '.join(users)}; remove them first")
        self._set_att(name, None)
        return Changes()

    def users_of(self, att_name: str) -> list[str]:
        """The graphs naming attachment ``att_name`` (which ``remove_attachment`` refuses
        to remove), in graph order; [] for an unknown name."""
        return self._users_of(att_name)

    def _users_of(self, att_name: str) -> list[str]:
        """The graphs naming attachment ``att_name``, in graph order."""
        users = self._named_by.get(att_name)
        return [n for n in self._graphs if n in users] if users else []

    def _link_up(self, link: Link) -> bool:
        return ((link.a, link.a_port) not in self._down_ports
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
        link = self._link_at.get((sw, port))
        if not up and link is not None and self._link_up(link):
            return self._link_down(link, (sw, port))
        was_up = link is not None and self._link_up(link)
        if up:
            self._down_ports.discard((sw, port))
        else:
            self._down_ports.add((sw, port))
        if link is None or self._link_up(link) == was_up:
            return Changes()  # an attachment port or the second end of a link
        self._generation += 1
        # only this link changed state (no listing of every link's state is needed)
        return self._recompute({link} if was_up else set(), set() if was_up else {link})

    # ------------------------------------------------------- link down: the reaction path
    @property
    def generation(self) -> int:
        """A number that changes whenever the desired state may have changed (a graph or
        attachment added, replaced or removed, a link's state changed): prepared repairs
        are valid for one generation only. A port event that changes no link (an
        attachment port, a link's second end) keeps it."""
        return self._generation

    def unprepared_links(self) -> list[Link]:
        """The up links some graph uses (primary or backup) whose repair is not prepared
        for the current generation, in wiring order (``prepare_repair`` takes them)."""
        self._check_repairs()
        used: set[Link] = set()
        for g in self._graphs.values():
            used |= g.links
        return [lk for lk in self._links
                if lk in used and lk not in self._repairs and self._link_up(lk)]

    def prepare_repair(self, link: Link) -> Changes:
        """Compute now what a failure of ``link`` will change (the graphs using it
        recomputed, the diff) and keep it, so that ``port_status`` for either end of the
        link going down, while the generation is unchanged, only installs the prepared
        state and returns these very Changes (the same object: the app keeps their
        encoded messages with them). Changes nothing else: the fabric's state, numbers
        and generation are as before. Returns empty Changes for a link that is down.
        Cost: like the reaction itself (about 0.5 ms per graph using the link at k=8)."""
        self._check_repairs()
        if link in self._repairs:
            return self._repairs[link].changes
        if not self._link_up(link):
            return Changes()
        port = (link.a, link.a_port)
        hit = [g for g in self._graphs.values() if link in g.links]
        saved_graphs = {g.spec.name: _graph_state(g, copy=True) for g in hit}
        saved_topo = (self._topo, self._adj, self._paths, self._backups)
        outer, self._journal.entries = self._journal.entries, []
        try:
            changes = self._compute_link_down(port, hit)
            post = _Repair(changes=changes,
                           graphs={g.spec.name: _graph_state(g) for g in hit},
                           pools=_Journal.net(self._journal.entries))
        finally:
            self._down_ports.discard(port)
            for g in hit:
                _set_graph_state(g, saved_graphs[g.spec.name])
                self._touched.add(g.spec.name)
            self._journal.undo(self._journal.entries)
            self._journal.entries = outer
            self._topo, self._adj, self._paths, self._backups = saved_topo
            if self._topo is not None:     # the topology in use: the newest kept again
                down = self._down_links()
                self._topos.pop(down, None)
                self._topos[down] = saved_topo
        self._repairs[link] = post
        return changes

    def _check_repairs(self) -> None:
        if self._repairs_gen != self._generation:
            self._repairs, self._repairs_gen = {}, self._generation

    def _link_down(self, link: Link, port: tuple[str, int]) -> Changes:
        """One up link goes down (``port`` is one of its ends): the prepared repair when
        there is one for this generation, else the graphs using the link are recomputed
        now. Either way the same state and Changes; only those graphs' flows are diffed
        (flow and group keys of different graphs never coincide: vids and group ids are
        the fabric's, classifiers sharing a port and priority are refused)."""
        self._check_repairs()
        repair = self._repairs.get(link)
        if repair is not None:
            for name, state in repair.graphs.items():
                _set_graph_state(self._graphs[name], state)
                self._touched.add(name)
            _Journal.apply(repair.pools)
            if self._journal.entries is not None:
                self._journal.entries += [(p, v, True) for p, taken, _ in repair.pools
                                          for v in taken]
                self._journal.entries += [(p, v, False) for p, _, freed in repair.pools
                                          for v in freed]
            self._down_ports.add(port)
            self._topo = None
            changes = repair.changes
            hit = list(repair.graphs)
        else:
            graphs = [g for g in self._graphs.values() if link in g.links]
            changes = self._compute_link_down(port, graphs)
            hit = [g.spec.name for g in graphs]
        self._record(changes)
        for name in hit:        # what _sync compares a graph with next time
            g = self._graphs[name]
            self._synced[name] = (g.flows, g.groups)
            self._synced_pos[name] = self._pos[name]
        self._generation += 1
        return changes

    def _compute_link_down(self, port: tuple[str, int], hit: list[_Graph]) -> Changes:
        """Mark ``port`` down, recompute the graphs ``hit`` (in the fabric's order) and
        return their diff against what they had; records nothing installed."""
        self._down_ports.add(port)
        self._topo = None
        old = {g.spec.name: (g.flows, g.groups) for g in hit}
        link = self._link_at[port]
        ends = {link.a, link.b}
        # (graph, segment) of unprotected graphs whose old paths crossed the link: broken,
        # their classifiers may switch at once (Changes.stages())
        broken = {g.gid << COOKIE_SHIFT | pk[0] << SEGMENT_SHIFT
                  for g in hit if not g.spec.protection
                  for pk, path in g.pair_paths.items()
                  if any({s, t} == ends for s, t in pairwise(path))}
        for g in hit:
            self._compute(g)
            # keep the old objects of unchanged entries: a prepared repair then holds
            # only what changes (most of a recomputed graph's flows do not)
            for mine, was in ((g.flows, old[g.spec.name][0]), (g.groups, old[g.spec.name][1])):
                for k, v in mine.items():
                    o = was.get(k)
                    if o is not None and o is not v and o == v:
                        mine[k] = o
        # One diff over all of them: an id one frees may be taken by another (a group id,
        # a vid in a flow's match), which is a modification, not a delete and an add.
        old_f: dict[tuple, FlowSpec] = {}
        old_g: dict[tuple[int, int], GroupSpec] = {}
        new_f: dict[tuple, FlowSpec] = {}
        new_g: dict[tuple[int, int], GroupSpec] = {}
        for g in hit:
            flows, groups = old[g.spec.name]
            old_f.update(flows)
            old_g.update(groups)
            new_f.update(g.flows)
            new_g.update(g.groups)
        changes = diff_state(old_f, old_g, new_f, new_g)
        # a broken segment's classifiers, and the flows of it that overwrite one of the
        # same segment (where its new path leaves the old); never one of another graph's
        # (its packets would reach this graph's destination until they switch)
        gs = COOKIE_MASK | 0xFF << SEGMENT_SHIFT
        changes.at_once = frozenset(
            f.key() for f in changes.flow_adds
            if (f.cookie & gs) in broken
            and (is_classifier(f) if f.key() not in old_f
                 else old_f[f.key()].cookie & gs == f.cookie & gs))
        return changes

    def _record(self, ch: Changes) -> None:
        """Record ``ch`` as installed (what ``_sync`` does for the whole fabric)."""
        flows, groups = self._installed_flows, self._installed_groups
        for f in ch.flow_dels:
            del flows[f.key()]
        for f in ch.flow_adds:
            flows[f.key()] = f
        for gr in ch.group_dels:
            del groups[gr.key()]
        for gr in (*ch.group_adds, *ch.group_mods):
            groups[gr.key()] = gr

    def _recompute(self, gone: AbstractSet[Link], came: AbstractSet[Link],
                   every: bool = False) -> Changes:
        """Links ``gone`` went down and ``came`` came up. Links only went down: recompute
        just the graphs using them, fast (the others' paths are still valid). Any link came
        up: recompute all, to restore degraded graphs and move the others back to shortest
        paths.

        "All" skips, with the same result, every graph whose computation would give what
        it has (``fresh``): one computed since no link changed state at a switch its path
        searches scanned (the searches would find the same paths and links, and its VLAN
        and group ids are kept), unless a pair or backup of it went without VLAN ids (a
        link's pool was full; ids may have been freed since)."""
        self._topo = None
        ends = {sw for link in gone | came for sw in (link.a, link.b)}
        for g in self._graphs.values():
            if g.fresh and not g.scanned.isdisjoint(ends):
                g.fresh = False
            if every or g.links & gone or (came and not g.fresh and not self._same_paths(g)):
                self._compute(g)
        return self._sync()

    def _same_paths(self, g: _Graph) -> bool:
        """Whether computing ``g`` now would give the flows it has, known from its paths
        alone: for a graph without protection, complete (no note) and not short of ids,
        whose every pair finds the path and the links it has, computing gives the same
        flows and groups (they follow from paths, links, attachments and ids). If so the
        graph is marked fresh with its searches' switches as ``scanned``; the paths are
        memoised per switch pair, so this is much cheaper than ``_compute``."""
        fg = g.spec
        if fg.protection or g.notes or g.short:
            return False
        topo, scanned = self._topology(), set()
        for i in range(len(fg.hops) - 1):
            for pk in g.pairs(i):
                src, dst = self._atts[pk[1]], self._atts[pk[2]]
                had = g.pair_paths.get(pk)
                if src.switch == dst.switch:
                    if had != [src.switch]:
                        return False
                    continue
                route = self._path(topo, src.switch, dst.switch, scanned)
                if route is None or route[0] != had:
                    return False
                if any(lk not in g.links for lk in route[1]):
                    return False
        g.scanned, g.fresh = scanned, True
        return True

    # ------------------------------------------------------------------------ graphs
    @_changes_state
    def add_graph(self, fg: ForwardingGraphSpec) -> Changes:
        """Install a graph, or replace the graph of the same name (only the diff is sent).

        Raises ForwardingGraphError, changing nothing, for an unknown hop, a classifier
        conflict, or a pair whose path crosses a link with no VLAN id left (naming the
        graph, the segment, the pair and the link)."""
        unknown = sorted(n for n in fg.attachment_names() if n not in self._atts)
        if unknown:
            raise ForwardingGraphError(
                f"forwarding graph {fg.name!r}: unknown hop(s) {', '.join(map(repr, unknown))}; "
                f"known attachments: {', '.join(sorted(self._atts)) or 'none'}")
        self._check_classifier_keys(fg)
        old = self._graphs.get(fg.name)
        slots = self._slots(fg, old.slots if old else {})
        if old:
            g = old
            saved = (g.spec, g.slots, _graph_state(g, copy=True))
            g.spec, g.slots = fg, slots
        else:
            g = _Graph(spec=fg, gid=self._next_gid, pair_vids={}, slots=slots)
            self._insert(fg.name, g)
        self._reindex(fg.name)
        # Strict: a pair left without VLAN ids (a link's pool is full) refuses the graph;
        # what the computation took and freed is then undone from the journal.
        inner: list = []
        outer, self._journal.entries = self._journal.entries, inner
        self._strict, ok = True, False
        try:
            self._compute(g)
            ok = True
        except ForwardingGraphError:
            self._journal.undo(inner)
            if old:
                g.spec, g.slots = saved[0], saved[1]
                _set_graph_state(g, saved[2])
                self._touched.add(fg.name)
            else:
                self._delete(fg.name)
            self._reindex(fg.name)
            raise
        finally:
            self._strict, self._journal.entries = False, outer
            if ok and outer is not None:
                outer += inner
        if not old:
            self._next_gid += 1
        return self._sync()

    @staticmethod
    def _slots(fg: ForwardingGraphSpec, old: dict[tuple[int, str], int]) -> dict[tuple[int, str], int]:
        """Per hop, a small number per instance, kept while the instance stays."""
        slots: dict[tuple[int, str], int] = {}
        for k in range(len(fg.hops)):
            names = fg.instances(k)
            taken = {old[(k, x)] for x in names if (k, x) in old}
            for x in names:
                if (k, x) in old:
                    slots[(k, x)] = old[(k, x)]
                else:
                    slot = min(v for v in range(_MAX_SLOT + 1) if v not in taken)
                    taken.add(slot)
                    slots[(k, x)] = slot
        return slots

    @_changes_state
    def remove_graph(self, name: str) -> Changes:
        """Remove a graph with all its flows, groups and (per link) VLAN ids."""
        g = self._graph(name)
        for held in (*g.pair_vids.values(), *g.backup_vids.values()):
            self._release(held)
        for key, gid in g.group_ids.items():
            self._group_pools[self._dpids[key[-1]]].free(gid)
        self._delete(name)
        self._reindex(name)
        self._sigs.pop(name, None)
        return self._sync()

    def _graph(self, name: str) -> _Graph:
        try:
            return self._graphs[name]
        except KeyError:
            raise ForwardingGraphError(f"unknown forwarding graph {name!r}; "
                                       f"known: {sorted(self._graphs)}") from None

    def graphs(self) -> dict[str, ForwardingGraphSpec]:
        """Every graph's spec by name (a new dict: O(graphs); ``graph_spec`` and
        ``has_graph`` ask about one)."""
        return {n: g.spec for n, g in self._graphs.items()}

    def has_graph(self, name: str) -> bool:
        return name in self._graphs

    def graph_spec(self, name: str) -> ForwardingGraphSpec:
        """One graph's spec; ForwardingGraphError names the known graphs if there is none."""
        return self._graph(name).spec

    def graph_names(self) -> list[str]:
        """The graphs' names, sorted (kept until a graph comes or goes)."""
        if self._sorted_names is None:
            self._sorted_names = sorted(self._graphs)
        return list(self._sorted_names)

    def graph_paths(self, name: str) -> list[list[str]]:
        """Per segment, the switch path in use ([] while the segment has no path). A segment
        between scaled-out hops has one path per instance pair: this gives its first pair's
        (sources, then destinations, in name order); ``graph_pairs`` lists them all."""
        g = self._graph(name)
        return [list(g.pair_paths.get(g.pairs(i)[0], []))
                for i in range(len(g.spec.hops) - 1)]

    def graph_pairs(self, name: str) -> list[dict]:
        """Every (source instance, destination instance) path: segment, from, to, path
        (switches; [] without a path), ``vlans`` (the VLAN id on each link of the path, in
        order: one fewer than the path's switches) and ``vlan`` (the id on its first link,
        the one the source's switch pushes; None for a pair on one switch or without a
        path)."""
        g = self._graph(name)
        out = []
        for i in range(len(g.spec.hops) - 1):
            for pk in g.pairs(i):
                vlans = list(g.pair_vids.get(pk, {}).values())
                out.append({"segment": i, "from": pk[1], "to": pk[2],
                            "vlan": vlans[0] if vlans else None, "vlans": vlans,
                            "path": list(g.pair_paths.get(pk, []))})
        return out

    def graph_status(self, name: str) -> str:
        """"ok", or "degraded: ..." naming each segment without a path."""
        g = self._graph(name)
        return "degraded: " + "; ".join(g.notes) if g.notes else "ok"

    def graph_backups(self, name: str) -> list[str]:
        """For a protected graph, the (segment, switch) places left without a backup path."""
        return list(self._graph(name).unprotected)

    def graph_vlans(self, name: str) -> list[tuple[str, int, int]]:
        """Every VLAN id the graph holds, as (switch, in_port, vid): the id on the link
        entering ``switch`` by ``in_port``. Its pairs' first (by segment, source,
        destination, each in path order), then its backup paths' (sorted)."""
        g = self._graph(name)
        out = [(*k, v) for i in range(len(g.spec.hops) - 1) for pk in g.pairs(i)
               for k, v in g.pair_vids.get(pk, {}).items()]
        return out + sorted((*k, v) for held in g.backup_vids.values() for k, v in held.items())

    def graph_cookie(self, name: str) -> int:
        return self._graph(name).gid << COOKIE_SHIFT

    def graph_counters(self, name: str, flows: Iterable[dict],
                       groups: Iterable[dict] | None = None) -> dict:
        """Sum flow-stats rows of the graph (dicts with cookie, packets, bytes) per segment:
        ``in`` counts packets classified at the segment's sources, ``out`` those handed to
        its destinations (deliver flows, primary or backup). Rows of other graphs are
        ignored. Returns ingress/delivered totals, the per-segment list and ``instances``:
        for every instance of a VNF hop (``hops[1:-1]``), ``hop``, ``delivered_*`` (handed
        to it) and ``returned_*`` (coming back from it, classified for the next segment).

        Split (masked) classifier flows count like classifiers and, when they hand packets
        straight to an instance on their own switch, as deliveries to it. A select group
        that does that has no flow of its own per instance: those deliveries are counted
        from ``groups``,
        group-stats rows (``dpid`` or ``switch``, ``group_id``, ``buckets``: a list of
        {packets, bytes} in bucket order), when given; without them they count in no
        ``out`` and ``exact`` is False."""
        g = self._graph(name)
        fg = g.spec
        hops, n = fg.hops, len(fg.hops) - 1
        segs = [{"segment": i, "from": _hop_json(hops[i]), "to": _hop_json(hops[i + 1]),
                 "in_packets": 0, "in_bytes": 0, "out_packets": 0, "out_bytes": 0}
                for i in range(n)]
        inst: dict[str, dict] = {}
        by_slot: dict[tuple[int, int], str] = {}
        for k in range(1, n):
            for x in fg.instances(k):
                inst[x] = {"hop": k, "delivered_packets": 0, "delivered_bytes": 0,
                           "returned_packets": 0, "returned_bytes": 0}
        for (k, x), slot in g.slots.items():
            by_slot[(k, slot)] = x

        def count(entry: dict, end: str, packets: int, nbytes: int) -> None:
            entry[f"{end}_packets"] += packets
            entry[f"{end}_bytes"] += nbytes

        def delivered(i: int, dst: str | None, packets: int, nbytes: int) -> None:
            count(segs[i], "out", packets, nbytes)
            if dst is not None and i + 1 < n and dst in inst:
                count(inst[dst], "delivered", packets, nbytes)

        for row in flows:
            cookie = int(row["cookie"])
            if cookie & COOKIE_MASK != g.gid << COOKIE_SHIFT:
                continue
            i, role = (cookie >> SEGMENT_SHIFT) & 0xFF, cookie & 0xFF
            slot = (cookie >> SLOT_SHIFT) & _MAX_SLOT
            if i >= n:
                continue
            packets, nbytes = int(row.get("packets", 0)), int(row.get("bytes", 0))
            if role in (ROLE_CLASSIFY, ROLE_SPLIT):
                if role == ROLE_SPLIT:
                    slot = (cookie >> SOURCE_SHIFT) & _MAX_SLOT
                count(segs[i], "in", packets, nbytes)
                src = by_slot.get((i, slot))
                if i >= 1 and src in inst:
                    count(inst[src], "returned", packets, nbytes)
                if cookie in g.direct:  # same switch: the classifier delivers too
                    delivered(i, g.direct[cookie], packets, nbytes)
            elif role in (ROLE_DELIVER, ROLE_BACKUP_DELIVER):
                delivered(i, by_slot.get((i + 1, slot)), packets, nbytes)
        exact = not g.select_direct
        if groups is not None:
            exact = True
            seg_of: dict[tuple[int, int], int] = {}
            for (kind, *rest), gid in g.group_ids.items():
                if kind == "select":
                    seg_of[(self._dpids[rest[-1]], gid)] = rest[0]
            for row in groups:
                dpid = row["dpid"] if "dpid" in row else self._dpids.get(row.get("switch"))
                key = (dpid, int(row["group_id"]))
                if key not in g.select_direct:
                    continue
                buckets = list(row.get("buckets", ()))
                for idx, dst in g.select_direct[key].items():
                    if idx < len(buckets):
                        delivered(seg_of[key], dst, int(buckets[idx].get("packets", 0)),
                                  int(buckets[idx].get("bytes", 0)))
        return {"ingress_packets": segs[0]["in_packets"], "ingress_bytes": segs[0]["in_bytes"],
                "delivered_packets": segs[-1]["out_packets"],
                "delivered_bytes": segs[-1]["out_bytes"], "segments": segs,
                "instances": inst, "exact": exact}

    def used_vlans(self) -> set[tuple[str, int, int]]:
        """Every VLAN id in use, as (switch, in_port, vid): each link (named by the switch
        it enters and the port it enters by) has its own ids."""
        return {(*k, v) for k, pool in self._link_vlans.items() for v in pool.used}

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
    def _sources(self, fg: ForwardingGraphSpec) -> list[tuple[int, Attachment]]:
        return [(i, self._atts[x]) for i in range(len(fg.hops) - 1) for x in fg.instances(i)]

    def _ports(self, names: Iterable[str]) -> dict[tuple[str, int], str]:
        return {(self._atts[x].switch, self._atts[x].port): x for x in names}

    def _check_classifier_keys(self, fg: ForwardingGraphSpec) -> None:
        """Two hops of one graph at one port, a rewriting VNF's port shared with another
        graph, or two graphs' classifiers overlapping at one port at the same priority
        would make packets ambiguous: refused (ForwardingGraphError)."""
        ports: dict[tuple[str, int], str] = {}
        for _, src in self._sources(fg):
            if (src.switch, src.port) in ports:
                raise ForwardingGraphError(
                    f"forwarding graph {fg.name!r}: two hops share a switch port "
                    f"({ports[(src.switch, src.port)]!r} and {src.name!r} at "
                    f"{src.switch}:{src.port}), their returning packets cannot be told apart")
            ports[(src.switch, src.port)] = src.name
        my_ports, my_rewrites = self._signature(fg)
        near = self._near(my_ports)
        near.discard(fg.name)
        for name in sorted((n for n in near if n in self._graphs), key=self._pos.__getitem__):
            g = self._graphs[name]
            their_ports, their_rewrites = self._signature(g.spec)
            for mine_rw, other in ((my_rewrites, their_ports),
                                   (my_ports, their_rewrites)):
                both = sorted(set(mine_rw) & set(other))
                if both:
                    sw, port = both[0]
                    rw = (mine_rw if mine_rw is my_rewrites else other)[(sw, port)]
                    raise ForwardingGraphError(
                        f"forwarding graph {fg.name!r}: port {sw}:{port} of header-rewriting "
                        f"VNF {rw!r} is also used by graph {name!r}; packets coming back from "
                        "it could not be told apart")
            self._check_overlap(fg, g.spec)

    def _near(self, ports: Iterable[tuple[str, int]]) -> set[str]:
        """The graphs naming an attachment at one of ``ports``: the only ones
        ``_check_classifier_keys`` can find in conflict (each of its checks needs an
        attachment of the other graph at a port of this one)."""
        return {n for p in ports for att in self._at_port.get(p, ())
                for n in self._named_by.get(att, ())}

    def _check_overlap(self, fg: ForwardingGraphSpec, other: ForwardingGraphSpec) -> None:
        """Refuse ``fg`` when, at a port both graphs classify at, some packet matches both
        classifiers and the two have the same priority (which graph takes it would be
        undefined); with different priorities the higher one takes it. The overlap rule is
        ``mano.classifiers``' (one place for the NFVO and every NFVI)."""
        theirs = {(s.switch, s.port): s for _, s in self._sources(other)}
        for _, src in self._sources(fg):
            o = theirs.get((src.switch, src.port))
            if o is None:
                continue
            both = classifiers.conflict(self._source_match(fg, src), fg.priority,
                                        self._source_match(other, o), other.priority)
            if both is not None:
                raise ForwardingGraphError(
                    f"forwarding graph {fg.name!r} overlaps forwarding graph {other.name!r} "
                    f"at {src.switch}:{src.port} ({src.name}): a packet with "
                    f"{classifiers.describe(both)} matches both classifiers "
                    f"({_match_text(fg, src)} and {_match_text(other, o)}) and both have "
                    f"priority {fg.priority}; make the classifiers disjoint or give the "
                    "graphs different priorities (an NSD's VNFFG precedence), the higher "
                    "one then takes the packets both match")

    def _signature(self, fg: ForwardingGraphSpec) -> tuple[dict, dict]:
        """The ports of a graph's attachments and of its rewriting VNFs, kept while the
        spec and its attachments stay the same objects (every graph is compared with the
        one being installed)."""
        atts = tuple(self._atts.get(n) for n in sorted(fg.attachment_names()))
        hit = self._sigs.get(fg.name)
        if hit is not None and hit[0] is fg and hit[1] == atts:
            return hit[2]
        sig = (self._ports(fg.attachment_names()), self._ports(fg.rewrites))
        self._sigs[fg.name] = (fg, atts, sig)
        return sig

    def _classifier(self, fg: ForwardingGraphSpec, src: Attachment,
                    actions: tuple[Action, ...], cookie: int,
                    split: tuple[int, int] | None = None) -> FlowSpec:
        """The classifier flow of one source (untagged frames only); with ``split`` =
        (value, mask) the masked flow for one source-port share (classifier +
        ``udp_src``/``tcp_src``, same priority)."""
        match = dict(self._source_match(fg, src), in_port=src.port, eth_type=ETH_TYPE_IPV4,
                     vlan_vid=UNTAGGED)
        if split is not None:
            proto = dict(fg.match)["ip_proto"]
            match["ip_proto"] = proto  # the OXM prerequisite of an L4 field
            match[SPLIT_FIELD[proto]] = split
        return FlowSpec(dpid=self._dpids[src.switch], priority=fg.priority, match=match,
                        actions=actions, cookie=cookie)

    @staticmethod
    def _source_match(fg: ForwardingGraphSpec, src: Attachment) -> dict:
        """The classifier fields a graph applies at one source: its classifier, or nothing
        but IPv4 for a header-rewriting VNF (its port alone says which graph a packet is
        on, since the VNF changed the 5-tuple)."""
        return {} if src.name in fg.rewrites else dict(fg.match)

    @staticmethod
    def _split_field(fg: ForwardingGraphSpec) -> str | None:
        """The L4 source-port field a scaled-out hop's flows are split on, when the
        classifier fixes the protocol to UDP or TCP."""
        return SPLIT_FIELD.get(dict(fg.match).get("ip_proto"))  # type: ignore[arg-type]

    def _topology(self) -> _Topology:
        """The topology of the links up now, with its path memos (``_adj``, ``_paths``,
        ``_backups``): the ones kept for this set of links down when it was met lately
        (a link that comes back restores the topology before its failure, memos and all:
        they depend on the up links only), else built."""
        if self._topo is None:
            down = self._down_links()
            kept = self._topos.pop(down, None)
            if kept is None:
                kept = self._derived(down)
            if kept is None:
                ups = [lk for lk in self._link_order if self._link_up(lk)]
                topo = _Topology(self._switch_order, ups)
                # the adjacency as tuples, for paths.shortest_path
                kept = (topo, {n: tuple(nb) for n, nb in topo.adj.items()}, {}, {})
            self._topos[down] = kept           # the newest last
            while len(self._topos) > TOPOLOGIES_KEPT:
                del self._topos[next(iter(self._topos))]
            self._topo, self._adj, self._paths, self._backups = kept
        return self._topo

    def _derived(self, down: frozenset[Link]) -> tuple | None:
        """The topology (with empty memos) of links ``down`` made from a kept one whose
        set of links down differs by one link, the newest such (building one anew makes
        thousands of objects that live on, each build prompting the garbage collector to
        go over the whole heap); None if no kept one is that close."""
        for was in reversed(self._topos):
            if len(was ^ down) == 1:
                (link,) = was ^ down
                topo, adj = self._topos[was][:2]
                new = topo.with_link(link, link in was)
                adj = dict(adj)
                adj[link.a], adj[link.b] = tuple(new.adj[link.a]), tuple(new.adj[link.b])
                return new, adj, {}, {}
        return None

    def _down_links(self) -> frozenset[Link]:
        """The links down now (one of their ports is)."""
        return frozenset(self._link_at[p] for p in self._down_ports if p in self._link_at)

    def _path(self, topo: _Topology, a: str, b: str, scanned: set[str]) -> _Route | None:
        """The shortest path a -> b of up links with its links and in-links (memo); adds
        the switches its search scanned to ``scanned``."""
        hit = self._paths.get((a, b))
        if hit is None:
            path, seen = None, set()
            if a in topo and b in topo:
                path = shortest_path(self._adj, a, b, scanned=seen)
            route = None
            if path is not None:
                route = self._route(path, [topo.edges[x, y]["links"][0]
                                           for x, y in pairwise(path)])
            hit = self._paths[(a, b)] = (route, frozenset(seen))
        scanned |= hit[1]
        return hit[0]

    @staticmethod
    def _route(path: list[str], links: list[Link]) -> _Route:
        """A switch path with the link each hop takes and the in-link it enters by."""
        return path, links, [(b, lk.port_of(b)) for b, lk in zip(path[1:], links)]

    def _compute(self, g: _Graph) -> None:
        """Recompute the desired flows and groups of one graph (allocates and frees the
        VLAN ids, per link, and the group ids it needs). Inside ``add_graph``
        (``_strict``) a pair without VLAN ids raises ForwardingGraphError."""
        fg = g.spec
        flows: dict[tuple, FlowSpec] = {}
        groups: dict[tuple[int, int], GroupSpec] = {}
        g.pair_paths, g.unprotected, g.links = {}, [], set()
        g.direct, g.select_direct = {}, {}
        g.scanned, g.fresh, g.short = set(), False, False
        notes: list[tuple[PairKey, str]] = []
        used_backups: set[tuple] = set()
        used_groups: set[tuple] = set()
        base = g.gid << COOKIE_SHIFT
        # Pairs that went away free their VLAN ids first: a new pair whose path crosses
        # the same links may take them (its flows then overwrite theirs in place).
        n = len(fg.hops) - 1
        for pk in [k for k in g.pair_vids if k[0] >= n or k[1] not in fg.instances(k[0])
                   or k[2] not in fg.instances(k[0] + 1)]:
            self._release(g.pair_vids.pop(pk))

        # Last segment first and downstream first inside a segment: see Changes.ordered().
        for i in reversed(range(len(fg.hops) - 1)):
            dsts = fg.instances(i + 1)
            for sname in fg.instances(i):
                src = self._atts[sname]
                outs: list[tuple[str, tuple[Action, ...], bool]] = []
                for dname in dsts:
                    got = self._pair(g, (i, sname, dname), flows, groups, used_backups,
                                     used_groups, notes)
                    if got is not None:
                        outs.append((dname, *got))
                if not outs:
                    continue
                src_slot = g.slots[(i, sname)]
                cookie = base | src_slot << SLOT_SHIFT | i << SEGMENT_SHIFT | ROLE_CLASSIFY
                split_on = self._split_field(fg) if len(dsts) > 1 else None
                # A source port the classifier fixes (and the source does not rewrite).
                fixed = dict(fg.match).get(split_on) if split_on and sname not in fg.rewrites \
                    else None
                if len(dsts) == 1 or (split_on and (len(outs) == 1 or fixed is not None)):
                    # One instance, or a single flow: the plain classifier picks it.
                    dname, actions, direct = outs[split_instance(fixed or 0, len(outs))]
                    if direct:
                        g.direct[cookie] = dname
                elif split_on:
                    # Per-flow split on the low bits of the L4 source port (see above).
                    mask = split_mask(len(outs))
                    for v in range(mask + 1):
                        dname, acts, direct = outs[v % len(outs)]
                        c = (base | g.slots[(i + 1, dname)] << SLOT_SHIFT
                             | src_slot << SOURCE_SHIFT | i << SEGMENT_SHIFT | ROLE_SPLIT)
                        if direct:
                            g.direct[c] = dname
                        f = self._classifier(fg, src, acts, c, split=(v, mask))
                        flows[f.key()] = f
                    continue
                else:
                    key = ("select", i, sname, src.switch)
                    used_groups.add(key)
                    gid = self._group_id(g, key)
                    dpid = self._dpids[src.switch]
                    groups[(dpid, gid)] = GroupSpec(
                        dpid=dpid, group_id=gid, type="select",
                        buckets=tuple(Bucket(actions=acts, weight=1) for _, acts, _ in outs))
                    direct_buckets = {k: d for k, (d, _, direct) in enumerate(outs) if direct}
                    if direct_buckets:
                        g.select_direct[(dpid, gid)] = direct_buckets
                    actions = (("group", gid),)
                f = self._classifier(fg, src, actions, cookie)
                flows[f.key()] = f
        for key in [k for k in g.backup_vids if k not in used_backups]:
            self._release(g.backup_vids.pop(key))
        for key in [k for k in g.group_ids if k not in used_groups]:
            self._group_pools[self._dpids[key[-1]]].free(g.group_ids.pop(key))
        g.notes = [text for _, text in sorted(notes)]
        g.unprotected.sort()
        g.flows, g.groups = flows, groups
        self._touched.add(fg.name)
        g.fresh = not g.short

    def _group_id(self, g: _Graph, key: tuple) -> int:
        if key not in g.group_ids:
            g.group_ids[key] = self._group_pools[self._dpids[key[-1]]].take()
        return g.group_ids[key]

    def _pair(self, g: _Graph, pk: PairKey, flows: dict, groups: dict, used_backups: set,
              used_groups: set, notes: list) -> tuple[tuple[Action, ...], bool] | None:
        """The flows of one (source, destination) path; returns the actions that send a
        classified packet on it from the source's switch and whether they deliver it
        directly (same switch), or None when there is no path (or, outside ``add_graph``,
        a link of it has no VLAN id left: then the graph is ``short``)."""
        fg, topo = g.spec, self._topology()
        i, sname, dname = pk
        src, dst = self._atts[sname], self._atts[dname]
        cookie = g.gid << COOKIE_SHIFT | g.slots[(i + 1, dname)] << SLOT_SHIFT | i << SEGMENT_SHIFT
        if src.switch == dst.switch:
            self._release(g.pair_vids.pop(pk, {}))
            g.pair_paths[pk] = [src.switch]
            return ((("in_port",) if src.port == dst.port else ("output", dst.port)),), True
        route = self._path(topo, src.switch, dst.switch, g.scanned)
        if route is None:
            self._release(g.pair_vids.pop(pk, {}))
            notes.append((pk, f"no path for segment {i} ({sname} -> {dname})"))
            return None
        path, links, ins = route
        held = was = g.pair_vids.pop(pk, {})
        for retry in (False, True):
            try:
                held = self._vids_for(held, ins)
                break
            except ForwardingGraphError as exc:
                held = {}
                mine = [k for k in g.backup_vids if k[:3] == pk]
                if not retry and mine:
                    # The pair's own backups hold ids on the links it moves onto (often
                    # the old backup's): free them and try again, the ids of the links
                    # it keeps taken back. Only then, so that normally a new primary never
                    # reuses its old backup's ids and those flows stay until the new path
                    # is built (make before break).
                    for key in mine:
                        self._release(g.backup_vids.pop(key))
                    held = {k: self._link_pool(k).take(v) for k, v in was.items() if k in ins}
                    continue
                if self._strict:
                    raise ForwardingGraphError(f"forwarding graph {fg.name!r}: segment {i} "
                                               f"({sname} -> {dname}): {exc}") from None
                g.short = True
                notes.append((pk, f"no VLAN id for segment {i} ({sname} -> {dname}): {exc}"))
                return None
        g.pair_vids[pk] = held
        vids = list(held.values())          # in path order
        g.pair_paths[pk] = path

        def add(f: FlowSpec) -> None:
            flows[f.key()] = f

        add(FlowSpec(self._dpids[dst.switch], TRANSIT_PRIORITY,
                     {"in_port": ins[-1][1], "vlan_vid": vids[-1]},
                     (("pop_vlan",), ("output", dst.port)), cookie | ROLE_DELIVER))
        first: tuple[Action, ...] = ()
        for j in reversed(range(len(path) - 1)):
            s, link = path[j], links[j]
            g.links.add(link)
            in_port = src.port if j == 0 else ins[j - 1][1]
            # The next link's VLAN id, where it differs from the one the packet came with
            # (at the ingress: the tag just pushed).
            rewrite: tuple[Action, ...] = () if j > 0 and vids[j - 1] == vids[j] \
                else (("set_vlan", vids[j]),)
            fwd: tuple[Action, ...] = (*rewrite, ("output", link.port_of(s)))
            if fg.protection:
                # The primary bucket sets the next link's id itself, so a reroute that
                # changes it switches id and port in one group change.
                fwd = (self._protect(g, pk, path, j, link, in_port, fwd, dst, flows, groups,
                                     cookie),)
                used_backups.add((*pk, s))
                used_groups.add(("ff", *pk, s))
            if j == 0:
                first = (("push_vlan",), *fwd)
            else:
                # in_port too: a tagged frame is only taken from the link the path uses
                add(FlowSpec(self._dpids[s], TRANSIT_PRIORITY,
                             {"in_port": in_port, "vlan_vid": vids[j - 1]}, fwd,
                             cookie | ROLE_TRANSIT))
        return first, False

    # ------------------------------------------------------------- VLAN ids per link
    def _link_pool(self, key: InLink) -> _Pool:
        """The VLAN id pool of the directed link entering switch ``key[0]`` by port
        ``key[1]`` (made on first use)."""
        pool = self._link_vlans.get(key)
        if pool is None:
            link = self._link_at[key]
            peer = (link.a, link.a_port) if (link.b, link.b_port) == key else (link.b, link.b_port)
            pool = self._link_vlans[key] = _Pool(
                *self._vlan_range, "VLAN id", self._journal,
                where=f" on link {peer[0]}:{peer[1]} -> {key[0]}:{key[1]}")
        return pool

    def _vids_for(self, held: dict[InLink, int], keys: list[InLink]) -> dict[InLink, int]:
        """The VLAN ids of a path crossing the links ``keys`` (in order) that held ``held``:
        the id it has on a link it keeps using stays; ids of links it no longer uses are
        freed. A path with no id yet takes the lowest id free on every one of its links
        if there is one; otherwise each link without an id takes the id of the link
        before it (or, for the first links, of the first link after them that has one)
        when that is free on it, else its lowest free id. Deterministic: the same pools
        and arguments give the same ids.

        Returns {link: vid} in ``keys`` order (``held`` itself when nothing changes).
        Raises ForwardingGraphError naming the link whose pool is full, having freed every
        id of ``held`` and those it took."""
        if len(held) == len(keys) and list(held) == keys:   # the same links (in order)
            return held
        out = {k: held[k] for k in keys if k in held}
        for k, v in held.items():
            if k not in out:
                self._link_pool(k).free(v)
        try:
            if not out:
                v = self._common_free(keys)
                if v is not None:
                    for k in keys:
                        self._link_pool(k).take(v)
                    return dict.fromkeys(keys, v)
            prev: int | None = None
            for idx, k in enumerate(keys):
                if k not in out:
                    if prev is None:
                        prev = next((out[x] for x in keys[idx + 1:] if x in out), None)
                    out[k] = self._link_pool(k).take(prev)
                prev = out[k]
        except ForwardingGraphError:
            for k, v in out.items():
                self._link_pool(k).free(v)
            raise
        return {k: out[k] for k in keys}

    def _common_free(self, keys: list[InLink]) -> int | None:
        """The lowest VLAN id free on every link of ``keys``, or None."""
        pools = [self._link_pool(k) for k in keys]
        v: int | None = self._vlan_range[0]
        while v is not None:
            for p in pools:
                w = p.next_free(v)
                if w != v:
                    v = w
                    break
            else:
                return v
        return None

    def _release(self, held: Mapping[InLink, int]) -> None:
        """Free the VLAN ids of a path ({link: vid})."""
        for k, v in held.items():
            self._link_pool(k).free(v)

    # ------------------------------------------------------------------- protection
    def _backup_path(self, topo: _Topology, path: list[str], j: int, link: Link,
                     scanned: set[str]) -> _Route | None:
        """A path from path[j] to path[-1] avoiding path[j+1] (unless it is the destination)
        or at least the primary link, with the links it takes and the in-links it enters
        by (memo); adds the switches its searches scanned to ``scanned``."""
        s, nxt, dest = path[j], path[j + 1], path[-1]
        key = (s, nxt, dest, link)
        hit = self._backups.get(key)
        if hit is None:
            seen: set[str] = set()
            hit = self._backups[key] = (self._find_backup(topo, s, nxt, dest, link, seen),
                                        frozenset(seen))
        scanned |= hit[1]
        return hit[0]

    def _find_backup(self, topo: _Topology, s: str, nxt: str, dest: str, link: Link,
                     scanned: set[str]) -> _Route | None:
        parallel = [l for l in topo.edges[s, nxt]["links"] if l != link]
        avoid: list[dict] = []     # first without the next switch, then without the link
        if nxt != dest:
            avoid.append({"skip_node": nxt})
        avoid.append({} if parallel else {"skip_edge": (s, nxt)})
        for kw in avoid:
            bp = shortest_path(self._adj, s, dest, scanned=scanned, **kw)
            if bp is None:
                continue
            first = parallel[0] if bp[1] == nxt else topo.edges[s, bp[1]]["links"][0]
            return self._route(bp, [first] + [topo.edges[a, b]["links"][0]
                                              for a, b in pairwise(bp[1:])])
        return None

    def _protect(self, g: _Graph, pk: PairKey, path: list[str], j: int, link: Link,
                 in_port: int, primary: tuple[Action, ...], dst: Attachment, flows: dict,
                 groups: dict, cookie: int) -> Action:
        """The fast-failover group at path[j] for one pair (and its backup path's flows):
        bucket 1 does ``primary`` (the next link's VLAN id if it differs, the output),
        bucket 2 sets the backup path's first VLAN id and outputs to its first link."""
        topo, s = self._topology(), path[j]
        i, sname, dname = pk
        dpid = self._dpids[s]
        port = link.port_of(s)
        buckets = [Bucket(actions=primary, watch_port=port)]
        backup = self._backup_path(topo, path, j, link, g.scanned)
        key = (*pk, s)
        bvids: list[int] = []
        if backup is not None:
            bp, blinks, bins = backup
            try:
                held = g.backup_vids[key] = self._vids_for(g.backup_vids.pop(key, {}), bins)
                bvids = list(held.values())     # in path order
            except ForwardingGraphError:
                backup = None  # out of VLAN ids: run unprotected rather than fail an event
                g.short = True
        else:
            self._release(g.backup_vids.pop(key, {}))
        if backup is None:
            one = len(g.pairs(i)) == 1
            g.unprotected.append(f"segment {i} at {s}" if one
                                 else f"segment {i} ({sname} -> {dname}) at {s}")
        else:
            g.links.update(blinks)
            q = blinks[0].port_of(s)
            # OpenFlow drops an output to the in_port unless it says OFPP_IN_PORT.
            out = ("in_port",) if q == in_port else ("output", q)
            buckets.append(Bucket(actions=(("set_vlan", bvids[0]), out), watch_port=q))
            for f in self._backup_flows(bp, blinks, bins, bvids, dst, cookie):
                flows[f.key()] = f
        gid = self._group_id(g, ("ff", *pk, s))
        groups[(dpid, gid)] = GroupSpec(dpid=dpid, group_id=gid, type="ff", buckets=tuple(buckets))
        return ("group", gid)

    def _backup_flows(self, bp: list[str], blinks: list[Link], bins: list[InLink],
                      bvids: list[int], dst: Attachment, cookie: int) -> list[FlowSpec]:
        """The flows of a backup path ``bp`` (its links ``blinks``, entered by ``bins``,
        with VLAN ids ``bvids``): each matches the id of the link it enters by on that
        port, sets the next link's id where it differs, and the last one delivers."""
        out = [FlowSpec(self._dpids[bp[-1]], TRANSIT_PRIORITY,
                        {"in_port": bins[-1][1], "vlan_vid": bvids[-1]},
                        (("pop_vlan",), ("output", dst.port)), cookie | ROLE_BACKUP_DELIVER)]
        for k in reversed(range(1, len(bp) - 1)):
            rewrite: tuple[Action, ...] = () if bvids[k - 1] == bvids[k] \
                else (("set_vlan", bvids[k]),)
            out.append(FlowSpec(self._dpids[bp[k]], TRANSIT_PRIORITY,
                                {"in_port": bins[k - 1][1], "vlan_vid": bvids[k - 1]},
                                (*rewrite, ("output", blinks[k].port_of(bp[k]))),
                                cookie | ROLE_BACKUP))
        return out

    # --------------------------------------------------- controller restarts, reconnects
    def switch_ports(self, dpid: int, ports: Mapping[int, bool]) -> Changes:
        """A switch's whole port description (its OFPPortDescStatsReply): port number ->
        up. Its link ports that ``ports`` does not list are down (the switch no longer has
        them). Recomputes like ``port_status`` when a link changed state; a dpid not in
        the wiring is ignored."""
        if dpid not in self._names:
            return Changes()
        sw = self._names[dpid]
        states = {(sw, int(p)): bool(up) for p, up in ports.items()}
        for s, p in self._link_at:
            if s == sw:
                states.setdefault((s, p), False)
        return self.set_port_states(states)

    @_changes_state
    def set_port_states(self, states: Mapping[tuple[str, int], bool]) -> Changes:
        """Set many ports' state at once ((switch name, port) -> up) and recompute once,
        like ``port_status``; switches not in the wiring are ignored."""
        before = self._up_links()
        for (sw, port), up in states.items():
            if sw in self._dpids:
                (self._down_ports.discard if up else self._down_ports.add)((sw, int(port)))
        after = self._up_links()
        if after == before:
            return Changes()
        return self._recompute(before - after, after - before)

    def down_ports(self) -> list[tuple[str, int]]:
        """Every (switch name, port) believed down, sorted."""
        return sorted(self._down_ports)

    def graph_ids(self, name: str) -> dict:
        """The numbers the fabric chose for a graph, as JSON-able lists: ``gid`` (the
        cookie's graph id), ``pair_vids`` [segment, source, destination, links], ``slots``
        [hop, instance, slot], ``backup_vids`` [segment, source, destination, switch,
        links] and ``group_ids`` [*group key, group id]; ``links`` is the path's VLAN ids
        per link in path order, each [switch, in_port, vid] (the link entering ``switch``
        by ``in_port``). ``restore_graph`` takes them back."""
        g = self._graph(name)

        def per_link(held: Mapping[InLink, int]) -> list[list]:
            return [[sw, port, v] for (sw, port), v in held.items()]

        return {"gid": g.gid,
                "pair_vids": [[*k, per_link(v)] for k, v in sorted(g.pair_vids.items())],
                "slots": [[*k, v] for k, v in sorted(g.slots.items())],
                "backup_vids": [[*k, per_link(v)] for k, v in sorted(g.backup_vids.items())],
                "group_ids": [[*k, v] for k, v in sorted(g.group_ids.items())]}

    def _saved_vids(self, rows: Iterable, width: int) -> dict[tuple, dict[InLink, int]]:
        """``graph_ids``' pair_vids (``width`` 3) or backup_vids (4) rows back as
        {key: {in-link: vid}}; raises KeyError/TypeError/ValueError/IndexError when
        malformed."""
        out: dict[tuple, dict[InLink, int]] = {}
        for row in rows:
            if len(row) != width + 1:
                raise ValueError(f"{row!r} does not have {width + 1} fields")
            key = (int(row[0]), *map(str, row[1:width]))
            out[key] = {(str(sw), int(port)): int(v) for sw, port, v in row[width]}
        return out

    @_changes_state
    def restore_graph(self, fg: ForwardingGraphSpec, ids: Mapping) -> Changes:
        """``add_graph`` keeping the numbers of ``graph_ids`` (a controller restarting):
        the graph gets the VLAN ids (per link), group ids and cookies it had, so its flows
        and groups equal those the switches still hold and reconnecting rewrites none of
        them (a path that changed meanwhile keeps the ids of the links it still uses).

        Raises ForwardingGraphError, changing nothing, when the graph exists already or a
        number is malformed, out of range, names no link end, or is taken or repeated in
        its link's pool (then ``add_graph`` picks new ones)."""
        if fg.name in self._graphs:
            raise ForwardingGraphError(f"forwarding graph {fg.name!r} exists already")
        where = f"forwarding graph {fg.name!r}: saved ids"
        try:
            gid = int(ids["gid"])
            pair_vids = self._saved_vids(ids["pair_vids"], 3)
            slots = {(int(k), str(x)): int(v) for k, x, v in ids["slots"]}
            backup_vids = self._saved_vids(ids.get("backup_vids", []), 4)
            group_ids = {(str(k[0]), int(k[1]), *map(str, k[2:-1])): int(k[-1])
                         for k in ids.get("group_ids", [])}
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ForwardingGraphError(f"{where} are malformed ({exc!r})") from None
        if gid < 1 or any(g.gid == gid for g in self._graphs.values()):
            raise ForwardingGraphError(f"{where}: graph id {gid} is taken or invalid")
        per_link: dict[InLink, list[int]] = defaultdict(list)
        for held in (*pair_vids.values(), *backup_vids.values()):
            for key, v in held.items():
                per_link[key].append(v)
        lo, hi = self._vlan_range
        for key, vs in sorted(per_link.items()):
            if key not in self._link_at:
                raise ForwardingGraphError(f"{where}: VLAN ids {sorted(vs)} name "
                                           f"{key[0]}:{key[1]}, which is no link's end")
            used = self._link_pool(key).used
            bad = sorted(v for v in vs if not lo <= v <= hi or v in used)
            if bad or len(set(vs)) != len(vs):
                raise ForwardingGraphError(
                    f"{where}: VLAN ids {bad or sorted(vs)}{self._link_pool(key).where} are "
                    f"taken, repeated or outside {lo}..{hi}")
        per_switch: dict[int, list[int]] = defaultdict(list)
        for key, v in group_ids.items():
            if key[-1] not in self._dpids:
                raise ForwardingGraphError(f"{where}: group {v} is on unknown switch {key[-1]!r}")
            per_switch[self._dpids[key[-1]]].append(v)
        for dpid, gids in per_switch.items():
            pool = self._group_pools[dpid]
            if (len(set(gids)) != len(gids)
                    or any(not pool.lo <= v <= pool.hi or v in pool.used for v in gids)):
                raise ForwardingGraphError(f"{where}: group ids {sorted(gids)} on switch "
                                           f"{self._names[dpid]} are taken or repeated")
        if any(not 0 <= v <= _MAX_SLOT for v in slots.values()):
            raise ForwardingGraphError(f"{where}: a slot is outside 0..{_MAX_SLOT}")
        # Reserve the numbers in a placeholder: add_graph then treats the graph as one it
        # replaces and keeps them (pairs, links, slots, backups and groups it no longer
        # needs are freed by _compute as usual).
        for key, vs in per_link.items():
            self._link_pool(key).used.update(vs)
        for dpid, gids in per_switch.items():
            self._group_pools[dpid].used.update(gids)
        self._insert(fg.name, _Graph(spec=fg, gid=gid, pair_vids=pair_vids, slots=slots,
                                     backup_vids=backup_vids, group_ids=group_ids))
        self._reindex(fg.name)
        try:
            changes = self.add_graph(fg)
        except ForwardingGraphError:
            g = self._graphs[fg.name]
            self._delete(fg.name)
            self._reindex(fg.name)
            for held in (*g.pair_vids.values(), *g.backup_vids.values()):
                self._release(held)
            for key, v in g.group_ids.items():
                self._group_pools[self._dpids[key[-1]]].free(v)
            raise
        self._next_gid = max(self._next_gid, gid + 1)
        return changes

    # ----------------------------------------------------------------------- diffing
    def _insert(self, name: str, g: _Graph) -> None:
        """A new graph, last in the graph order."""
        self._graphs[name] = g
        self._sorted_names = None
        self._pos[name] = self._next_pos
        self._next_pos += 1
        self._touched.add(name)

    def _delete(self, name: str) -> None:
        del self._graphs[name]
        self._sorted_names = None
        del self._pos[name]
        self._touched.add(name)

    def _sync(self) -> Changes:
        """Diff the desired state against what was installed (and record it installed).

        The result is the full diff's (``_sync_all``: every graph's flows and groups
        against everything installed, in graph order): the graphs whose flows or groups
        were not recomputed since the last diff (the same dict objects) hold what is
        installed for them, so only the recomputed and removed graphs are compared. Where
        a flow or group key is held by two graphs (the last one's wins in the full diff),
        or was at the last diff, the full diff is made."""
        done = self._synced
        graphs = self._graphs
        touched, self._touched = self._touched, set()
        dirty = sorted((n for n in touched if (g := graphs.get(n)) is not None and (
            (d := done.get(n)) is None or d[0] is not g.flows or d[1] is not g.groups)),
            key=self._pos.__getitem__)
        gone = [n for n in touched if n in done and n not in graphs]
        if self._shared:
            return self._sync_all()
        if not dirty and not gone:
            return Changes()
        changed = set(dirty).union(gone)
        # what the changed graphs held, in the order it was installed (graph order then)
        old_f: dict[tuple, FlowSpec] = {}
        old_g: dict[tuple[int, int], GroupSpec] = {}
        for n in sorted((n for n in changed if n in done), key=self._synced_pos.__getitem__):
            flows, groups = done[n]
            old_f.update(flows)
            old_g.update(groups)
        new_f: dict[tuple, FlowSpec] = {}
        new_g: dict[tuple[int, int], GroupSpec] = {}
        inst_f, inst_g = self._installed_flows, self._installed_groups
        for n in dirty:
            g = graphs[n]
            for k in g.flows:
                if k in new_f or (k in inst_f and k not in old_f):
                    return self._sync_all()     # a key of two graphs
            for k in g.groups:
                if k in new_g or (k in inst_g and k not in old_g):
                    return self._sync_all()
            new_f.update(g.flows)
            new_g.update(g.groups)
        ch = Changes()
        for n in dirty:
            g = graphs[n]
            for k, gr in g.groups.items():
                old = inst_g.get(k)
                if old is None:
                    ch.group_adds.append(gr)
                elif old != gr:
                    ch.group_mods.append(gr)
            ch.flow_adds += [f for k, f in g.flows.items() if inst_f.get(k) != f]
        ch.flow_dels = [f for k, f in old_f.items() if k not in new_f]
        ch.group_dels = [gr for k, gr in old_g.items() if k not in new_g]
        for k in old_f:
            if k not in new_f:
                del inst_f[k]
        for k in old_g:
            if k not in new_g:
                del inst_g[k]
        inst_f.update(new_f)
        inst_g.update(new_g)
        # what is installed per graph now (a new graph comes last, as in the graph order)
        for n in gone:
            del done[n]
            del self._synced_pos[n]
        for n in dirty:
            done[n] = (graphs[n].flows, graphs[n].groups)
            self._synced_pos[n] = self._pos[n]
        return ch

    def _sync_all(self) -> Changes:
        """``_sync`` by a full diff: the union of every graph's flows and groups (in graph
        order; a key two graphs hold takes the later one's) against the union installed at
        the last diff."""
        was_f: dict[tuple, FlowSpec] = {}
        was_g: dict[tuple[int, int], GroupSpec] = {}
        for flows, groups in self._synced.values():
            was_f.update(flows)
            was_g.update(groups)
        want_f: dict[tuple, FlowSpec] = {}
        want_g: dict[tuple[int, int], GroupSpec] = {}
        for g in self._graphs.values():
            want_f.update((k, f) for k, f in g.flows.items())
            want_g.update((k, gr) for k, gr in g.groups.items())
        ch = diff_state(was_f, was_g, want_f, want_g)
        self._installed_flows, self._installed_groups = want_f, want_g
        self._synced = {n: (g.flows, g.groups) for n, g in self._graphs.items()}
        self._synced_pos = dict(self._pos)
        self._touched = set()
        self._shared = (len(want_f) != sum(len(g.flows) for g in self._graphs.values())
                        or len(want_g) != sum(len(g.groups) for g in self._graphs.values()))
        return ch
