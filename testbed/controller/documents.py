"""The controller's input boundary: the JSON documents its northbound (and the simulated
NFVI) receive, as typed models (pydantic v2) on the descriptor model's strict base.

``PUT /v1/graphs/NAME`` carries a forwarding graph::

    {"name": "web.fg1", "match": {"ip_proto": 17, "udp_dst": 5000},
     "hops": ["h1", ["fw_1", "fw_2"], "h2"], "protection": false, "priority": 100,
     "rewrites": []}

and ``PUT /v1/attachments/NAME`` an attachment ``{"name", "switch", "port", "mac", "ip"}``.
The same base (known keys only, required keys present) and the same error formatting as
the descriptors and the topology file (:mod:`mano.fields`): every problem is
reported as ``<source>: <field path>: <what is wrong, the value, what is valid>``, e.g.
``forwarding graph 'fg': match.udp_dst: expected an integer 0..65535, got 70000``.

These models only check and normalise a document; the controller's data types
(:class:`~testbed.controller.specs.ForwardingGraphSpec`, ``Attachment``) are built from
them. What needs the fabric (hops that exist, overlapping classifiers) is checked by
:class:`~testbed.controller.logic.Fabric`.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import PlainValidator, model_validator

from mano.classifiers import DEFAULT_PRECEDENCE, PRECEDENCE_MAX, PRECEDENCE_MIN
from mano.fields import Boolean, Strict, fail, kind, number, string, validate
from testbed.errors import ControllerError, ForwardingGraphError

ETH_TYPE_IPV4 = 0x0800
# Classifier keys a forwarding graph may use: a subset of the IPv4 5-tuple.
CLASSIFIER_KEYS = ("ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst")
L4_PROTO = {"tcp_src": 6, "tcp_dst": 6, "udp_src": 17, "udp_dst": 17}
# A multi-instance hop (scale-out) lists at most this many instances: a split on the L4
# source port takes at most 4 bits (16 masked flows), a select group at most 16 buckets.
MAX_INSTANCES = 16
# Cookies carry the segment in 16 bits (see logic.py).
MAX_HOPS = 256
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Classifier priorities (a graph's precedence) stay below the transit/deliver flows (1000).
MIN_PRIORITY, MAX_PRIORITY = PRECEDENCE_MIN, PRECEDENCE_MAX
MAC_RE = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")
# OpenFlow 1.3 physical and logical ports are 1..OFPP_MAX (0xffffff00).
OFPP_MAX = 0xFFFFFF00

Hop = str | tuple[str, ...]


# ----------------------------------------------------------------------- value checks
def _ipv4_match(v: Any) -> str | tuple[str, str]:
    """An IPv4 match value: an address, a CIDR prefix or an (address, mask) pair, returned
    as ``"10.0.0.1"`` (a /32) or ``("10.0.0.0", "255.255.255.0")``."""
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, str) for x in v):
        text = f"{v[0]}/{v[1]}"
    elif isinstance(v, str):
        text = v
    else:
        raise fail(f"expected an IPv4 address or prefix (e.g. 10.0.0.1 or 10.0.0.0/24), "
                   f"got {kind(v)} {v!r}")
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as e:
        raise fail(f"{v!r} is not a valid IPv4 address or prefix ({e}); "
                   f"e.g. 10.0.0.1 or 10.0.0.0/24") from None
    if net.prefixlen == 32:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def _eth_type(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v != ETH_TYPE_IPV4:
        raise fail(f"only IPv4 (0x0800) is supported; got {v!r} (eth_type is implied, "
                   f"it may be left out)")
    return v


def _hops(v: Any) -> tuple[Hop, ...]:
    """The hop list: attachment names, a VNF hop may be a list of 1..16 instances (kept
    sorted); no hop twice in a row, no attachment a source twice."""
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise fail(f"expected a list of attachment names, got {kind(v)} {v!r}")
    hops = tuple(v)
    if len(hops) < 2:
        raise fail(f"needs at least 2 hops (ingress and egress), got {list(hops)}")
    if len(hops) > MAX_HOPS:
        raise fail(f"has {len(hops)} hops; at most {MAX_HOPS}")
    out: list[Hop] = []
    for k, h in enumerate(hops):
        if isinstance(h, (list, tuple)):
            if k in (0, len(hops) - 1):
                end = "ingress" if k == 0 else "egress"
                raise fail(f"the {end} hop must be one attachment name, got {list(h)}; "
                           "only VNF hops may have several instances", k)
            if not h:
                raise fail(f"hop {k} lists no instances; a VNF hop lists 1..{MAX_INSTANCES}",
                           k)
            if len(h) > MAX_INSTANCES:
                raise fail(f"hop {k} lists {len(h)} instances; at most {MAX_INSTANCES}", k)
            for j, x in enumerate(h):
                if not isinstance(x, str) or not x:
                    raise fail(f"instance {x!r} is not an attachment name "
                               f"(a non-empty string)", k, j)
            for j, x in enumerate(h):
                if x in h[:j]:
                    raise fail(f"hop {k} lists instance {x!r} twice", k, j)
            out.append(tuple(sorted(h)))
        elif isinstance(h, str) and h:
            out.append(h)
        else:
            raise fail(f"hop {h!r} is not an attachment name (a non-empty string) or, for a "
                       f"VNF hop, a list of them", k)
    inst = [(h,) if isinstance(h, str) else h for h in out]
    for i in range(len(inst) - 1):
        both = sorted(set(inst[i]) & set(inst[i + 1]))
        if both:
            raise fail(f"hop {both[0]!r} appears twice in a row (positions {i}, {i + 1})",
                       i + 1)
    seen: dict[str, int] = {}
    for i, names in enumerate(inst[:-1]):
        for h in names:
            if h in seen:
                raise fail(f"hop {h!r} is a source twice (positions {seen[h]} and {i}); "
                           "packets returning from it could not be told apart", i)
            seen[h] = i
    return tuple(out)


def _names(v: Any) -> tuple[str, ...]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise fail(f"expected a list of VNF attachment names, got {kind(v)} {v!r}")
    for i, x in enumerate(v):
        if not isinstance(x, str):
            raise fail(f"expected an attachment name, got {kind(x)} {x!r}", i)
    return tuple(v)


L4Port = Annotated[int | None, number(integer=True, ge=0, le=65535)]
IPv4Match = Annotated[str | tuple[str, str] | None, PlainValidator(_ipv4_match)]


# ----------------------------------------------------------------------------- models
class Classifier(Strict):
    """``match``: a subset of the IPv4 5-tuple (eth_type 0x0800 is implied; it may be
    given). An L4 port needs the matching ``ip_proto`` (6 for tcp_*, 17 for udp_*)."""
    ip_proto: Annotated[int | None, number(integer=True, ge=0, le=255)] = None
    ipv4_src: IPv4Match = None
    ipv4_dst: IPv4Match = None
    tcp_src: L4Port = None
    tcp_dst: L4Port = None
    udp_src: L4Port = None
    udp_dst: L4Port = None
    eth_type: Annotated[int | None, PlainValidator(_eth_type)] = None

    @model_validator(mode="after")
    def _protocol(self) -> Classifier:
        for key, proto in L4_PROTO.items():
            if getattr(self, key) is not None and self.ip_proto != proto:
                got = "none" if self.ip_proto is None else self.ip_proto
                raise fail(f"{key}={getattr(self, key)!r} needs ip_proto {proto} (got {got})", key)
        return self

    def pairs(self) -> tuple[tuple[str, Any], ...]:
        """The classifier as sorted ``(key, value)`` pairs, eth_type left out (implied)."""
        return tuple(sorted((k, getattr(self, k)) for k in CLASSIFIER_KEYS
                            if getattr(self, k) is not None))


class GraphDocument(Strict):
    """A forwarding graph as the northbound receives it (see the module docstring and
    :class:`~testbed.controller.specs.ForwardingGraphSpec` for the meaning)."""
    name: Annotated[str, string(NAME_RE, "graph name")]
    hops: Annotated[tuple, PlainValidator(_hops)]
    match: Classifier = Classifier()
    protection: Boolean = False
    priority: Annotated[int, number(integer=True, ge=MIN_PRIORITY, le=MAX_PRIORITY)] = (
        DEFAULT_PRECEDENCE)
    rewrites: Annotated[tuple, PlainValidator(_names)] = ()

    @model_validator(mode="after")
    def _rewriters(self) -> GraphDocument:
        middle = {x for h in self.hops[1:-1] for x in ((h,) if isinstance(h, str) else h)}
        for i, r in enumerate(self.rewrites):
            if r not in middle:
                raise fail(f"{r!r} is not an instance of a VNF hop; VNF hops: "
                           f"{', '.join(sorted(middle)) or 'none'}", "rewrites", i)
            if r in self.rewrites[:i]:
                raise fail(f"rewrites lists an attachment twice: {list(self.rewrites)}",
                           "rewrites", i)
        return self


def _mac(v: Any) -> str | None:
    if v is not None and (not isinstance(v, str) or not MAC_RE.fullmatch(v)):
        raise fail(f"expected a MAC address like 02:00:00:00:00:01 (or null), got {v!r}")
    return v


def _ip(v: Any) -> str | None:
    if v is None:
        return None
    try:
        if not isinstance(v, str):
            raise TypeError
        return str(ipaddress.IPv4Address(v))
    except (TypeError, ValueError):
        raise fail(f"{v!r} is not a valid IPv4 address (e.g. 10.0.0.1), or null") from None


class AttachmentDocument(Strict):
    """An attachment as the northbound receives it: endpoint ``name`` (a host or VNF port)
    plugged into ``switch`` at OpenFlow port ``port``; ``mac`` and ``ip`` optional."""
    name: Annotated[str, string(NAME_RE, "attachment name")]
    switch: Annotated[str, string()]
    port: Annotated[int, number(integer=True, ge=1, le=OFPP_MAX)]
    mac: Annotated[str | None, PlainValidator(_mac)] = None
    ip: Annotated[str | None, PlainValidator(_ip)] = None


# --------------------------------------------------------------------------- entry points
def check_graph(data: Any) -> GraphDocument:
    """``data`` (the JSON form) as a checked, normalised graph document; raises one
    ForwardingGraphError, ``forwarding graph '<name>': <field path>: <message>`` per problem.
    """
    if isinstance(data, Mapping):
        data = dict(data)
        source = f"forwarding graph {data.get('name')!r}"
    else:
        source = "forwarding graph"
    return validate(GraphDocument, data, source, error=ForwardingGraphError)


def check_attachment(data: Any) -> AttachmentDocument:
    """``data`` (the JSON form) as a checked attachment document; raises one ControllerError,
    ``attachment '<name>': <field path>: <message>`` per problem."""
    if isinstance(data, Mapping):
        data = dict(data)
        source = f"attachment {data.get('name')!r}"
    else:
        source = "attachment"
    return validate(AttachmentDocument, data, source, error=ControllerError)
