"""Faults compose on the emulated NFVI (pure logic of ``EmulatedNfvi``'s holds, with the
emulation replaced by a recorder of link states): a link is up only when no active fault
holds it, whatever order faults start and end in."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from testbed.errors import TestbedError
from testbed.nfvi.emulated.experiment import EmulatedNfvi
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


class LinkRecorder:
    """The part of ``Emulation`` faults use: switches with their peers, and set_link."""

    def __init__(self, topology):
        g = topology.switch_graph()
        self.switches = {s: SimpleNamespace(ports={i: SimpleNamespace(peer=p)
                                                   for i, p in enumerate(sorted(g[s]))})
                         for s in g}
        self.down: set[frozenset] = set()
        self.calls: list[tuple] = []

    def set_link(self, a, b, up):
        self.calls.append((a, b, up))
        (self.down.discard if up else self.down.add)(frozenset((a, b)))


@pytest.fixture
def nfvi():
    topo = load_topology(ROOT / "topologies" / "fat_tree4.yaml")
    n = EmulatedNfvi(topo, "/nonexistent")
    n.emu = LinkRecorder(topo)
    return n


def test_a_link_fault_inside_a_switch_fault_does_not_bring_the_link_back(nfvi):
    """switch_down a1 from 1 s to 11 s, link_down a1-e1 from 3 s to 5 s: when the link
    fault ends the link stays down (a1 still holds it); when the switch fault ends every
    link of a1 comes back."""
    end_switch = nfvi.fail_switch("a1", hold="switch_down@1")
    assert frozenset(("a1", "e1")) in nfvi.emu.down and len(nfvi.emu.down) == 4
    end_link = nfvi.fail_link("a1", "e1", hold="link_down@3")
    end_link()
    assert frozenset(("a1", "e1")) in nfvi.emu.down
    end_switch()
    assert nfvi.emu.down == set()


def test_two_faults_on_one_link_in_any_order(nfvi):
    """Two link_down faults on one link: it comes up with the last release, not the first;
    an undo called twice changes nothing."""
    first = nfvi.fail_link("e1", "a1", hold="f1")
    second = nfvi.fail_link("a1", "e1", hold="f2")
    first()
    first()
    assert frozenset(("a1", "e1")) in nfvi.emu.down
    second()
    assert nfvi.emu.down == set()
    assert [c for c in nfvi.emu.calls if c[2] is False] == [("e1", "a1", False)]


def test_unknown_links_and_switches_are_refused_by_name(nfvi):
    """A link that is not between two switches, or an unknown switch, is refused."""
    with pytest.raises(TestbedError, match="link e1-e2: no such link"):
        nfvi.fail_link("e1", "e2", hold="x")
    with pytest.raises(TestbedError, match="switch 's99': no such switch"):
        nfvi.fail_switch("s99", hold="x")
