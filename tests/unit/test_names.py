"""Property tests (hypothesis) of the kernel names the emulator derives: interface and
OVS port names fit Linux's 15 characters and never collide, for any topology
``topology check`` accepts and any VNF instance counter (heals and scale-outs)."""
from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mano.descriptors.vnfd import VNFD_ID
from testbed.emulator.names import IFNAMSIZ, ifname
from testbed.emulator.net import Emulation
from testbed.topology import Topology
from testbed.topology.model import NAME_RE

IFACE = re.compile(r"[A-Za-z0-9_-]{1,15}")
NODE_NAMES = st.from_regex(NAME_RE, fullmatch=True)
VNFD_IDS = st.from_regex(VNFD_ID, fullmatch=True)
COUNTERS = st.integers(1, 10**15)          # instance counters grow with every heal/scale


@settings(max_examples=200)
@given(node=NODE_NAMES | st.text(min_size=1, max_size=40), port=st.integers(0, 2**31))
def test_ifname_fits_ifnamsiz_for_any_node_and_port(node, port):
    """Any node name and port number give a name of at most 15 safe characters."""
    name = ifname(node, port)
    assert IFACE.fullmatch(name), name
    assert len(name) <= IFNAMSIZ


@settings(max_examples=100)
@given(node=NODE_NAMES, port=st.integers(0, 9))
def test_short_names_keep_the_readable_form(node, port):
    """A name that fits stays ``<node>-eth<port>`` (what users and docs see)."""
    assert ifname(node, port) == f"{node}-eth{port}"


@settings(max_examples=100)
@given(vnfd=VNFD_IDS, counters=st.lists(COUNTERS, min_size=1, max_size=40, unique=True))
def test_instance_interfaces_never_collide_after_many_heals(vnfd, counters):
    """VNF instances ``<vnfd>_<n>`` with any counters get distinct bounded names, each
    stable for a given set of names already taken."""
    taken: set[str] = set()
    for n in counters:
        name = ifname(f"{vnfd}_{n}", 0, taken)
        assert len(name) <= IFNAMSIZ and name not in taken
        assert ifname(f"{vnfd}_{n}", 0, taken) == name
        taken.add(name)
    assert len(taken) == len(counters)


def test_a_taken_digest_moves_to_the_next_salt():
    """Two ports whose long names hash alike still get two names (collision check)."""
    first = ifname("abcdefghij", 123456)
    second = ifname("abcdefghij", 123456, {first})
    assert first != second and len(second) <= IFNAMSIZ


def _max_topology(switches: int, hosts_per_switch: int, long: str) -> Topology:
    topo = Topology("maxnames")
    names = [f"s{long[1:9]}{i}" for i in range(switches)]
    for s in names:
        topo.add_switch(s)
    for a, b in itertools.pairwise(names):
        topo.add_link(a, b)
    for i, s in enumerate(names):
        for j in range(hosts_per_switch):
            topo.add_endpoint(f"h{long[1:7]}{i}{j:02d}", s)
    topo.validate()
    return topo


@settings(max_examples=25)
@given(long=st.from_regex(r"[A-Za-z][A-Za-z0-9_]{9}", fullmatch=True),
       switches=st.integers(2, 4), hosts=st.integers(1, 14))
def test_planned_emulation_names_fit_and_are_unique(long, switches, hosts):
    """The emulator's port plan of an accepted topology with 10-character names and
    more than 10 ports per switch names every interface within 15 characters, once."""
    topo = _max_topology(switches, hosts, long)
    emu = Emulation(topo, datapath="user", controller=False)
    emu._plan()
    ifaces = [p.iface for sw in emu.switches.values() for p in sw.ports.values()]
    ifaces += [emu.host_iface(e.name) for e in topo.endpoints()]
    assert all(len(i) <= IFNAMSIZ for i in ifaces)
    assert len(set(ifaces)) == len(ifaces)
