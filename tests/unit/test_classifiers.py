"""The classifier overlap rule (``mano.classifiers``), the one the NFVO and the controller
share: examples and hypothesis properties against a brute-force packet matcher."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mano import classifiers as C

ADDRS = [f"10.0.{a}.{b}" for a in (0, 1) for b in (0, 1, 2, 16, 128)]


@st.composite
def prefixes(draw) -> str:
    addr = draw(st.sampled_from(ADDRS))
    plen = draw(st.sampled_from([8, 16, 23, 24, 25, 28, 31, 32]))
    return str(ipaddress.IPv4Network(f"{addr}/{plen}", strict=False))


@st.composite
def classifier(draw) -> dict:
    out: dict = {}
    proto = draw(st.sampled_from([None, 6, 17, 1]))
    if proto is not None:
        out["ip_proto"] = proto
    for key in ("ipv4_src", "ipv4_dst"):
        if draw(st.booleans()):
            out[key] = draw(prefixes())
    if proto in (6, 17):
        l4 = "udp" if proto == 17 else "tcp"
        for end in ("src", "dst"):
            if draw(st.booleans()):
                out[f"{l4}_{end}"] = draw(st.sampled_from([53, 80, 5000, 5001]))
    return out


@st.composite
def packet(draw) -> dict:
    proto = draw(st.sampled_from([6, 17, 1]))
    pkt = {"eth_type": 0x0800, "ip_proto": proto,
           "ipv4_src": draw(st.sampled_from(ADDRS)), "ipv4_dst": draw(st.sampled_from(ADDRS))}
    if proto in (6, 17):
        l4 = "udp" if proto == 17 else "tcp"
        pkt[f"{l4}_src"] = draw(st.sampled_from([53, 80, 5000, 5001]))
        pkt[f"{l4}_dst"] = draw(st.sampled_from([53, 80, 5000, 5001]))
    return pkt


def takes(cl: dict, pkt: dict) -> bool:
    """Reference matcher, written without mano.classifiers: every field of the classifier
    holds for the packet (a field the packet lacks does not match)."""
    for key, want in cl.items():
        have = pkt.get(key)
        if have is None:
            return False
        if key.startswith("ipv4_"):
            if ipaddress.IPv4Address(have) not in ipaddress.IPv4Network(want, strict=False):
                return False
        elif have != want:
            return False
    return True


def test_issue_example_overlaps():
    """{ipv4_src 10.0.0.1} and {ipv4_dst 10.0.0.16} overlap in the packet 10.0.0.1 -> 10.0.0.16."""
    both = C.intersection({"ipv4_src": "10.0.0.1"}, {"ipv4_dst": "10.0.0.16"})
    assert both is not None
    assert C.describe(both) == "ipv4_src 10.0.0.1, ipv4_dst 10.0.0.16"


@pytest.mark.parametrize("a, b, want", [
    ({"ipv4_src": "10.0.0.0/24"}, {"ipv4_src": "10.0.0.128/25"}, True),
    ({"ipv4_src": "10.0.0.0/25"}, {"ipv4_src": "10.0.0.128/25"}, False),
    ({"ipv4_src": ("10.0.0.0", "255.255.255.0")}, {"ipv4_src": "10.0.0.7"}, True),
    ({"ip_proto": 17, "udp_dst": 53}, {"ip_proto": 6, "tcp_dst": 53}, False),
    ({"udp_dst": 53}, {"ip_proto": 6}, False),            # an L4 port implies its protocol
    ({"ip_proto": 17, "udp_dst": 53}, {"ip_proto": 17, "udp_dst": 54}, False),
    ({"ip_proto": 17, "udp_src": (1, 1)}, {"ip_proto": 17, "udp_src": 41001}, True),
    ({"ip_proto": 17, "udp_src": (0, 1)}, {"ip_proto": 17, "udp_src": 41001}, False),
    ({}, {"ip_proto": 1}, True),                           # no field: every IPv4 packet
    ({"eth_type": 0x86DD}, {"ipv4_src": "10.0.0.1"}, False),
])
def test_overlap_examples(a, b, want):
    """Prefixes, masks, ports, protocols and wildcards overlap exactly when they intersect."""
    assert C.overlap(a, b) is want


def test_unknown_field_is_named():
    """A field outside the classifier keys is refused with its name and the known ones."""
    with pytest.raises(ValueError, match="'vlan_pcp' is not one of eth_type, ip_proto"):
        C.masked({"vlan_pcp": 3})


@settings(max_examples=300, derandomize=True)
@given(classifier(), classifier())
def test_overlap_is_symmetric(a, b):
    """overlap(a, b) == overlap(b, a), and the intersections are the same."""
    assert C.intersection(a, b) == C.intersection(b, a)


@settings(max_examples=200, derandomize=True)
@given(classifier())
def test_identical_classifiers_overlap(a):
    """A classifier overlaps itself, and its intersection with itself is itself."""
    assert C.intersection(a, a) == C.masked(a)


@settings(max_examples=200, derandomize=True)
@given(prefixes(), prefixes(), st.sampled_from(["ipv4_src", "ipv4_dst"]))
def test_disjoint_prefixes_do_not_overlap(p, q, key):
    """Two prefixes of one field overlap exactly when the networks share an address."""
    shared = ipaddress.IPv4Network(p).overlaps(ipaddress.IPv4Network(q))
    assert C.overlap({key: p}, {key: q}) is shared


@settings(max_examples=500, derandomize=True)
@given(classifier(), classifier(), packet())
def test_a_packet_both_take_is_in_the_intersection(a, b, pkt):
    """Soundness against a brute-force matcher: a packet matching both classifiers means
    they overlap, and it matches their intersection."""
    if takes(a, pkt) and takes(b, pkt):
        both = C.intersection(a, b)
        assert both is not None
        for key, (v, m) in both.items():
            have = pkt[key]
            if key.startswith("ipv4_"):
                have = int(ipaddress.IPv4Address(have))
            assert have & m == v & m


@settings(max_examples=300, derandomize=True)
@given(classifier(), classifier())
def test_an_intersection_holds_a_packet_both_take(a, b):
    """Completeness: when they overlap, the packet built from the intersection's values
    (wildcards filled arbitrarily) matches both classifiers."""
    both = C.intersection(a, b)
    if both is None:
        return
    pkt = {k: (str(ipaddress.IPv4Address(v)) if k.startswith("ipv4_") else v)
           for k, (v, _m) in both.items()}
    pkt.setdefault("ip_proto", 17)
    assert takes(a, pkt) and takes(b, pkt)


def test_precedence_settles_a_conflict():
    """Overlap at one precedence is a conflict; different precedences are not."""
    a, b = {"ipv4_src": "10.0.0.1"}, {"ipv4_dst": "10.0.0.16"}
    assert C.conflict(a, 100, b, 100) is not None
    assert C.conflict(a, 100, b, 200) is None
    assert C.conflict({"ipv4_src": "10.0.0.1"}, 100, {"ipv4_src": "10.0.0.2"}, 100) is None
