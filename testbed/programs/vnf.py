"""Per-packet processing of the VNF programs: forwarder, firewall, NAT, load balancer.

Pure functions on Ethernet frames (bytes in, bytes or None out), with no socket, so they
are unit-tested on hand-built frames; ``forwarder.py`` runs one of them in its raw-socket
loop (``--program NAME --params JSON``). A processor returns the frame to send back
(unchanged, or rewritten with both checksums fixed) or None to drop it, and keeps counters
that the stats file reports.

Programs and their parameters (unknown keys are refused, with the path to the field):

- ``forwarder``: no parameters; sends every frame back unchanged.
- ``firewall``: ``default`` ("allow" or "deny", default "allow") and ``rules``, a list of
  ``{"action": "allow"|"deny", "proto": "tcp"|"udp"|"icmp"|"any", "src": CIDR,
  "dst": CIDR, "dport": 0..65535}`` where only ``action`` is required. The first rule that
  matches decides, else ``default``. A rule with ``dport`` matches only TCP/UDP packets
  that carry their ports (not later fragments). Counters: ``rule_hits`` (per rule),
  ``default_hits``.
- ``nat``: ``public_ip`` (required). Source NAT: the IPv4 source becomes ``public_ip``;
  the IPv4 header checksum and the TCP/UDP checksum are updated incrementally (RFC 1624;
  a UDP checksum of 0, meaning none, stays 0). Ports are not translated and replies are
  not translated back: in a chain the NAT sits on the forward path. Counters:
  ``rewritten``, ``mappings`` (distinct original (source, protocol, source port); at most
  MAX_MAPPINGS are remembered, further ones count in ``mappings_overflow``).
- ``lb``: ``backends`` (a non-empty list of IPv4 addresses, required) and ``vip`` (optional:
  when set only packets to it are balanced, others pass unchanged). The destination becomes
  the backend picked by a stable hash (CRC32) of the 5-tuple, so a flow always reaches the
  same backend; checksums are updated as for the NAT. Counters: ``backends`` (packets per
  backend address).

Every processor also counts ``malformed`` frames (IPv4 header cut short): the firewall
drops them, the others send them back unchanged.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import zlib
from collections.abc import Mapping
from typing import Any

PROGRAMS = ("forwarder", "firewall", "nat", "lb")
PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "any": None}
MAX_MAPPINGS = 65536
_ETH = 14


class ParamsError(ValueError):
    """Bad ``--params`` for a program; the message names the field and what is valid."""


# --------------------------------------------------------------------------- parsing
class Headers:
    """The IPv4 fields of a frame the programs look at (offsets into the frame)."""

    __slots__ = ("dport", "dst", "ihl", "l4", "proto", "sport", "src")

    def __init__(self, ihl: int, proto: int, src: int, dst: int, sport: int | None,
                 dport: int | None, l4: int | None):
        self.ihl, self.proto, self.src, self.dst = ihl, proto, src, dst
        self.sport, self.dport, self.l4 = sport, dport, l4

    def five_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.src, self.dst, self.proto, self.sport or 0, self.dport or 0)


def parse(frame: bytes) -> Headers | None:
    """The IPv4 headers of an Ethernet frame, or None if the IPv4 header is cut short.

    ``l4`` is the offset of the TCP/UDP header when the frame carries one whole enough to
    hold its checksum (first fragment), else None; ``sport``/``dport`` likewise."""
    if len(frame) < _ETH + 20:
        return None
    ihl = (frame[_ETH] & 0x0F) * 4
    if ihl < 20 or len(frame) < _ETH + ihl:
        return None
    proto = frame[_ETH + 9]
    src, dst = struct.unpack_from("!II", frame, _ETH + 12)
    frag_offset = struct.unpack_from("!H", frame, _ETH + 6)[0] & 0x1FFF
    off = _ETH + ihl
    sport = dport = l4 = None
    need = {6: 18, 17: 8}.get(proto)  # up to and including the checksum field
    if need is not None and frag_offset == 0 and len(frame) >= off + need:
        sport, dport = struct.unpack_from("!HH", frame, off)
        l4 = off
    return Headers(ihl, proto, src, dst, sport, dport, l4)


# ------------------------------------------------------------------------- checksums
def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header_checksum(frame: bytes) -> int:
    """The checksum the frame's IPv4 header should carry (its checksum field taken as 0)."""
    ihl = (frame[_ETH] & 0x0F) * 4
    hdr = bytearray(frame[_ETH:_ETH + ihl])
    hdr[10:12] = b"\0\0"
    return checksum(bytes(hdr))


