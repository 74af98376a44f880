"""The one module that builds OpenFlow 1.3 messages, from the plain specs of ``specs.py``.

Everything above this module (``logic.py``, ``reconcile.py``) deals in ``FlowSpec``/``GroupSpec``
values and is tested without a switch; everything below is os-ken's ``ofproto_parser``. It
also reads a switch's flow and group replies back into specs (``flow_spec``, ``group_spec``)
so reconciliation compares like with like.
"""
from __future__ import annotations

from testbed.controller.specs import Bucket, FlowSpec, GroupSpec

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
