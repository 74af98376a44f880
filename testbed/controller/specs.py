"""Data types of the controller: what comes in (graphs, topology) and what goes out (specs).

Everything here is plain, hashable data with no os-ken import; ``ofmsg`` is the one module
that turns :class:`FlowSpec` and :class:`GroupSpec` into OpenFlow 1.3 messages.

Actions are tuples, exactly one of::

    ("output", port)     output to a port number
    ("in_port",)         output to OFPP_IN_PORT (back out of the port the packet came in on)
    ("push_vlan",)       push an 802.1Q tag (ethertype 0x8100)
    ("set_vlan", vid)    set vlan_vid to a plain vid 1..4094 (ofmsg adds OFPVID_PRESENT)
    ("pop_vlan",)        remove the outermost tag
    ("group", group_id)  hand the packet to a group

Match keys are os-ken ``OFPMatch`` keyword names; ``vlan_vid`` values are plain vids (ofmsg
adds the present bit), 0 meaning "no 802.1Q tag" (OFPVID_NONE) and IPv4 values are ``"10.0.0.1"`` or ``("10.0.0.0", "255.255.255.0")``.
An L4 port is an int, or in the fabric's split classifier flows a ``(value, mask)`` pair
(a masked OXM field, e.g. ``("udp_src", (1, 3))``: source ports whose low two bits are 01).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from mano.classifiers import DEFAULT_PRECEDENCE
from testbed.controller.documents import ETH_TYPE_IPV4, check_graph

__all__ = ["ETH_TYPE_IPV4", "Action", "Attachment", "Bucket", "Changes", "FlowSpec",
           "ForwardingGraphSpec", "GroupSpec", "Hop", "Link", "Match", "sorted_match"]

Action = tuple
Match = tuple[tuple[str, Any], ...]

GROUP_TYPES = ("ff", "select", "all", "indirect")
_first = itemgetter(0)


def sorted_match(match: Mapping[str, Any] | Match) -> Match:
    """A match as the canonical sorted tuple of (key, value) pairs."""
    items = match.items() if isinstance(match, Mapping) else match
    pairs = [(k, v) if k.__class__ is str else (str(k), v) for k, v in items]
    pairs.sort(key=_first)
    return tuple(pairs)


@dataclass(frozen=True)
class FlowSpec:
    """One flow entry; ``key()`` is its identity in a switch (OFPFC_ADD overwrites it)."""

    dpid: int
    priority: int
    match: Match
    actions: tuple[Action, ...]
    cookie: int = 0
    table_id: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", sorted_match(self.match))
        object.__setattr__(self, "actions", tuple(tuple(a) for a in self.actions))

    def key(self) -> tuple:
        return (self.dpid, self.table_id, self.priority, self.match)


@dataclass(frozen=True)
class Bucket:
    """A group bucket; in a fast-failover group it is live while ``watch_port`` is up."""

    actions: tuple[Action, ...]
    watch_port: int | None = None
    weight: int = 0


@dataclass(frozen=True)
class GroupSpec:
    """One group entry; identified in a switch by ``(dpid, group_id)``."""

    dpid: int
    group_id: int
    type: str
    buckets: tuple[Bucket, ...]

    def __post_init__(self) -> None:
        if self.type not in GROUP_TYPES:
            raise ValueError(f"group type {self.type!r} is not one of {GROUP_TYPES}")

    def key(self) -> tuple[int, int]:
        return (self.dpid, self.group_id)


def is_classifier(flow: FlowSpec) -> bool:
    """An ingress flow: it takes untagged frames (``vlan_vid`` absent or 0, no tag);
    transit and deliver flows match a tag (a vid 1..4094)."""
    return not dict(flow.match).get("vlan_vid", 0)


def _chains(group: GroupSpec) -> bool:
    """Whether a bucket of the group hands packets to another group (one level is all the
    fabric builds: select -> fast-failover)."""
    return any(a[0] == "group" for b in group.buckets for a in b.actions)


@dataclass
class Changes:
    """What the switches must be told; apply ``ordered()`` in that order."""

    group_adds: list[GroupSpec] = field(default_factory=list)
    group_mods: list[GroupSpec] = field(default_factory=list)
    flow_adds: list[FlowSpec] = field(default_factory=list)
    flow_dels: list[FlowSpec] = field(default_factory=list)
    group_dels: list[GroupSpec] = field(default_factory=list)
    # Ordering hints, not compared: keys of flow adds that overwrite an installed flow
    # (they move packets at once), and of those that go with the make stage anyway
    # (see stages())
    moves: frozenset[tuple] = field(default_factory=frozenset, compare=False)
    at_once: frozenset[tuple] = field(default_factory=frozenset, compare=False)

    def __bool__(self) -> bool:
        return bool(
            self.group_adds or self.group_mods or self.flow_adds or self.flow_dels
            or self.group_dels
        )

    def __len__(self) -> int:
        return (len(self.group_adds) + len(self.group_mods) + len(self.flow_adds)
                + len(self.flow_dels) + len(self.group_dels))

    def extend(self, other: Changes) -> None:
        self.group_adds.extend(other.group_adds)
        self.group_mods.extend(other.group_mods)
        self.flow_adds.extend(other.flow_adds)
        self.flow_dels.extend(other.flow_dels)
        self.group_dels.extend(other.group_dels)
        self.moves = self.moves | other.moves
        self.at_once = self.at_once | other.at_once

    def ordered(self) -> list[tuple[str, FlowSpec | GroupSpec]]:
        """The changes in a safe order.

        Make before break. New groups first (a flow may only name an existing group),
        groups that other groups' buckets name (fast-failover groups behind a select group)
        before those; then the VLAN-matched transit and deliver flows, so a new path is
        built end to end; only then the changed groups (a fast-failover or select group
        switching to a new path must not send packets down one whose transit flows are not
        there yet) and the in_port classifiers (the fabric lists those last segment first),
        so the ingress switches over last; then deletions, classifiers first so no packet
        enters a path being torn down; groups last, once no flow names them.
        """
        out: list[tuple[str, FlowSpec | GroupSpec]] = []
        out += [("group_add", g) for g in sorted(self.group_adds, key=_chains)]
        out += [("flow_add", f) for f in self.flow_adds if not is_classifier(f)]
        out += [("group_mod", g) for g in sorted(self.group_mods, key=_chains)]
        out += [("flow_add", f) for f in self.flow_adds if is_classifier(f)]
        out += [("flow_del", f) for f in sorted(self.flow_dels, key=lambda f: not is_classifier(f))]
        out += [("group_del", g) for g in sorted(self.group_dels, key=lambda g: not _chains(g))]
        return out

    def stages(self) -> list[tuple[str, list[tuple[str, FlowSpec | GroupSpec]]]]:
        """``ordered()`` cut into its non-empty stages, in order: ``"make"`` (new groups,
        new transit and deliver flows: the new paths, which no packet enters yet),
        ``"switch"`` (changed groups, classifiers, and the transit and deliver flows that
        overwrite an installed one (``moves``): packets move onto the new paths) and
        ``"break"`` (deletions). Within a stage only each switch's own order matters (a
        group before the flows and groups naming it, a fast-failover group changed before
        a classifier of the same switch); across switches a stage must have been carried
        out (a barrier answered) before the next is sent: a classifier switching to a new
        path whose transit flows another switch does not hold yet drops packets, and so
        does a deletion of a path packets are still on.

        Exception: the flow adds whose key is in ``at_once`` go with the make stage, after
        it on each switch. They are those of paths already broken (a link went down under
        them, no fast-failover group carries their packets): their packets are lost at the
        cut until they switch, so they lose nothing by switching before the other switches
        hold the new path, and their restoration does not wait for a barrier round trip.
        Each stage keeps ``ordered()`` order."""
        out: dict[str, list[tuple[str, FlowSpec | GroupSpec]]] = {
            "make": [], "switch": [], "break": []}
        late: list[tuple[str, FlowSpec | GroupSpec]] = []
        for op, spec in self.ordered():
            if op in ("flow_del", "group_del"):
                out["break"].append((op, spec))
            elif op == "group_mod":
                out["switch"].append((op, spec))
            elif op == "group_add":
                out["make"].append((op, spec))
            elif spec.key() in self.at_once:
                late.append((op, spec))
            elif is_classifier(spec) or spec.key() in self.moves:  # type: ignore[arg-type]
                out["switch"].append((op, spec))
            else:
                out["make"].append((op, spec))
        out["make"] += late
        return [(name, run) for name, run in out.items() if run]


@dataclass(frozen=True)
class Attachment:
    """An endpoint (host or VNF port) plugged into ``switch`` at ``port``."""

    name: str
    switch: str
    port: int
    mac: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class Link:
    """A switch-to-switch link: port ``a_port`` of ``a`` to port ``b_port`` of ``b``."""

    a: str
    a_port: int
    b: str
    b_port: int

    def port_of(self, switch: str) -> int:
        return self.a_port if switch == self.a else self.b_port

    def other(self, switch: str) -> str:
        return self.b if switch == self.a else self.a


Hop = str | tuple[str, ...]


def _as_mapping(match: Any) -> Any:
    """A match given as ``(key, value)`` pairs (the canonical form) as a mapping; anything
    else unchanged, for the document model to judge."""
    if isinstance(match, (list, tuple)):
        try:
            return dict(match)
        except (TypeError, ValueError):
            return match
    return dict(match) if isinstance(match, Mapping) else match


@dataclass(frozen=True)
class ForwardingGraphSpec:
    """A VNF forwarding graph: traffic matching ``match`` from ``hops[0]`` visits the VNF
    hops ``hops[1:-1]`` in order and is delivered to ``hops[-1]``.

    ``match`` is a subset of the IPv4 5-tuple (eth_type 0x0800 is implied). A hop is an
    attachment name, or (VNF hops only, not the ingress or egress) a list of 1..16
    attachment names: the instances of one scaled-out VNF, among which flows are balanced
    (order is irrelevant; it is kept sorted). An attachment may not be a source twice
    (``hops[:-1]`` are disjoint), since packets coming back from it could not be told apart.

    ``rewrites`` names VNF instances (attachment names of ``hops[1:-1]``) that rewrite the
    headers the classifier looks at (NAT, load balancer): packets coming back from them are
    classified by their port and IPv4 alone. List every instance of such a VNF (a scaled-out
    NAT lists all of its instances). Such a port must not be shared with another graph.

    ``protection`` pre-installs fast-failover backup paths. ``priority`` (1..899, an NSD
    VNFFG's precedence) is the flow priority of its classifier flows: two graphs whose
    classifiers overlap at one port need different priorities, and the higher one takes
    the packets both match (``mano.classifiers``). Constructing one validates it
    (ForwardingGraphError).
    """

    name: str
    match: Match
    hops: tuple[Hop, ...]
    protection: bool = False
    priority: int = DEFAULT_PRECEDENCE
    rewrites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        doc = check_graph({"name": self.name, "match": _as_mapping(self.match),
                           "hops": self.hops, "protection": self.protection,
                           "priority": self.priority, "rewrites": self.rewrites})
        object.__setattr__(self, "match", doc.match.pairs())
        object.__setattr__(self, "hops", doc.hops)
        object.__setattr__(self, "rewrites", tuple(sorted(doc.rewrites)))

    def instances(self, k: int) -> tuple[str, ...]:
        """The attachment names of hop ``k`` (one, unless it is a scaled-out VNF)."""
        h = self.hops[k]
        return (h,) if isinstance(h, str) else h

    def attachment_names(self) -> set[str]:
        """Every attachment the graph uses."""
        return {x for k in range(len(self.hops)) for x in self.instances(k)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ForwardingGraphSpec:
        """Parse the northbound JSON form (:class:`~testbed.controller.documents.GraphDocument`);
        raises ForwardingGraphError naming the graph, the field path, the value and what is
        valid."""
        doc = check_graph(d)
        return cls(name=doc.name, match=doc.match.pairs(), hops=doc.hops,
                   protection=doc.protection, priority=doc.priority, rewrites=doc.rewrites)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: multi-instance hops as sorted lists; "rewrites" only when set."""
        match: dict[str, Any] = {}
        for key, value in self.match:
            if isinstance(value, tuple):
                value = str(ipaddress.IPv4Network(f"{value[0]}/{value[1]}"))
            match[key] = value
        out: dict[str, Any] = {
            "name": self.name, "match": match,
            "hops": [h if isinstance(h, str) else list(h) for h in self.hops],
            "protection": self.protection, "priority": self.priority}
        if self.rewrites:
            out["rewrites"] = list(self.rewrites)
        return out
