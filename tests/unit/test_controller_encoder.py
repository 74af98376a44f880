"""Unit tests of ``ofmsg.Encoder``: whole Changes sent as one write per switch and phase
must give every switch the very bytes os-ken's ``send_msg`` of each message would; their
stages (``Changes.stages()``) are make, switch and break, in that order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from os_ken.base import app_manager  # noqa: F401  (os-ken imports it before controller)
from os_ken.controller.controller import Datapath
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser
from test_controller_logic import fat_tree
from test_controller_repair import _graphs

from testbed.controller import ofmsg, wire
from testbed.controller.logic import Fabric
from testbed.controller.specs import Bucket, Changes, FlowSpec, GroupSpec

SWITCHES, LINKS, ATTS = fat_tree(4)


class _Datapath:
    """os-ken's own ``send_msg`` and ``set_xid`` on a datapath whose socket is a list."""

    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser
    send_msg, set_xid = Datapath.send_msg, Datapath.set_xid

    def __init__(self, dpid: int, xid: int):
        self.id, self.xid, self.sent = dpid, xid, []

    def send(self, buf, close_socket=False) -> bool:
        self.sent.append(bytes(buf))
        return True


def _changes() -> list[Changes]:
    """Changes of every kind the fabric sends: installs (fast-failover and select groups,
    split classifiers, UDP and TCP), a link cut and its return, a graph removal."""
    fabric = Fabric(SWITCHES, LINKS, ATTS)
    out = [fabric.add_graph(fg) for fg in _graphs()]
    for link in LINKS[:6]:
        out.append(fabric.port_status(SWITCHES[link.a], link.a_port, False))
        out.append(fabric.port_status(SWITCHES[link.a], link.a_port, True))
    out += [fabric.remove_graph("g0"), fabric.remove_graph("g1")]
    return [ch for ch in out if ch]


def test_each_switch_gets_the_bytes_send_msg_would_send():
    """Per switch, the stamped batches concatenate to exactly the bytes (xids included,
    wrapping at the top) that os-ken's send_msg of message_for sends, message by message
    in Changes.stages() order, and leave the xid counter where send_msg leaves it."""
    enc = ofmsg.Encoder(ofproto_v1_3, ofproto_v1_3_parser)
    kinds = set()
    start = ofproto_v1_3.MAX_XID - 40
    for ch in _changes():
        old = {d: _Datapath(d, start) for d in SWITCHES.values()}
        new = {d: _Datapath(d, start) for d in SWITCHES.values()}
        for op, spec in (e for _, run in ch.stages() for e in run):
            kinds.add(op)
            dp = old[spec.dpid]
            dp.send_msg(ofmsg.message_for(dp, op, spec))
        stages = enc.encode(ch)
        for _name, batches in stages:
            assert len({b.dpid for b in batches}) == len(batches), "one batch per switch"
            for batch in batches:
                dp = new[batch.dpid]
                dp.send(batch.stamped(dp))
        for d in SWITCHES.values():
            assert b"".join(new[d].sent) == b"".join(old[d].sent), d
            assert new[d].xid == old[d].xid
        assert [op for _, batches in stages for b in batches for op in b.ops] == \
            [op for _, run in ch.stages() for d in dict.fromkeys(s.dpid for _, s in run)
             for op, s in run if s.dpid == d]
    assert kinds == {"flow_add", "flow_del", "group_add", "group_mod", "group_del"}


def test_stages_are_ordered_cut_into_make_switch_break():
    """Changes.stages() is Changes.ordered() cut into non-empty stages, in the order make,
    switch, break: new groups and transit/deliver flows, then changed groups and
    classifiers and flows overwriting an installed one (``moves``), then deletions; the link
    cuts' reroutes have all three. The flows of paths a link cut broke (``at_once``: the
    link cuts' unprotected graphs have some) move to the end of the make stage; each stage
    keeps ordered() order."""
    kinds = {"make": {"group_add", "flow_add"}, "switch": {"group_mod", "flow_add"},
             "break": {"flow_del", "group_del"}}
    three = moved = 0
    for ch in _changes():
        stages = ch.stages()
        early = [e for e in ch.ordered() if e[0] == "flow_add" and e[1].key() in ch.at_once]
        assert sorted(map(repr, (e for _, run in stages for e in run))) == \
            sorted(map(repr, ch.ordered()))
        pos = {repr(e): i for i, e in enumerate(ch.ordered())}
        for _name, run in stages:          # each stage in ordered() order
            idx = [pos[repr(e)] for e in run if e not in early]
            assert idx == sorted(idx)
        names = [name for name, _ in stages]
        assert names == sorted(names, key=["make", "switch", "break"].index)
        assert len(set(names)) == len(names) and all(run for _, run in stages)
        for name, run in stages:
            assert {op for op, _ in run} <= kinds[name]
            for op, spec in run:
                if op == "flow_add":
                    moving = not dict(spec.match).get("vlan_vid") or spec.key() in ch.moves
                    assert (name == "switch") == (moving and spec.key() not in ch.at_once)
        if early:
            make = dict(stages)["make"]
            assert make[-len(early):] == early
            moved += 1
        three += names == ["make", "switch", "break"]
    assert three and moved


