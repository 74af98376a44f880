"""OpenFlow 1.3 wire encoding of the flow and group mods the fabric builds most, without
os-ken's per-message objects.

``encode(op, spec)`` returns the bytes (xid 0) that os-ken's parser would serialise for
``ofmsg.message_for(dp, op, spec)``, for specs made only of what the fabric's transit,
deliver, backup and port-only classifier flows and its groups use: match fields
``in_port``, ``eth_type``, ``vlan_vid``, ``ip_proto`` and the TCP/UDP ports (plain or
``(value, mask)``), and the actions output, in_port, push_vlan, set_vlan, pop_vlan and
group. Anything else (IPv4 addresses, an unknown action) returns None and is left to
os-ken. The equality with os-ken's bytes is pinned by tests/unit/test_controller_encoder.py.

Layouts: OpenFlow Switch Specification 1.3.5, sections 7.1 (ofp_header), 7.2.2 (OXM),
7.2.4 and 7.2.5 (instructions, actions), 7.3.4.1 (ofp_flow_mod), 7.3.4.2 (ofp_group_mod,
ofp_bucket). As os-ken does: OXM fields in field-number order, a masked value ANDed with
its mask, set-field actions padded to 8 bytes, flow adds with cookie mask 0, no timeouts,
no buffer, out_port and out_group 0, strict deletes with cookie 0, OFPP_ANY/OFPG_ANY.
"""
from __future__ import annotations

import struct

VERSION = 0x04
OFPT_FLOW_MOD, OFPT_GROUP_MOD = 14, 15
OFPFC_ADD, OFPFC_DELETE_STRICT = 0, 4
OFPGC = {"group_add": 0, "group_mod": 1, "group_del": 2}
OFPGT = {"all": 0, "select": 1, "indirect": 2, "ff": 3}
OFPP_IN_PORT, OFPP_ANY, OFPG_ANY = 0xFFFFFFF8, 0xFFFFFFFF, 0xFFFFFFFF
OFP_NO_BUFFER = 0xFFFFFFFF
OFPVID_PRESENT = 0x1000
OFPIT_APPLY_ACTIONS = 4
OFPAT_OUTPUT, OFPAT_PUSH_VLAN, OFPAT_POP_VLAN, OFPAT_GROUP, OFPAT_SET_FIELD = 0, 17, 18, 22, 25
OFPXMC_OPENFLOW_BASIC = 0x8000
# OXM field -> (number, struct format of its value)
FIELDS = {"in_port": (0, "I"), "eth_type": (5, "H"), "vlan_vid": (6, "H"),
          "ip_proto": (10, "B"), "tcp_src": (13, "H"), "tcp_dst": (14, "H"),
          "udp_src": (15, "H"), "udp_dst": (16, "H")}

_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")
_GROUP_MOD = struct.Struct("!HBxI")
_BUCKET = struct.Struct("!HHII4x")
_MATCH_HEADER = struct.Struct("!HH")
_INSTRUCTION = struct.Struct("!HH4x")
_OUTPUT = struct.Struct("!HHIH6x")
_PUSH = struct.Struct("!HHH2x")
_POP = struct.Struct("!HH4x")
_GROUP = struct.Struct("!HHI")
_SET_VLAN = struct.Struct("!HHIH6x")       # set-field: type, len, OXM header, vid, pad
_OXM = {name: (n, struct.Struct(f"!I{fmt}"), struct.Struct(f"!I{fmt}{fmt}"),
               struct.calcsize(fmt)) for name, (n, fmt) in FIELDS.items()}


def _oxm_header(n: int, masked: bool, size: int) -> int:
    return OFPXMC_OPENFLOW_BASIC << 16 | n << 9 | masked << 8 | size


def _match(match) -> bytes | None:
    out = []
    for key, value in sorted(match, key=lambda kv: FIELDS.get(kv[0], (99,))[0]):
        spec = _OXM.get(key)
        if spec is None:
            return None
        n, plain, masked, size = spec
        if isinstance(value, (tuple, list)):
            if key == "vlan_vid" or len(value) != 2:
                return None
            v, m = int(value[0]), int(value[1])
            out.append(masked.pack(_oxm_header(n, True, 2 * size), v & m, m))
        else:
            v = int(value)
            if key == "vlan_vid":
                v = v | OFPVID_PRESENT if v else 0
            out.append(plain.pack(_oxm_header(n, False, size), v))
    body = b"".join(out)
    length = 4 + len(body)
    return _MATCH_HEADER.pack(1, length) + body + bytes(-length % 8)   # OFPMT_OXM


def _actions(actions) -> bytes | None:
    out = []
    for act in actions:
        kind = act[0]
        if kind == "output":
            out.append(_OUTPUT.pack(OFPAT_OUTPUT, 16, int(act[1]), 0xFFFF))
        elif kind == "in_port":
            out.append(_OUTPUT.pack(OFPAT_OUTPUT, 16, OFPP_IN_PORT, 0xFFFF))
        elif kind == "push_vlan":
            out.append(_PUSH.pack(OFPAT_PUSH_VLAN, 8, 0x8100))
        elif kind == "pop_vlan":
            out.append(_POP.pack(OFPAT_POP_VLAN, 8))
        elif kind == "group":
            out.append(_GROUP.pack(OFPAT_GROUP, 8, int(act[1])))
        elif kind == "set_vlan":
            out.append(_SET_VLAN.pack(OFPAT_SET_FIELD, 16, _oxm_header(6, False, 2),
                                      int(act[1]) | OFPVID_PRESENT))
        else:
            return None
    return b"".join(out)


def _message(msg_type: int, body: bytes) -> bytes:
    return _HEADER.pack(VERSION, msg_type, 8 + len(body), 0) + body


def encode(op: str, spec) -> bytes | None:
    """The wire bytes (xid 0) of one ``Changes.ordered()`` entry, or None when the spec
    is outside what this module encodes (the caller then uses os-ken)."""
    if op in ("flow_add", "flow_del"):
        match = _match(spec.match)
        if match is None:
            return None
        if op == "flow_del":
            head = _FLOW_MOD.pack(0, 0, spec.table_id, OFPFC_DELETE_STRICT, 0, 0,
                                  spec.priority, OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY, 0)
            return _message(OFPT_FLOW_MOD, head + match)
        actions = _actions(spec.actions)
        if actions is None:
            return None
        head = _FLOW_MOD.pack(spec.cookie, 0, spec.table_id, OFPFC_ADD, 0, 0, spec.priority,
                              OFP_NO_BUFFER, 0, 0, 0)
        inst = _INSTRUCTION.pack(OFPIT_APPLY_ACTIONS, 8 + len(actions)) + actions
        return _message(OFPT_FLOW_MOD, head + match + inst)
    if op in OFPGC:
        parts = [_GROUP_MOD.pack(OFPGC[op], OFPGT[spec.type], spec.group_id)]
        if op != "group_del":
            for b in spec.buckets:
                actions = _actions(b.actions)
                if actions is None:
                    return None
                watch = OFPP_ANY if b.watch_port is None else b.watch_port
                parts.append(_BUCKET.pack(16 + len(actions), b.weight, watch, OFPG_ANY))
                parts.append(actions)
        return _message(OFPT_GROUP_MOD, b"".join(parts))
    return None
