"""Classifier semantics of the forwarding-graph interface: which packets a classifier takes,
and whether two classifiers can take the same packet.

A classifier is a mapping of match fields (the NFVI's ``put_graph`` ``match``, an NSD
VNFFG's ``classifier``, or a controller flow match). Every field is read as a
``(value, mask)`` pair of unsigned integers of the field's width:

- ``ipv4_src``/``ipv4_dst``: ``"10.0.0.1"``, ``"10.0.0.0/24"``, ``("10.0.0.0",
  "255.255.255.0")`` or an int; a prefix is its network address and netmask;
- ``ip_proto``, ``eth_type``, ``in_port``, ``tcp_*``/``udp_*``: an int (exact, mask all
  ones) or a ``(value, mask)`` pair (the controller's split flows);
- implied fields are added before comparing: an L4 port implies its ``ip_proto``
  (UDP 17, TCP 6), any IP field implies ``eth_type`` 0x0800 (OpenFlow's prerequisites).

A field a classifier leaves out is a wildcard. Two classifiers *overlap* when some packet
matches both: for every field both constrain, the bits both masks cover agree
(``(v1 ^ v2) & m1 & m2 == 0``); :func:`intersection` returns the match of exactly those
packets (``m = m1 | m2``), or None. This is the one place the testbed decides overlap: the
NFVO refuses an NS whose graphs overlap another's (``mano.nfvo``) and the controller's
fabric, the final authority for graphs from any client, refuses them on install
(``testbed.controller.logic``), for the emulated and the simulated NFVI alike.

Precedence. Overlapping classifiers at one ingress are accepted only when their graphs'
precedences differ; the higher precedence then takes every packet both match (it is the
flow priority of the classifier flows). ``PRECEDENCE_MIN..PRECEDENCE_MAX`` is the range,
``DEFAULT_PRECEDENCE`` the value of a graph that gives none.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

PRECEDENCE_MIN, PRECEDENCE_MAX = 1, 899
DEFAULT_PRECEDENCE = 100

# field -> bit width
FIELD_BITS = {"eth_type": 16, "ip_proto": 8, "ipv4_src": 32, "ipv4_dst": 32, "in_port": 32,
              "tcp_src": 16, "tcp_dst": 16, "udp_src": 16, "udp_dst": 16}
_IMPLIES = {"tcp_src": ("ip_proto", 6), "tcp_dst": ("ip_proto", 6),
            "udp_src": ("ip_proto", 17), "udp_dst": ("ip_proto", 17),
            "ip_proto": ("eth_type", 0x0800), "ipv4_src": ("eth_type", 0x0800),
            "ipv4_dst": ("eth_type", 0x0800)}

Masked = dict[str, tuple[int, int]]


def _ipv4(key: str, value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, 0xFFFFFFFF
    if isinstance(value, (list, tuple)) and len(value) == 2:
        text = f"{value[0]}/{value[1]}"
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"classifier {key}={value!r} is not an IPv4 address or prefix")
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError as e:
        raise ValueError(f"classifier {key}={value!r} is not an IPv4 address or prefix "
                         f"({e})") from None
    return int(net.network_address), int(net.netmask)


def _int(key: str, value: Any) -> tuple[int, int]:
    full = (1 << FIELD_BITS[key]) - 1
    if isinstance(value, (list, tuple)) and len(value) == 2:
        v, m = value
    else:
        v, m = value, full
    for x in (v, m):
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= full:
            raise ValueError(f"classifier {key}={value!r}: expected an integer 0..{full} "
                             "or a (value, mask) pair of them")
    return v & m, m


def masked(match: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Masked:
    """A classifier as ``{field: (value, mask)}`` with its implied fields added. Raises
    ``ValueError`` naming an unknown field (known: :data:`FIELD_BITS`) or a bad value."""
    items = match.items() if isinstance(match, Mapping) else match
    out: Masked = {}
    for key, value in items:
        if key not in FIELD_BITS:
            raise ValueError(f"classifier field {key!r} is not one of "
                             f"{', '.join(FIELD_BITS)}")
        out[key] = _ipv4(key, value) if key.startswith("ipv4_") else _int(key, value)
    for key in list(out):
        need = _IMPLIES.get(key)
        while need is not None:
            field, v = need
            if field in out and not _agree(out[field], (v, (1 << FIELD_BITS[field]) - 1)):
                raise ValueError(f"classifier {key} needs {field} {v}, got {out[field][0]}")
            out.setdefault(field, (v, (1 << FIELD_BITS[field]) - 1))
            need = _IMPLIES.get(field)
    return out


def _agree(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return (a[0] ^ b[0]) & a[1] & b[1] == 0


def intersection(a: Mapping[str, Any] | Iterable[tuple[str, Any]],
                 b: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Masked | None:
    """The packets both classifiers match, as ``{field: (value, mask)}``; None when no
    packet matches both (they are disjoint). Symmetric; ``ValueError`` as :func:`masked`."""
    ma, mb = masked(a), masked(b)
    out = dict(ma)
    for key, (v, m) in mb.items():
        if key in out:
            if not _agree(out[key], (v, m)):
                return None
            ov, om = out[key]
            out[key] = ((ov & om) | (v & m), om | m)
        else:
            out[key] = (v, m)
    return out


def overlap(a, b) -> bool:
    """Whether some packet matches both classifiers (see :func:`intersection`)."""
    return intersection(a, b) is not None


def describe(match: Masked) -> str:
    """A masked match in words: ``ipv4_src 10.0.0.1, ipv4_dst 10.0.0.16, udp_dst 5000``
    (prefixes as CIDR where the mask is one, implied ``eth_type`` left out)."""
    parts = []
    for key in sorted(match, key=list(FIELD_BITS).index):
        v, m = match[key]
        if key == "eth_type" and (v, m) == (0x0800, 0xFFFF):
            continue
        full = (1 << FIELD_BITS[key]) - 1
        if key.startswith("ipv4_"):
            try:
                text = str(ipaddress.IPv4Network((v, str(ipaddress.IPv4Address(m)))))
                text = text.removesuffix("/32")
            except ValueError:
                text = f"{ipaddress.IPv4Address(v)}/{ipaddress.IPv4Address(m)}"
        elif m == full:
            text = str(v)
        else:
            text = f"{v}/{m:#x}"
        parts.append(f"{key} {text}")
    return ", ".join(parts) or "any IPv4 packet"


def conflict(a, a_precedence: int, b, b_precedence: int) -> Masked | None:
    """The packets two classifiers at one ingress would fight over: their intersection
    when they overlap at the same precedence (which one takes them would be undefined),
    else None (disjoint, or the higher precedence decides)."""
    if a_precedence != b_precedence:
        return None
    return intersection(a, b)
