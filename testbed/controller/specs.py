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
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mano.classifiers import DEFAULT_PRECEDENCE, PRECEDENCE_MAX, PRECEDENCE_MIN
from testbed.errors import ForwardingGraphError

Action = tuple
Match = tuple[tuple[str, Any], ...]

ETH_TYPE_IPV4 = 0x0800
GROUP_TYPES = ("ff", "select", "all", "indirect")
# Classifier keys a forwarding graph may use: a subset of the IPv4 5-tuple.
CLASSIFIER_KEYS = ("ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst")
_L4_PROTO = {"tcp_src": 6, "tcp_dst": 6, "udp_src": 17, "udp_dst": 17}
_GRAPH_KEYS = ("name", "match", "hops", "protection", "priority", "rewrites")
# A multi-instance hop (scale-out) lists at most this many instances: a split on the L4
# source port takes at most 4 bits (16 masked flows), a select group at most 16 buckets.
MAX_INSTANCES = 16
# Cookies carry the segment in 16 bits (see logic.py).
MAX_HOPS = 256
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Classifier priorities (a graph's precedence) stay below the transit/deliver flows (1000).
MIN_PRIORITY, MAX_PRIORITY = PRECEDENCE_MIN, PRECEDENCE_MAX


def sorted_match(match: Mapping[str, Any] | Match) -> Match:
    """A match as the canonical sorted tuple of (key, value) pairs."""
    items = match.items() if isinstance(match, Mapping) else match
    return tuple(sorted(((str(k), v) for k, v in items), key=lambda kv: kv[0]))


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


def _is_classifier(flow: FlowSpec) -> bool:
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
        out += [("flow_add", f) for f in self.flow_adds if not _is_classifier(f)]
        out += [("group_mod", g) for g in sorted(self.group_mods, key=_chains)]
        out += [("flow_add", f) for f in self.flow_adds if _is_classifier(f)]
        out += [("flow_del", f) for f in sorted(self.flow_dels, key=lambda f: not _is_classifier(f))]
        out += [("group_del", g) for g in sorted(self.group_dels, key=lambda g: not _chains(g))]
        return out


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


def _fail(name: object, message: str) -> ForwardingGraphError:
    return ForwardingGraphError(f"forwarding graph {name!r}: {message}")


def _ipv4_value(gname: object, key: str, value: Any) -> str | tuple[str, str]:
    """Normalise an IPv4 match value: an address, a CIDR prefix or an (address, mask) pair."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        text = f"{value[0]}/{value[1]}"
    elif isinstance(value, str):
        text = value
    else:
        raise _fail(gname, f"match {key}={value!r} is not an IPv4 address or prefix")
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as e:
        raise _fail(gname, f"match {key}={value!r} is not a valid IPv4 address or prefix ({e})")
    if net.prefixlen == 32:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def _int_in(gname: object, what: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(gname, f"{what}={value!r} must be an integer {lo}..{hi}")
    if not lo <= value <= hi:
        raise _fail(gname, f"{what}={value} is out of range {lo}..{hi}")
    return value


def normalize_classifier(gname: object, match: Mapping[str, Any] | Match) -> Match:
    """Validate a classifier (subset of the IPv4 5-tuple) and return it canonical."""
    items = dict(match.items() if isinstance(match, Mapping) else match)
    out: dict[str, Any] = {}
    for key, value in items.items():
        if key == "eth_type":
            # Implied; tolerated when it says what is implied anyway.
            if value != ETH_TYPE_IPV4:
                raise _fail(gname, f"match eth_type={value!r}: only IPv4 (0x0800) is supported")
            continue
        if key not in CLASSIFIER_KEYS:
            raise _fail(gname, f"unknown match key {key!r}; known keys: {', '.join(CLASSIFIER_KEYS)}")
        if key == "ip_proto":
            out[key] = _int_in(gname, "match ip_proto", value, 0, 255)
        elif key.startswith("ipv4_"):
            out[key] = _ipv4_value(gname, key, value)
        else:
            out[key] = _int_in(gname, f"match {key}", value, 0, 65535)
    for key, proto in _L4_PROTO.items():
        if key in out and out.get("ip_proto") != proto:
            raise _fail(gname, f"match {key} needs ip_proto {proto} "
                               f"(got {out.get('ip_proto', 'none')})")
    return sorted_match(out)


Hop = str | tuple[str, ...]


def _normalize_hops(name: object, hops: Any) -> tuple[Hop, ...]:
    if isinstance(hops, str) or not isinstance(hops, (list, tuple)):
        raise _fail(name, f"hops must be a list of attachment names, got {hops!r}")
    hops = tuple(hops)
    if len(hops) < 2:
        raise _fail(name, f"needs at least 2 hops (ingress and egress), got {list(hops)}")
    if len(hops) > MAX_HOPS:
        raise _fail(name, f"has {len(hops)} hops; at most {MAX_HOPS}")
    out: list[Hop] = []
    for k, h in enumerate(hops):
        if isinstance(h, (list, tuple)):
            if k in (0, len(hops) - 1):
                end = "ingress" if k == 0 else "egress"
                raise _fail(name, f"the {end} hop must be one attachment name, got {list(h)}; "
                                  "only VNF hops may have several instances")
            if not h:
                raise _fail(name, f"hop {k} lists no instances")
            if len(h) > MAX_INSTANCES:
                raise _fail(name, f"hop {k} lists {len(h)} instances; at most {MAX_INSTANCES}")
            for x in h:
                if not isinstance(x, str) or not x:
                    raise _fail(name, f"hop {k}: instance {x!r} is not an attachment name")
            dups = sorted({x for x in h if list(h).count(x) > 1})
            if dups:
                raise _fail(name, f"hop {k} lists instance {dups[0]!r} twice")
            out.append(tuple(sorted(h)))
        elif isinstance(h, str) and h:
            out.append(h)
        else:
            raise _fail(name, f"hop {h!r} is not an attachment name")
    inst = [(h,) if isinstance(h, str) else h for h in out]
    for i in range(len(inst) - 1):
        both = sorted(set(inst[i]) & set(inst[i + 1]))
        if both:
            raise _fail(name, f"hop {both[0]!r} appears twice in a row (positions {i}, {i + 1})")
    seen: dict[str, int] = {}
    for i, names in enumerate(inst[:-1]):
        for h in names:
            if h in seen:
                raise _fail(name, f"hop {h!r} is a source twice (positions {seen[h]} and {i}); "
                                  "packets returning from it could not be told apart")
            seen[h] = i
    return tuple(out)


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
        name = self.name
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise _fail(name, "name must match [A-Za-z0-9_.-]{1,64}")
        object.__setattr__(self, "match", normalize_classifier(name, self.match))
        hops = _normalize_hops(name, self.hops)
        object.__setattr__(self, "hops", hops)
        if not isinstance(self.protection, bool):
            raise _fail(name, f"protection must be true or false, got {self.protection!r}")
        _int_in(name, "priority", self.priority, MIN_PRIORITY, MAX_PRIORITY)
        rw = self.rewrites
        if isinstance(rw, str) or not isinstance(rw, (list, tuple)):
            raise _fail(name, f"rewrites must be a list of VNF attachment names, got {rw!r}")
        middle = {x for k in range(1, len(hops) - 1) for x in self.instances(k)}
        for r in rw:
            if not isinstance(r, str) or r not in middle:
                raise _fail(name, f"rewrites: {r!r} is not an instance of a VNF hop; "
                                  f"VNF hops: {', '.join(sorted(middle)) or 'none'}")
        if len(set(rw)) != len(rw):
            raise _fail(name, f"rewrites lists an attachment twice: {list(rw)}")
        object.__setattr__(self, "rewrites", tuple(sorted(rw)))

    def instances(self, k: int) -> tuple[str, ...]:
        """The attachment names of hop ``k`` (one, unless it is a scaled-out VNF)."""
        h = self.hops[k]
        return (h,) if isinstance(h, str) else h

    def attachment_names(self) -> set[str]:
        """Every attachment the graph uses."""
        return {x for k in range(len(self.hops)) for x in self.instances(k)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ForwardingGraphSpec:
        """Parse the northbound JSON form; raises ForwardingGraphError naming the problem."""
        if not isinstance(d, Mapping):
            raise ForwardingGraphError(f"forwarding graph must be an object, got {d!r}")
        gname = d.get("name")
        for key in d:
            if key not in _GRAPH_KEYS:
                raise _fail(gname, f"unknown key {key!r}; known keys: {', '.join(_GRAPH_KEYS)}")
        for key in ("name", "hops"):
            if key not in d:
                raise _fail(gname, f"missing key {key!r}")
        match = d.get("match", {})
        if not isinstance(match, Mapping):
            raise _fail(gname, f"match must be an object, got {match!r}")
        return cls(
            name=d["name"],
            match=match,  # type: ignore[arg-type]  # normalised in __post_init__
            hops=d["hops"],
            protection=d.get("protection", False),
            priority=d.get("priority", DEFAULT_PRECEDENCE),
            rewrites=d.get("rewrites", ()),
        )

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
