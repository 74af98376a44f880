"""The one module that builds OpenFlow 1.3 messages, from the plain specs of ``specs.py``.

Everything above this module (``logic.py``, ``reconcile.py``) deals in ``FlowSpec``/``GroupSpec``
values and is tested without a switch; everything below is os-ken's ``ofproto_parser``. It
also reads a switch's flow and group replies back into specs (``flow_spec``, ``group_spec``)
so reconciliation compares like with like.

``Encoder`` turns a whole ``Changes`` into the bytes each switch is sent: the same messages,
serialised by os-ken, in the same order per switch, but one write per switch and stage of
``Changes.ordered()`` rather than one ``send_msg`` per message, and kept ready for Changes
prepared ahead (``Fabric.prepare_repair``), so a link failure's reaction sends bytes built
before the failure.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from testbed.controller import wire
from testbed.controller.specs import Bucket, Changes, FlowSpec, GroupSpec

GROUP_TYPES = {"all": "OFPGT_ALL", "select": "OFPGT_SELECT", "indirect": "OFPGT_INDIRECT",
               "ff": "OFPGT_FF"}


def _match(dp, match) -> object:
    """OFPMatch kwargs from a spec match. ``vlan_vid`` gets the present bit; a ``(value,
    mask)`` pair (IPv4 prefixes, the masked ``udp_src``/``tcp_src`` of split classifier
    flows) is handed over as a tuple, which os-ken serialises as a masked OXM field."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    kwargs = {}
    for key, value in match:
        if isinstance(value, (tuple, list)):
            value = tuple(value)  # a masked vlan_vid (read back, never built) stays raw
        elif key == "vlan_vid":
            value = (int(value) | ofp.OFPVID_PRESENT) if value else ofp.OFPVID_NONE
        kwargs[key] = value
    return parser.OFPMatch(**kwargs)


def _actions(dp, actions) -> list:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    out = []
    for act in actions:
        kind = act[0]
        if kind == "output":
            out.append(parser.OFPActionOutput(int(act[1]), 0xFFFF))
        elif kind == "in_port":
            out.append(parser.OFPActionOutput(ofp.OFPP_IN_PORT, 0xFFFF))
        elif kind == "push_vlan":
            out.append(parser.OFPActionPushVlan(0x8100))
        elif kind == "set_vlan":
            out.append(parser.OFPActionSetField(vlan_vid=int(act[1]) | ofp.OFPVID_PRESENT))
        elif kind == "pop_vlan":
            out.append(parser.OFPActionPopVlan())
        elif kind == "group":
            out.append(parser.OFPActionGroup(int(act[1])))
        else:
            raise ValueError(f"unknown action {act!r}")
    return out


def flow_add(dp, spec: FlowSpec):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, _actions(dp, spec.actions))]
    return parser.OFPFlowMod(datapath=dp, cookie=spec.cookie, table_id=spec.table_id,
                             command=ofp.OFPFC_ADD, priority=spec.priority,
                             match=_match(dp, spec.match), instructions=inst)


