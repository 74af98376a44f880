"""VLAN ids per link on real Open vSwitch: with 3 ids per link (the controller's
``vlan_range``), protected host-to-host graphs on fat-tree k=4 fill the links until some
paths change id on the way; real OVS then rewrites the tag hop by hop (transit flows and
fast-failover buckets), packets arrive, and a cut link is survived on the backup."""
from __future__ import annotations

import itertools
import time

import pytest

from testbed import chain
from testbed.emulator import Emulation
from testbed.errors import ControllerError
from testbed.topology.builders import fat_tree


@pytest.fixture(scope="module")
def emu():
    with Emulation(fat_tree(4), controller_args={"vlan_range": (1, 3)}) as e:
        yield e


def _rewritten(emu) -> tuple[dict, dict]:
    """Protected graphs hX -> hY (UDP 6000 + n), installed in a fixed order until one
    holds a pair whose ids differ from link to link; returns its graph and view. Graphs
    refused (a link with both ids taken) are skipped: the refusal names the link."""
    hosts = sorted((n for n in emu.attachments if n.startswith("h")), key=lambda n: int(n[1:]))
    for n, (a, b) in enumerate(itertools.permutations(hosts, 2)):
        g = chain.chain_graph(f"g{n}", emu.attachments[a], emu.attachments[b], [],
                              udp_dst=6000 + n, protection=True)
        try:
            view = emu.ctl.put_graph(g)
        except ControllerError as exc:  # the northbound refused: a full link
            assert "no free VLAN id left on link" in str(exc), exc
            continue
        (pair,) = view["pairs"]
        if len(set(pair["vlans"])) > 1 and len(pair["path"]) >= 4:
            return g, view
    raise AssertionError("no graph needed a rewrite: the test means nothing")


def test_ids_rewritten_hop_by_hop_deliver_and_survive_a_cut(emu):
    """A graph whose id changes on the way delivers a 2,000 packets/s probe through real
    OVS (the switch that rewrites counts the packets on the first id, the next one on the
    second), and a link cut on its path is survived with a bounded outage."""
    g, view = _rewritten(emu)
    (pair,) = view["pairs"]
    path, vlans = pair["path"], pair["vlans"]
    j = next(k for k in range(1, len(vlans)) if vlans[k] != vlans[k - 1])
    src, dst = g["hops"][0], g["hops"][-1]
    res = chain.Probe(emu, src, dst, port=g["match"]["udp_dst"], rate=2000, duration=0.5,
                      tag="rw").start().wait()
    assert res["received"] >= 0.99 * res["sent"] > 0

    def packets(switch: str, vid: int) -> int:
        # ovs-vswitchd's revalidators bring a flow's counters up to date every ~0.5 s:
        # read until they reach the probe's count (or 5 s passed, then the count fails)
        deadline, n = time.monotonic() + 5, 0
        while time.monotonic() < deadline:
            n = sum(f["packets"] for f in emu.ctl.switch_state(switch)["flows"]
                    if f["priority"] == 1000
                    and int(f["match"].get("vlan_vid", 0)) & 0xFFF == vid)
            if n >= res["received"]:
                break
            time.sleep(0.2)
        return n
    assert packets(path[j], vlans[j - 1]) >= res["received"]      # came in on the first
    assert packets(path[j + 1], vlans[j]) >= res["received"]      # left on the second
    r = chain.measure_link_cut(emu, g, rate=2000, before=0.7, after=1.0, tag="rwcut")
    assert r["received"] > 0.5 * r["sent"]
    assert 0 <= r["outage_ms"] < 1000 and 0 < r["max_gap_ms"] < 1000
