"""The rtnetlink requests a host's set-up sends (``testbed.emulator.netlink.requests``),
decoded field by field: what ``ip address add``, ``ip link set up`` and ``ip neigh
replace ... nud permanent`` would send; and how they are cut into datagrams, each asking
for one acknowledgement, at its end (``datagrams``)."""
from __future__ import annotations

import socket
import struct

import pytest

from testbed.emulator import netlink


def _messages(blob: bytes) -> list[tuple[int, int, int, bytes]]:
    out, off = [], 0
    while off < len(blob):
        length, kind, flags, seq, _pid = struct.unpack_from("IHHII", blob, off)
        out.append((kind, flags, seq, blob[off + 16:off + length]))
        off += (length + 3) & ~3
    return out


def _attrs(data: bytes) -> dict[int, bytes]:
    out, off = {}, 0
    while off + 4 <= len(data):
        size, kind = struct.unpack_from("HH", data, off)
        out[kind] = data[off + 4:off + size]
        off += (size + 3) & ~3
    return out


def test_a_host_gets_loopback_address_interface_up_then_its_arp_entries():
    host = netlink.HostNet(1, "h1-eth0", "10.0.0.1", 8,
                           (("10.0.0.2", "02:00:00:00:00:02"), ("10.0.1.3", "0a:bc:de:f0:12:34")))
    reqs = netlink.requests(host, ifindex=7)
    [(last, datagram)] = netlink.datagrams(reqs)
    assert last == 5
    msgs = _messages(datagram)
    assert [k for k, *_ in msgs] == [netlink.RTM_NEWLINK, netlink.RTM_NEWADDR,
                                    netlink.RTM_NEWLINK, netlink.RTM_NEWNEIGH,
                                    netlink.RTM_NEWNEIGH]
    assert [seq for _k, _f, seq, _b in msgs] == [1, 2, 3, 4, 5]
    # only the last asks for an acknowledgement; the kernel answers a failure anyway
    assert [bool(f & netlink.NLM_F_ACK) for _k, f, _s, _b in msgs] == [False] * 4 + [True]
    assert all(f & netlink.NLM_F_REQUEST for _k, f, _s, _b in msgs)

    _fam, _pad, _type, index, flags, change = struct.unpack_from("BBHiII", msgs[0][3])
    assert (index, flags, change) == (1, netlink.IFF_UP, netlink.IFF_UP)   # lo
    _fam, _pad, _type, index, flags, change = struct.unpack_from("BBHiII", msgs[2][3])
    assert (index, flags, change) == (7, netlink.IFF_UP, netlink.IFF_UP)

    _kind, flags, _seq, body = msgs[1]
    family, prefix, _fl, scope, index = struct.unpack_from("BBBBI", body)
    assert (family, prefix, scope, index) == (socket.AF_INET, 8, 0, 7)
    assert flags & netlink.NLM_F_CREATE and flags & netlink.NLM_F_EXCL
    attrs = _attrs(body[8:])
    assert attrs[netlink.IFA_LOCAL] == attrs[netlink.IFA_ADDRESS] == bytes([10, 0, 0, 1])

    for (_k, flags, _s, body), (ip, mac) in zip(msgs[3:], host.neighbours):
        family, _p1, _p2, index, state, _fl, _ty = struct.unpack_from("BBHiHBB", body)
        assert (family, index, state) == (socket.AF_INET, 7, netlink.NUD_PERMANENT)
        assert flags & netlink.NLM_F_CREATE and flags & netlink.NLM_F_REPLACE
        attrs = _attrs(body[12:])
        assert attrs[netlink.NDA_DST] == socket.inet_aton(ip)
        assert attrs[netlink.NDA_LLADDR] == bytes.fromhex(mac.replace(":", ""))
    assert reqs[3][0] == "add ARP entry 10.0.0.2 -> 02:00:00:00:00:02"


def test_a_host_with_no_neighbours_asks_for_the_acknowledgement_of_its_link_up():
    [(last, datagram)] = netlink.datagrams(netlink.requests(
        netlink.HostNet(1, "x", "10.0.0.9", 24), ifindex=3))
    msgs = _messages(datagram)
    assert last == 3 and len(msgs) == 3 and msgs[-1][1] & netlink.NLM_F_ACK
    assert struct.unpack_from("BBBBI", msgs[1][3])[1] == 24


def test_many_neighbours_go_in_datagrams_under_the_limit_each_acknowledged_at_its_end():
    """5,000 ARP entries (a 5,001-host topology) would overflow a socket's buffers in one
    datagram: they go in several, every request once and in order."""
    nbrs = tuple((f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                  f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}")
                 for i in range(1, 5001))
    reqs = netlink.requests(netlink.HostNet(1, "x", "10.200.0.1", 8, nbrs), ifindex=3)
    grams = netlink.datagrams(reqs, limit=4096)
    assert len(grams) > 10 and all(len(d) <= 4096 for _l, d in grams)
    seqs, acked = [], []
    for last, datagram in grams:
        msgs = _messages(datagram)
        seqs += [seq for _k, _f, seq, _b in msgs]
        assert msgs[-1][2] == last
        acked += [seq for _k, f, seq, _b in msgs if f & netlink.NLM_F_ACK]
    assert seqs == list(range(1, len(reqs) + 1))
    assert acked == [last for last, _d in grams]


@pytest.mark.parametrize("ip, mac, what", [("10.0.0.300", "02:00:00:00:00:01", "10.0.0.300"),
                                           ("10.0.0.2", "02:00:00:00:01", "02:00:00:00:01"),
                                           ("10.0.0.2", "zz:00:00:00:00:01", "zz:00")])
def test_a_malformed_neighbour_is_refused_naming_it(ip, mac, what):
    with pytest.raises(ValueError, match=what):
        netlink.requests(netlink.HostNet(1, "x", "10.0.0.1", 8, ((ip, mac),)), ifindex=3)