def test_prepared_changes_are_not_encoded_again():
    """Prepared Changes come back as the encoding made by ``prepare`` (the same object);
    equal Changes that are another object are encoded afresh, to equal bytes."""
    enc = ofmsg.Encoder(ofproto_v1_3, ofproto_v1_3_parser)
    ch = _changes()[0]
    enc.prepare(ch)
    ready = enc.encode(ch)
    assert enc.encode(ch) is ready
    twin = Changes(**{k: list(v) for k, v in vars(ch).items()})
    again = enc.encode(twin)
    assert again is not ready and again == ready
    enc.forget()
    assert enc.encode(ch) is not ready


def _os_ken_bytes(op: str, spec) -> bytes:
    dp = _Datapath(spec.dpid, 0)
    msg = ofmsg.message_for(dp, op, spec)
    msg.set_xid(0)
    msg.serialize()
    return bytes(msg.buf)


def test_wire_encoding_is_os_kens_for_the_fabric_specs_it_takes():
    """For every entry of the fabric's Changes, ``wire.encode`` gives os-ken's bytes or
    declines (None: IPv4 classifiers), and it takes most of them (transit, deliver,
    backup flows, all groups)."""
    taken = declined = 0
    for ch in _changes():
        for op, spec in ch.ordered():
            data = wire.encode(op, spec)
            if data is None:
                declined += 1
                assert op.startswith("flow") and any(k.startswith("ipv4") for k, _ in spec.match)
            else:
                taken += 1
                assert data == _os_ken_bytes(op, spec), (op, spec)
    assert declined and taken > 10 * declined


_ACTION = st.one_of(
    st.tuples(st.just("output"), st.integers(1, 0xFFFFFF00)), st.just(("in_port",)),
    st.just(("push_vlan",)), st.just(("pop_vlan",)),
    st.tuples(st.just("set_vlan"), st.integers(1, 4094)),
    st.tuples(st.just("group"), st.integers(1, 0xFFFFFF00)))
_PORT = st.integers(0, 0xFFFF)
_MATCH = st.fixed_dictionaries({"in_port": st.integers(1, 0xFFFFFF00)}, optional={
    "vlan_vid": st.integers(0, 4094), "eth_type": st.just(0x0800),
    "ip_proto": st.sampled_from([6, 17]), "udp_dst": _PORT,
    "udp_src": st.one_of(_PORT, st.tuples(_PORT, _PORT)), "tcp_dst": _PORT,
    "tcp_src": st.one_of(_PORT, st.tuples(_PORT, _PORT))})


@settings(max_examples=300, deadline=None)
@given(match=_MATCH, actions=st.lists(_ACTION, max_size=4),
       priority=st.integers(0, 0xFFFF), cookie=st.integers(0, 2**64 - 1),
       op=st.sampled_from(["flow_add", "flow_del"]))
def test_wire_flow_mods_equal_os_kens(match, actions, priority, cookie, op):
    """Any flow add or strict delete in the fields and actions ``wire`` takes (masked L4
    ports too) is encoded to exactly os-ken's bytes."""
    spec = FlowSpec(dpid=1, priority=priority, match=match, actions=tuple(actions),
                    cookie=cookie)
    assert wire.encode(op, spec) == _os_ken_bytes(op, spec)


@settings(max_examples=200, deadline=None)
@given(buckets=st.lists(st.tuples(st.lists(_ACTION, max_size=3),
                                  st.one_of(st.none(), st.integers(1, 0xFFFFFF00)),
                                  st.integers(0, 0xFFFF)), max_size=4),
       kind=st.sampled_from(["ff", "select", "all", "indirect"]),
       group_id=st.integers(1, 0xFFFFFF00),
       op=st.sampled_from(["group_add", "group_mod", "group_del"]))
def test_wire_group_mods_equal_os_kens(buckets, kind, group_id, op):
    """Any group add, modify or delete with buckets of the actions ``wire`` takes is
    encoded to exactly os-ken's bytes."""
    spec = GroupSpec(dpid=1, group_id=group_id, type=kind,
                     buckets=tuple(Bucket(actions=tuple(a), watch_port=w, weight=wt)
                                   for a, w, wt in buckets))
    assert wire.encode(op, spec) == _os_ken_bytes(op, spec)
