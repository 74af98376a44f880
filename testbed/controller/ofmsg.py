"""The one module that builds OpenFlow 1.3 messages, from the plain specs of ``specs.py``.

Everything above this module (``logic.py``) deals in ``FlowSpec``/``GroupSpec`` values and
is tested without a switch; everything below is os-ken's ``ofproto_parser``.
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
        if key == "vlan_vid":
            value = (int(value) | ofp.OFPVID_PRESENT) if value else ofp.OFPVID_NONE
        elif isinstance(value, (tuple, list)):
            value = tuple(value)
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


def delete_all(dp) -> list:
    """Messages that empty the switch: every flow of every table, every group."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return [parser.OFPFlowMod(datapath=dp, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                              out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                              match=parser.OFPMatch()),
            parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, 0, ofp.OFPG_ALL)]


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


def message_for(dp, op: str, spec):
    """One OpenFlow message for a ``Changes.ordered()`` entry."""
    if op == "flow_add":
        return flow_add(dp, spec)
    if op == "flow_del":
        return flow_del(dp, spec)
    if op in ("group_add", "group_mod", "group_del"):
        return group_mod(dp, spec, op.split("_")[1])
    raise ValueError(f"unknown operation {op!r}")