def l4_checksum(frame: bytes) -> int:
    """The TCP/UDP checksum the (unfragmented) frame should carry, from scratch: the
    pseudo-header (src, dst, zero, protocol, L4 length) and the segment with its checksum
    field taken as 0."""
    ihl = (frame[_ETH] & 0x0F) * 4
    total_len = struct.unpack_from("!H", frame, _ETH + 2)[0]
    proto = frame[_ETH + 9]
    seg = bytearray(frame[_ETH + ihl:_ETH + total_len])
    field = 6 if proto == 17 else 16
    seg[field:field + 2] = b"\0\0"
    pseudo = frame[_ETH + 12:_ETH + 20] + struct.pack("!BBH", 0, proto, len(seg))
    value = checksum(pseudo + bytes(seg))
    return 0xFFFF if proto == 17 and value == 0 else value


def _csum_update(csum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: the checksum after a 32-bit word changed from ``old`` to ``new``."""
    total = ~csum & 0xFFFF
    for o, n in ((old >> 16, new >> 16), (old & 0xFFFF, new & 0xFFFF)):
        total += (~o & 0xFFFF) + n
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rewrite_address(frame: bytes, h: Headers, which: str, new: int) -> bytes:
    """The frame with its IPv4 ``src`` or ``dst`` replaced by ``new`` (an int), the IPv4
    header checksum and the TCP/UDP checksum (when the frame carries it) updated."""
    out = bytearray(frame)
    at = _ETH + (12 if which == "src" else 16)
    old = struct.unpack_from("!I", out, at)[0]
    if old == new:
        return frame
    struct.pack_into("!I", out, at, new)
    ip_csum = struct.unpack_from("!H", out, _ETH + 10)[0]
    struct.pack_into("!H", out, _ETH + 10, _csum_update(ip_csum, old, new))
    if h.l4 is not None:
        pos = h.l4 + (6 if h.proto == 17 else 16)
        l4 = struct.unpack_from("!H", out, pos)[0]
        if h.proto == 17 and l4 == 0:
            pass  # UDP without a checksum stays without one
        else:
            value = _csum_update(l4, old, new)
            if h.proto == 17 and value == 0:
                value = 0xFFFF  # UDP sends a computed 0 as all ones
            struct.pack_into("!H", out, pos, value)
    return bytes(out)


# ------------------------------------------------------------------- params helpers
def _ip_int(path: str, value: Any) -> int:
    if not isinstance(value, str):
        raise ParamsError(f"{path}: {value!r} is not an IPv4 address")
    try:
        return int(ipaddress.IPv4Address(value))
    except ValueError:
        raise ParamsError(f"{path}: {value!r} is not an IPv4 address") from None


def _net(path: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, str):
        raise ParamsError(f"{path}: {value!r} is not an IPv4 address or CIDR prefix")
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as e:
        raise ParamsError(f"{path}: {value!r} is not a valid IPv4 CIDR prefix ({e})") from None
    return int(net.network_address), int(net.netmask)


def _keys(path: str, params: Any, known: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    if not isinstance(params, Mapping):
        raise ParamsError(f"{path}: must be an object, got {params!r}")
    for key in params:
        if key not in known:
            raise ParamsError(f"{path}: unknown key {key!r}; known: {', '.join(known) or 'none'}")
    for key in required:
        if key not in params:
            raise ParamsError(f"{path}: missing key {key!r}")


def _ipstr(v: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", v))


# ------------------------------------------------------------------------ processors
class Processor:
    """The forwarder: every frame goes back unchanged."""

    program = "forwarder"

    def __init__(self, params: Mapping[str, Any] | None = None):
        _keys("params", params or {}, ())
        self.malformed = 0

    def process(self, frame: bytes) -> bytes | None:
        return frame

    def counters(self) -> dict:
        return {"malformed": self.malformed}


class Firewall(Processor):
    """First matching rule wins; else the default."""

    program = "firewall"
    _RULE_KEYS = ("action", "proto", "src", "dst", "dport")

    def __init__(self, params: Mapping[str, Any] | None = None):
        params = params or {}
        _keys("params", params, ("default", "rules"))
        self.malformed = 0
        default = params.get("default", "allow")
        if default not in ("allow", "deny"):
            raise ParamsError(f"params.default: {default!r} must be 'allow' or 'deny'")
        self.default_allow = default == "allow"
        rules = params.get("rules", [])
        if not isinstance(rules, list):
            raise ParamsError(f"params.rules: must be a list, got {rules!r}")
        # (allow, proto or None, (net, mask) or None, (net, mask) or None, dport or None)
        self.rules: list[tuple[bool, int | None, tuple[int, int] | None,
                               tuple[int, int] | None, int | None]] = []
        for k, r in enumerate(rules):
            path = f"params.rules[{k}]"
            _keys(path, r, self._RULE_KEYS, ("action",))
            if r["action"] not in ("allow", "deny"):
                raise ParamsError(f"{path}.action: {r['action']!r} must be 'allow' or 'deny'")
            proto = r.get("proto", "any")
            if proto not in PROTOS:
                raise ParamsError(f"{path}.proto: {proto!r}; valid: {', '.join(PROTOS)}")
            src = _net(f"{path}.src", r["src"]) if "src" in r else None
            dst = _net(f"{path}.dst", r["dst"]) if "dst" in r else None
            dport = r.get("dport")
            if dport is not None:
                if isinstance(dport, bool) or not isinstance(dport, int) or not 0 <= dport <= 65535:
                    raise ParamsError(f"{path}.dport: {dport!r} must be an integer 0..65535")
                if proto not in ("tcp", "udp"):
                    raise ParamsError(f"{path}.dport: needs proto tcp or udp, got {proto!r}")
            self.rules.append((r["action"] == "allow", PROTOS[proto], src, dst, dport))
        self.rule_hits = [0] * len(self.rules)
        self.default_hits = 0

    def allows(self, h: Headers) -> bool:
        """The verdict for a packet's headers (and count the rule that decided)."""
        for k, (allow, proto, src, dst, dport) in enumerate(self.rules):
            if proto is not None and h.proto != proto:
                continue
            if src is not None and h.src & src[1] != src[0]:
                continue
            if dst is not None and h.dst & dst[1] != dst[0]:
                continue
            if dport is not None and h.dport != dport:
                continue
            self.rule_hits[k] += 1
            return allow
        self.default_hits += 1
        return self.default_allow

    def process(self, frame: bytes) -> bytes | None:
        h = parse(frame)
        if h is None:
            self.malformed += 1
            return None
        return frame if self.allows(h) else None

    def counters(self) -> dict:
        return {"malformed": self.malformed, "rule_hits": list(self.rule_hits),
                "default_hits": self.default_hits}


class Nat(Processor):
    """Source NAT to ``public_ip``."""

    program = "nat"

    def __init__(self, params: Mapping[str, Any] | None = None):
        params = params or {}
        _keys("params", params, ("public_ip",), ("public_ip",))
        self.malformed = 0
        self.public = _ip_int("params.public_ip", params["public_ip"])
        self.rewritten = 0
        self.mappings: set[tuple[int, int, int]] = set()
        self.mappings_overflow = 0

    def process(self, frame: bytes) -> bytes | None:
        h = parse(frame)
        if h is None:
            self.malformed += 1
            return frame
        key = (h.src, h.proto, h.sport or 0)
        if key not in self.mappings:
            if len(self.mappings) < MAX_MAPPINGS:
                self.mappings.add(key)
            else:
                self.mappings_overflow += 1
        self.rewritten += 1
        return rewrite_address(frame, h, "src", self.public)

    def counters(self) -> dict:
        return {"malformed": self.malformed, "public_ip": _ipstr(self.public),
                "rewritten": self.rewritten, "mappings": len(self.mappings),
                "mappings_overflow": self.mappings_overflow}


def pick_backend(five_tuple: tuple[int, int, int, int, int], n: int) -> int:
    """The index of the backend for a flow: a stable hash (CRC32) of its 5-tuple."""
    return zlib.crc32(struct.pack("!IIBHH", *five_tuple)) % n


class LoadBalancer(Processor):
    """Destination rewrite to one of ``backends`` per flow."""

    program = "lb"

    def __init__(self, params: Mapping[str, Any] | None = None):
        params = params or {}
        _keys("params", params, ("backends", "vip"), ("backends",))
        self.malformed = 0
        backends = params["backends"]
        if not isinstance(backends, list) or not backends:
            raise ParamsError(f"params.backends: must be a non-empty list of IPv4 addresses, "
                              f"got {backends!r}")
        self.backends = [_ip_int(f"params.backends[{k}]", b) for k, b in enumerate(backends)]
        if len(set(self.backends)) != len(self.backends):
            raise ParamsError(f"params.backends: lists an address twice: {backends}")
        self.vip = _ip_int("params.vip", params["vip"]) if "vip" in params else None
        self.hits = [0] * len(self.backends)
        self.passed = 0

    def process(self, frame: bytes) -> bytes | None:
        h = parse(frame)
        if h is None:
            self.malformed += 1
            return frame
        if self.vip is not None and h.dst != self.vip:
            self.passed += 1
            return frame
        k = pick_backend(h.five_tuple(), len(self.backends))
        self.hits[k] += 1
        return rewrite_address(frame, h, "dst", self.backends[k])

    def counters(self) -> dict:
        return {"malformed": self.malformed, "passed": self.passed,
                "backends": {_ipstr(b): n for b, n in zip(self.backends, self.hits)}}


_CLASSES: dict[str, type[Processor]] = {
    "forwarder": Processor, "firewall": Firewall, "nat": Nat, "lb": LoadBalancer}


def make_processor(program: str, params: Mapping[str, Any] | None = None) -> Processor:
    """The processor of ``program`` configured by ``params``; ParamsError if either is bad."""
    if program not in _CLASSES:
        raise ParamsError(f"unknown program {program!r}; known: {', '.join(PROGRAMS)}")
    return _CLASSES[program](params or {})