def flow_del(dp, spec: FlowSpec):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return parser.OFPFlowMod(datapath=dp, table_id=spec.table_id, command=ofp.OFPFC_DELETE_STRICT,
                             priority=spec.priority, match=_match(dp, spec.match),
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def _buckets(dp, buckets: tuple[Bucket, ...]):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return [parser.OFPBucket(weight=b.weight,
                             watch_port=ofp.OFPP_ANY if b.watch_port is None else b.watch_port,
                             watch_group=ofp.OFPG_ANY, actions=_actions(dp, b.actions))
            for b in buckets]


def group_mod(dp, spec: GroupSpec, command: str):
    ofp, parser = dp.ofproto, dp.ofproto_parser
    cmd = {"add": ofp.OFPGC_ADD, "mod": ofp.OFPGC_MODIFY, "del": ofp.OFPGC_DELETE}[command]
    gtype = getattr(ofp, GROUP_TYPES[spec.type])
    buckets = [] if command == "del" else _buckets(dp, spec.buckets)
    return parser.OFPGroupMod(dp, cmd, gtype, spec.group_id, buckets)


# ---- reading back: what a switch holds, as specs (for ``reconcile.diff``) -----------------
def _spec_actions(dp, actions) -> tuple:
    """Specs' action tuples from parsed actions (the inverse of ``_actions``); an action
    the fabric never builds becomes ``("unknown", ...)``, equal to no wanted action."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    out = []
    for act in actions:
        if isinstance(act, parser.OFPActionOutput):
            out.append(("in_port",) if act.port == ofp.OFPP_IN_PORT else ("output", act.port))
        elif isinstance(act, parser.OFPActionPushVlan) and act.ethertype == 0x8100:
            out.append(("push_vlan",))
        elif isinstance(act, parser.OFPActionSetField) and act.key == "vlan_vid":
            out.append(("set_vlan", int(act.value) & ~ofp.OFPVID_PRESENT))
        elif isinstance(act, parser.OFPActionPopVlan):
            out.append(("pop_vlan",))
        elif isinstance(act, parser.OFPActionGroup):
            out.append(("group", act.group_id))
        else:
            out.append(("unknown", repr(act)))
    return tuple(out)


def flow_spec(dp, stats) -> FlowSpec:
    """The ``FlowSpec`` of one OFPFlowStats entry a switch returned: its match (vlan_vid as
    a plain vid, masked fields as (value, mask)), apply-actions and cookie; any other
    instruction becomes an ``("unknown", ...)`` action."""
    ofp = dp.ofproto
    match = []
    for key, value in stats.match.items():
        if isinstance(value, (tuple, list)):
            value = tuple(value)
        elif key == "vlan_vid":
            value = int(value) & ~ofp.OFPVID_PRESENT
        match.append((key, value))
    actions: tuple = ()
    for inst in stats.instructions:
        if getattr(inst, "type", None) == ofp.OFPIT_APPLY_ACTIONS:
            actions += _spec_actions(dp, inst.actions)
        else:
            actions += (("unknown", repr(inst)),)
    return FlowSpec(dpid=dp.id, priority=stats.priority, match=tuple(match), actions=actions,
                    cookie=stats.cookie, table_id=stats.table_id)


def group_spec(dp, desc) -> GroupSpec:
    """The ``GroupSpec`` of one OFPGroupDescStats entry a switch returned; a group type the
    fabric never builds is read as "indirect" with an ``("unknown", ...)`` bucket."""
    ofp = dp.ofproto
    types = {getattr(ofp, const): name for name, const in GROUP_TYPES.items()}
    buckets = tuple(Bucket(actions=_spec_actions(dp, b.actions),
                           watch_port=None if b.watch_port == ofp.OFPP_ANY else b.watch_port,
                           weight=b.weight)
                    for b in desc.buckets)
    if desc.type not in types:
        return GroupSpec(dpid=dp.id, group_id=desc.group_id, type="indirect",
                         buckets=(Bucket(actions=(("unknown", desc.type),)),))
    return GroupSpec(dpid=dp.id, group_id=desc.group_id, type=types[desc.type],
                     buckets=buckets)


def message_for(dp, op: str, spec):
    """One OpenFlow message for a ``Changes.ordered()`` entry."""
    if op == "flow_add":
        return flow_add(dp, spec)
    if op == "flow_del":
        return flow_del(dp, spec)
    if op in ("group_add", "group_mod", "group_del"):
        return group_mod(dp, spec, op.split("_")[1])
    raise ValueError(f"unknown operation {op!r}")


# ---- whole Changes as bytes, one write per switch and stage ---------------------------------
_XID = struct.Struct("!I")
_XID_OFFSET = 4          # ofp_header: version (1), type (1), length (2), xid (4)
_CACHE_MAX = 50_000      # encoded messages kept (about 100-200 bytes each)


@dataclass(frozen=True)
class Batch:
    """The messages of one stage for one switch: ``data`` is their concatenated encoding
    with xid 0, ``starts`` each message's offset in it, ``ops`` each one's operation
    (``Changes.ordered()``'s names)."""

    dpid: int
    data: bytes
    starts: tuple[int, ...]
    ops: tuple[str, ...]

    def stamped(self, dp) -> bytes:
        """``data`` with each message's xid taken from the datapath's counter, exactly as
        os-ken's ``Datapath.send_msg`` (``set_xid``) would number them one by one."""
        buf = bytearray(self.data)
        xid, top = dp.xid, dp.ofproto.MAX_XID
        for start in self.starts:
            xid = (xid + 1) & top
            _XID.pack_into(buf, start + _XID_OFFSET, xid)
        dp.xid = xid
        return bytes(buf)


class Encoder:
    """Encodes Changes for sending: ``encode(changes)`` is a list of stages (those of
    ``Changes.stages()``), each ``(name, batches)`` with one ``Batch`` per switch, in order
    of first appearance. Each switch receives the very bytes, in the very order, that
    ``send_msg`` of ``message_for`` would have sent it; carrying out each stage on every
    switch before sending the next (``rollout.Rollouts``) keeps make-before-break across
    switches. ``ofproto``/``parser`` are os-ken's protocol
    modules (OpenFlow 1.3). Messages are encoded once per distinct (operation, spec)."""

    def __init__(self, ofproto, parser):
        self.ofproto, self.ofproto_parser = ofproto, parser   # what message_for needs
        self._bytes: dict[tuple[str, object], bytes] = {}
        self._prepared: dict[int, tuple[Changes, list[tuple[str, list[Batch]]]]] = {}

    def message(self, op: str, spec) -> bytes:
        """One message with xid 0: ``wire.encode``'s bytes, or os-ken's serialisation
        for what that module does not encode (the same bytes either way)."""
        key = (op, spec)
        data = self._bytes.get(key)
        if data is not None:
            return data
        data = wire.encode(op, spec)
        if data is None:
            msg = message_for(self, op, spec)
            msg.set_xid(0)
            msg.serialize()
            data = bytes(msg.buf)
        if len(self._bytes) >= _CACHE_MAX:
            self._bytes.clear()
        self._bytes[key] = data
        return data

    def encode(self, changes: Changes) -> list[tuple[str, list[Batch]]]:
        """The stages of ``changes``; those of prepared Changes (the same object) from
        ``prepare`` without any work."""
        hit = self._prepared.get(id(changes))
        if hit is not None and hit[0] is changes:
            return hit[1]
        stages: list[tuple[str, list[Batch]]] = []
        for name, entries in changes.stages():
            per_dp: dict[int, tuple[list[bytes], list[int], list[str]]] = {}
            for op, spec in entries:
                parts, starts, ops = per_dp.setdefault(spec.dpid, ([], [], []))
                starts.append(sum(map(len, parts[-1:])) + (starts[-1] if starts else 0))
                parts.append(self.message(op, spec))
                ops.append(op)
            stages.append((name, [Batch(dpid, b"".join(parts), tuple(starts), tuple(ops))
                                  for dpid, (parts, starts, ops) in per_dp.items()]))
        return stages

    def is_prepared(self, changes: Changes) -> bool:
        """Whether ``encode(changes)`` will find them prepared."""
        hit = self._prepared.get(id(changes))
        return hit is not None and hit[0] is changes

    def prepare(self, changes: Changes) -> None:
        """Encode ``changes`` now and keep the result for ``encode`` of the same object."""
        self._prepared[id(changes)] = (changes, self.encode(changes))

    def forget(self, keep: set[int] = frozenset()) -> None:
        """Drop prepared encodings but those of the Changes whose ``id`` is in ``keep``."""
        self._prepared = {k: v for k, v in self._prepared.items() if k in keep}
