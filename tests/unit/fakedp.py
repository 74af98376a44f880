"""A fake OpenFlow 1.3 data plane: enough of a switch to answer "where does this packet go?".

It holds per-switch flow tables and group tables built only from the ``Changes`` the
controller returns (so tests prove the diffs, not just the desired state), and traces
packets: highest-priority matching flow, apply-actions in order, groups (fast-failover
picks the first bucket whose watch port is live, select hashes like OVS, all copies),
outputs follow live links to the next switch or reach an attachment. VNF attachments echo
packets back on their port, like the real VNF forwarders; other attachments terminate. A
VNF may have a hook (``hooks[name] = fn(packet) -> packet | None``) that rewrites the packet
it echoes (a NAT, a load balancer) or drops it (returns None), like the real VNF programs.

Select groups pick one live bucket by a CRC32 of the fields OVS 3.1's default select hash
covers here: addresses and protocol, L4 ports for TCP only (not UDP: every UDP flow between
two addresses hashes alike, as on the real switch); deterministic, weights honoured.
``group_stats`` reports per-bucket counters like OpenFlow's.

Matches may be masked: an IPv4 field as ``(address, mask)``, an L4 port as ``(value,
mask)`` (OXM masked tp_src/tp_dst, which OVS accepts). Adding a flow whose match lacks an
OXM prerequisite (an L4 port without its ip_proto, an IPv4 field without eth_type) is
refused like OVS's OFPBMC_BAD_PREREQ.

Packets are dicts of match fields (``ip_proto``, ``ipv4_src``, ``udp_dst``...); the fake adds
``in_port`` and keeps the VLAN stack in ``vlans`` (outermost last; a packet may be sent
tagged, ``vlans`` given, like a host spoofing tags; a priority tag is vid 0). A ``vlan_vid``
match of 0 takes only untagged packets (OFPVID_NONE). A packet reaching an attachment still
tagged is reported as ``"NAME (tagged [...])"``: a real host would receive it.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from testbed.controller.logic import Fabric
from testbed.controller.specs import Attachment, Changes, FlowSpec, GroupSpec, Link

MAX_HOPS = 64
# What OVS's default select hash covers of the packets the fake carries (L4 ports only
# for TCP; SCTP is not modelled).
_SELECT_HASH = ("ip_proto", "ipv4_src", "ipv4_dst")
_SELECT_HASH_TCP = ("tcp_src", "tcp_dst")
# OXM prerequisites: field -> (field, value) it needs in the same match.
_PREREQ = {"udp_src": ("ip_proto", 17), "udp_dst": ("ip_proto", 17),
           "tcp_src": ("ip_proto", 6), "tcp_dst": ("ip_proto", 6),
           "ip_proto": ("eth_type", 0x0800), "ipv4_src": ("eth_type", 0x0800),
           "ipv4_dst": ("eth_type", 0x0800)}


class DataplaneError(AssertionError):
    """The controller asked for something a real switch would refuse."""


def _ipv4_matches(want: Any, have: Any) -> bool:
    if have is None:
        return False
    if isinstance(want, tuple):
        net = ipaddress.IPv4Network(f"{want[0]}/{want[1]}")
        return ipaddress.IPv4Address(have) in net
    return want == have


def _masked_matches(want: Any, have: Any) -> bool:
    if have is None:
        return False
    if isinstance(want, tuple):
        value, mask = want
        return have & mask == value & mask
    return want == have


def matches(flow: FlowSpec, pkt: dict) -> bool:
    """OpenFlow 1.3 matching for the fields the controller uses, masks included."""
    for key, want in flow.match:
        if key == "vlan_vid":
            if want == 0:  # OFPVID_NONE: only a frame without any 802.1Q tag
                if pkt["vlans"]:
                    return False
            elif not pkt["vlans"] or pkt["vlans"][-1] != want:
                return False
        elif key.startswith("ipv4_"):
            if not _ipv4_matches(want, pkt.get(key)):
                return False
        elif not _masked_matches(want, pkt.get(key)):
            return False
    return True


def check_prerequisites(flow: FlowSpec) -> None:
    """Refuse a match missing an OXM prerequisite, or a mask on a field that has none."""
    m = dict(flow.match)
    for key, value in m.items():
        if isinstance(value, tuple) and key not in _PREREQ:
            raise DataplaneError(f"OFPBMC_BAD_MASK: {key} cannot be masked: {flow}")
        if isinstance(value, tuple) and not key.startswith("ipv4_"):
            v, mask = value
            if not (isinstance(v, int) and isinstance(mask, int) and 0 <= v <= 0xFFFF
                    and 0 <= mask <= 0xFFFF and v & ~mask == 0):
                raise DataplaneError(f"OFPBMC_BAD_WILDCARDS: {key}={value}: {flow}")
        need = _PREREQ.get(key)
        while need is not None:
            if m.get(need[0]) != need[1]:
                raise DataplaneError(f"OFPBMC_BAD_PREREQ: {key} needs {need[0]}={need[1]}: "
                                     f"{flow}")
            need = _PREREQ.get(need[0])


class FakeDataplane:
    """Switches fed by Changes; ``trace`` follows a packet through them.

    ``source`` is either the switch dict (name -> dpid): tables start as a freshly connected
    switch's (the table-miss flow only), or a Fabric: tables are a snapshot of its
    ``base_flows`` + ``state_for`` every switch, as the app installs on connect. ``vnfs`` names the attachments that echo packets back.
    """

    def __init__(self, source: dict[str, int] | Fabric, links: Iterable[Link],
                 attachments: Iterable[Attachment], vnfs: Iterable[str] = ()):
        self.links = list(links)
        self.attachments = {a.name: a for a in attachments}
        self.vnfs = set(vnfs)
        self.hooks: dict[str, Callable[[dict], dict | None]] = {}
        self.dead_ports: set[tuple[str, int]] = set()
        if isinstance(source, Fabric):
            source, fabric = source.switches(), source
        else:
            fabric = None
        self.dpids = dict(source)
        self.names = {d: n for n, d in self.dpids.items()}
        self.flows: dict[int, dict[tuple, FlowSpec]] = {d: {} for d in self.names}
        self.groups: dict[int, dict[int, GroupSpec]] = {d: {} for d in self.names}
        for dpid in self.names:
            base = [FlowSpec(dpid=dpid, priority=0, match=(), actions=())]
            groups: list[GroupSpec] = []
            if fabric is not None:
                flows, groups = fabric.state_for(dpid)
                base = fabric.base_flows(dpid) + flows
            for g in groups:
                self.groups[dpid][g.group_id] = g
            for f in base:
                self.flows[dpid][f.key()] = f
        self.peer: dict[tuple[str, int], tuple[str, int]] = {}
        for l in self.links:
            self.peer[(l.a, l.a_port)] = (l.b, l.b_port)
            self.peer[(l.b, l.b_port)] = (l.a, l.a_port)
        self.att_at = {(a.switch, a.port): a.name for a in self.attachments.values()}
        self.packets: dict[tuple, int] = {}  # flow key -> packets matched, like flow stats
        # (dpid, group id) -> packets per bucket index, like group stats
        self.bucket_packets: dict[tuple[int, int], dict[int, int]] = {}

    # ------------------------------------------------------------------ programming
    def apply(self, changes: Changes) -> None:
        """Apply Changes in their order, refusing what OVS would refuse."""
        for op, spec in changes.ordered():
            if op == "group_add":
                assert isinstance(spec, GroupSpec)
                if spec.group_id in self.groups[spec.dpid]:
                    raise DataplaneError(f"OFPGMFC_GROUP_EXISTS: {spec}")
                self._check_chained(spec)
                self.groups[spec.dpid][spec.group_id] = spec
                self.bucket_packets.pop((spec.dpid, spec.group_id), None)
            elif op == "group_mod":
                assert isinstance(spec, GroupSpec)
                if spec.group_id not in self.groups[spec.dpid]:
                    raise DataplaneError(f"OFPGMFC_UNKNOWN_GROUP: {spec}")
                self._check_chained(spec)
                self.groups[spec.dpid][spec.group_id] = spec
            elif op == "flow_add":
                assert isinstance(spec, FlowSpec)
                check_prerequisites(spec)
                for a in spec.actions:
                    if a[0] == "group" and a[1] not in self.groups[spec.dpid]:
                        raise DataplaneError(f"OFPBAC_BAD_OUT_GROUP: {spec}")
                self.flows[spec.dpid][spec.key()] = spec
            elif op == "flow_del":
                assert isinstance(spec, FlowSpec)
                if spec.key() not in self.flows[spec.dpid]:
                    raise DataplaneError(f"deleting a flow that is not installed: {spec}")
                del self.flows[spec.dpid][spec.key()]
            elif op == "group_del":
                assert isinstance(spec, GroupSpec)
                if spec.group_id not in self.groups[spec.dpid]:
                    raise DataplaneError(f"deleting a group that is not installed: {spec}")
                users = [f for f in self.flows[spec.dpid].values()
                         if ("group", spec.group_id) in f.actions]
                if users:
                    raise DataplaneError(f"group {spec} deleted while flows use it: {users}")
                chained = [g for g in self.groups[spec.dpid].values()
                           if any(("group", spec.group_id) in b.actions for b in g.buckets)]
                if chained:
                    raise DataplaneError(f"group {spec} deleted while groups use it: {chained}")
                del self.groups[spec.dpid][spec.group_id]
                self.bucket_packets.pop((spec.dpid, spec.group_id), None)
            else:
                raise DataplaneError(f"unknown change {op}")

    apply_changes = apply

    def _check_chained(self, spec: GroupSpec) -> None:
        for b in spec.buckets:
            for a in b.actions:
                if a[0] == "group" and a[1] not in self.groups[spec.dpid]:
                    raise DataplaneError(f"OFPGMFC_CHAINED_GROUP (unknown group {a[1]}): {spec}")
                if a[0] == "group" and spec.type == "ff":
                    raise DataplaneError(f"unexpected chaining from a fast-failover group: {spec}")

    def group_stats(self) -> list[dict]:
        """Rows like OpenFlow group stats: dpid, group_id, buckets [{packets, bytes}]."""
        rows = []
        for dpid, table in self.groups.items():
            for gid, g in table.items():
                counts = self.bucket_packets.get((dpid, gid), {})
                rows.append({"dpid": dpid, "group_id": gid, "buckets": [
                    {"packets": counts.get(k, 0), "bytes": 100 * counts.get(k, 0)}
                    for k in range(len(g.buckets))]})
        return rows

    def flow_stats(self) -> list[dict]:
        """Rows like the northbound's flow-stats: cookie, priority, packets, bytes (100/packet)."""
        return [{"cookie": f.cookie, "priority": f.priority, "packets": self.packets.get(k, 0),
                 "bytes": 100 * self.packets.get(k, 0)}
                for table in self.flows.values() for k, f in table.items()]

    def state(self, dpid: int) -> tuple[set[FlowSpec], set[GroupSpec]]:
        return set(self.flows[dpid].values()), set(self.groups[dpid].values())

    # --------------------------------------------------------------------- liveness
    def set_link(self, a: str, b: str, up: bool) -> Link:
        """Take the (first) link between switches a and b down or up, both ends."""
        link = next(l for l in self.links if {l.a, l.b} == {a, b})
        for end in ((link.a, link.a_port), (link.b, link.b_port)):
            if up:
                self.dead_ports.discard(end)
            else:
                self.dead_ports.add(end)
        return link

    def live(self, switch: str, port: int) -> bool:
        return (switch, port) not in self.dead_ports

    # ---------------------------------------------------------------------- tracing
    def trace(self, packet: dict, from_attachment: str) -> list[str]:
        """Names of the attachments the packet reaches, in order. A drop or loop ends the
        list with a marker string starting with "DROP" or "LOOP"."""
        att = self.attachments[from_attachment]
        pkt = {"eth_type": 0x0800, **packet, "vlans": list(packet.get("vlans", ()))}
        reached: list[str] = []
        queue = [(att.switch, att.port, pkt, 0)]
        while queue:
            switch, port, p, hops = queue.pop(0)
            if hops > MAX_HOPS:
                reached.append(f"LOOP at {switch}")
                continue
            for out_sw, out_port, q in self._switch(switch, port, p, reached):
                if not self.live(out_sw, out_port):
                    reached.append(f"DROP at {out_sw}: port {out_port} is down")
                elif (out_sw, out_port) in self.peer:
                    nsw, nport = self.peer[(out_sw, out_port)]
                    if not self.live(nsw, nport):
                        reached.append(f"DROP at {nsw}: port {nport} is down")
                    else:
                        queue.append((nsw, nport, q, hops + 1))
                elif (out_sw, out_port) in self.att_at:
                    name = self.att_at[(out_sw, out_port)]
                    if q["vlans"]:
                        # a host does receive a tagged frame: it leaked there
                        reached.append(f"{name} (tagged {q['vlans']})")
                        continue
                    reached.append(name)
                    if name in self.vnfs:
                        if name in self.hooks:
                            back = self.hooks[name]({k: v for k, v in q.items() if k != "in_port"})
                            if back is None:
                                continue
                            q = {**back, "vlans": list(back.get("vlans", ()))}
                        queue.append((out_sw, out_port, q, hops + 1))
                else:
                    reached.append(f"DROP at {out_sw}: port {out_port} leads nowhere")
        return reached

    def _switch(self, switch: str, in_port: int, pkt: dict, reached: list[str]):
        """One switch: table lookup and actions; returns (switch, port, packet) outputs."""
        dpid = self.dpids[switch]
        p = dict(pkt, in_port=in_port, vlans=list(pkt["vlans"]))
        best = None
        for f in self.flows[dpid].values():
            if matches(f, p) and (best is None or f.priority > best.priority):
                best = f
        if best is not None:
            self.packets[best.key()] = self.packets.get(best.key(), 0) + 1
        if best is None or not best.actions:
            reached.append(f"DROP at {switch}: no matching flow")
            return []
        return self._actions(switch, dpid, best.actions, p, reached)

    def _actions(self, switch: str, dpid: int, actions, p: dict, reached: list[str]):
        outs = []
        for a in actions:
            kind = a[0]
            if kind == "output":
                if a[1] == p["in_port"]:
                    continue  # OpenFlow: output to the in_port needs OFPP_IN_PORT
                outs.append((switch, a[1], dict(p, vlans=list(p["vlans"]))))
            elif kind == "in_port":
                outs.append((switch, p["in_port"], dict(p, vlans=list(p["vlans"]))))
            elif kind == "push_vlan":
                p["vlans"].append(p["vlans"][-1] if p["vlans"] else 0)
            elif kind == "set_vlan":
                if not p["vlans"]:
                    raise DataplaneError(f"set_vlan on an untagged packet at {switch}")
                p["vlans"][-1] = a[1]
            elif kind == "pop_vlan":
                if not p["vlans"]:
                    raise DataplaneError(f"pop_vlan on an untagged packet at {switch}")
                p["vlans"].pop()
            elif kind == "group":
                outs += self._group(switch, dpid, self.groups[dpid][a[1]], p, reached)
            else:
                raise DataplaneError(f"unknown action {a}")
        if not outs:
            reached.append(f"DROP at {switch}: actions {actions} output nothing")
        return outs

    def _group(self, switch: str, dpid: int, group: GroupSpec, p: dict, reached: list[str]):
        buckets = list(group.buckets)
        index = {id(b): k for k, b in enumerate(buckets)}
        if group.type in ("ff", "select"):
            buckets = [b for b in buckets if b.watch_port is None or self.live(switch, b.watch_port)]
        if group.type == "ff":
            buckets = buckets[:1]
        elif group.type == "select" and buckets:
            fields = _SELECT_HASH + (_SELECT_HASH_TCP if p.get("ip_proto") == 6 else ())
            key = repr(tuple(p.get(k) for k in fields)).encode()
            weights = [max(b.weight, 1) for b in buckets]
            pick = zlib.crc32(key) % sum(weights)
            for b, w in zip(buckets, weights):
                if pick < w:
                    buckets = [b]
                    break
                pick -= w
        outs = []
        counts = self.bucket_packets.setdefault((dpid, group.group_id), {})
        for b in buckets:
            counts[index[id(b)]] = counts.get(index[id(b)], 0) + 1
            outs += self._actions(switch, dpid, b.actions, dict(p, vlans=list(p["vlans"])), reached)
        return outs
