"""The simulated NFVI's flow-level model (pure): CPU follows load, capacity queues and drops,
paths follow the controller's logic after failures, fast failover detours, the L4 split
shares flows, firewalls drop, load intervals and probe records are exact."""
from __future__ import annotations

import itertools
import random

import pytest

from testbed import measures
from testbed.controller.logic import split_instance
from testbed.controller.specs import ForwardingGraphSpec
from testbed.errors import TestbedError
from testbed.nfvi.simulated.calibration import load_calibration
from testbed.nfvi.simulated.experiment import probe_records
from testbed.nfvi.simulated.model import FlowModel, Instance, LoadAccount, Stream
from testbed.topology.model import Topology

CAL = load_calibration()
COST_S = (CAL.base_cost_us("forwarder") + 200.0) * 1e-6   # s per packet of inst()


def ring(bw_mbit=None, delay_ms=0.0) -> Topology:
    """s1-s2-s3-s4-s1; h1 on s1, h2 on s3; compute n1 on s2, n2 on s4."""
    t = Topology("ring")
    for s in ("s1", "s2", "s3", "s4"):
        t.add_switch(s)
    for a, b in (("s1", "s2"), ("s2", "s3"), ("s3", "s4"), ("s4", "s1")):
        t.add_link(a, b, bw_mbit=bw_mbit, delay_ms=delay_ms)
    t.add_endpoint("h1", "s1", delay_ms=delay_ms)
    t.add_endpoint("h2", "s3", delay_ms=delay_ms)
    t.add_compute("n1", "s2", vcpu=4, memory_mb=4096, disk_gb=10)
    t.add_compute("n2", "s4", vcpu=4, memory_mb=4096, disk_gb=10)
    return t


def inst(iid, node="n1", switch="s2", vcpu=0.25, cost_us=200.0, program="forwarder",
         deny=frozenset()) -> Instance:
    return Instance(iid, node, switch, program, vcpu,
                    (CAL.base_cost_us(program) + cost_us) * 1e-6, frozenset(deny))


def graph(m: FlowModel, hops, protection=False, name="g"):
    spec = ForwardingGraphSpec.from_dict({"name": name, "hops": hops,
                                          "match": {"ip_proto": 17}, "protection": protection})
    m.fabric.add_graph(spec)
    m.install(name)


def model_with_chain(rate, **kw) -> tuple[FlowModel, Stream]:
    m = FlowModel(ring(**{k: v for k, v in kw.items() if k in ("bw_mbit", "delay_ms")}), CAL)
    m.add_instance(inst("v1", **{k: v for k, v in kw.items() if k in ("vcpu", "cost_us",
                                                                      "deny")}))
    graph(m, ["h1", "v1", "h2"])
    st = Stream("load", "h1", "h2", tuple(range(20000, 20008)), 6001, rate=rate)
    m.add_stream(st)
    m.update(0.0)
    return m, st


def test_cpu_follows_offered_load_below_capacity():
    """Below capacity an instance forwards everything and uses rate x cost cores."""
    m, st = model_with_chain(500)
    v = m.instances["v1"]
    assert v.cpu_cores == pytest.approx(500 * COST_S)
    assert v.forwarded_pps == pytest.approx(500)
    assert st.frac == pytest.approx(1.0)


def test_over_capacity_the_instance_saturates_drops_and_queues():
    """Over capacity the instance uses its whole quota, forwards vcpu / cost packets/s, the
    stream loses the rest and waits a full queue (K / mu)."""
    m, st = model_with_chain(2000)
    v = m.instances["v1"]
    mu = 0.25 / COST_S
    assert v.cpu_cores == pytest.approx(0.25)
    assert v.forwarded_pps == pytest.approx(mu)
    assert st.frac == pytest.approx(mu / 2000)
    assert st.latency_s >= CAL.vnf_queue_packets / mu


def test_counters_integrate_the_rates_between_updates():
    """CPU seconds and packets are the integrals of the rates in force between updates."""
    m, st = model_with_chain(500)
    m.advance(2.0)
    st.rate = 1000
    m.update(2.0)
    cpu, packets = m.instance_counters("v1", 3.0)
    assert packets == pytest.approx(500 * 2 + 1000)
    assert cpu == pytest.approx((500 * 2 + 1000) * COST_S)


def test_hung_and_dead_instances_forward_nothing():
    """A hung instance (alive) or a dead one passes no packet and burns no CPU."""
    m, st = model_with_chain(500)
    m.instances["v1"].hung = True
    m.update(1.0)
    assert st.frac == 0 and m.instances["v1"].cpu_cores == 0
    m.instances["v1"].hung, m.instances["v1"].alive = False, False
    m.update(2.0)
    assert st.frac == 0


def test_firewall_drops_denied_port_but_pays_for_it():
    """A firewall denying the stream's port delivers nothing yet spends CPU on it."""
    m, st = model_with_chain(500, cost_us=0.0, deny={6001})
    assert st.frac == 0
    assert m.instances["v1"].cpu_cores == pytest.approx(500 * CAL.base_cost_us("forwarder")
                                                        * 1e-6)


def test_link_capacity_scales_what_crosses_it():
    """A link of bw_mbit carries bw*1e6/(8*packet_bytes) packets/s; the excess is lost."""
    cap = 1.0 * 1e6 / (8 * CAL.packet_bytes)
    _m, st = model_with_chain(2 * cap, bw_mbit=1.0, vcpu=100.0, cost_us=0.0)
    assert st.frac == pytest.approx(0.5, rel=1e-6)


def test_latency_adds_propagation_switches_and_sojourn():
    """One-way latency: every link's delay (access links too) plus per-switch latency plus
    the instance's M/M/1 sojourn."""
    _m, st = model_with_chain(100, delay_ms=1.0, vcpu=1.0, cost_us=0.0)
    mu = 1.0 / (CAL.base_cost_us("forwarder") * 1e-6)
    links = 4                    # h1-s1, s1-s2, then s2-s3, s3-h2 (v1 hangs off s2)
    switches = 2 + 2             # s1, s2, then s2, s3
    want = links * 1e-3 + switches * CAL.switch_latency_us * 1e-6 + 1 / (mu - 100)
    assert st.latency_s == pytest.approx(want)


def test_link_down_drops_until_the_controller_reroutes_with_its_own_logic():
    """A cut link drops the traffic of paths on it; after the controller sees the port
    status and installs, the path avoids it (the fabric's own path logic)."""
    m, st = model_with_chain(500)
    before = m.installed["g"].pairs
    used = next(p for p in before.values() if len(p) > 1)
    a, b = used[0], used[1]
    m.advance(1.0)
    m.set_link(a, b, False)
    m.recompute()
    assert st.frac == 0
    m.advance(1.02)
    m.controller_sees(a, b, False)
    m.install("g")
    m.recompute()
    assert st.frac == pytest.approx(1.0)
    assert all(not {a, b} <= set(p[j:j + 2]) for p in m.installed["g"].pairs.values()
               for j in range(len(p) - 1))


def test_fast_failover_detours_a_protected_graph_before_the_controller():
    """With protection, switch_over moves a pair on a cut link onto a detour at once."""
    m = FlowModel(ring(), CAL)
    m.add_instance(inst("v1"))
    graph(m, ["h1", "v1", "h2"], protection=True)
    st = Stream("p", "h1", "h2", (5001,), 5001, rate=1000)
    m.add_stream(st)
    m.update(0.0)
    path = next(p for p in m.installed["g"].pairs.values() if len(p) > 1)
    m.set_link(path[0], path[1], False)
    m.update(0.1)
    assert st.frac == 0
    m.switch_over()
    m.update(0.109)
    assert st.frac == pytest.approx(1.0)


def test_scaled_out_hop_splits_flows_on_source_port_bits():
    """Two instances of a hop share eight flows by the low bit of the source port, as the
    controller's split flows do; a single-port probe goes where its port's bits say."""
    m = FlowModel(ring(), CAL)
    m.add_instance(inst("v1"))
    m.add_instance(inst("v2", node="n2", switch="s4"))
    graph(m, ["h1", ["v1", "v2"], "h2"])
    load = Stream("load", "h1", "h2", tuple(range(20000, 20008)), 6001, rate=800)
    probe = Stream("probe", "h1", "h2", (5001,), 5001, rate=100)
    m.add_stream(load)
    m.add_stream(probe)
    m.update(0.0)
    chosen = ["v1", "v2"][split_instance(5001, 2)]
    other = "v2" if chosen == "v1" else "v1"
    assert m.instances[chosen].offered_pps == pytest.approx(400 + 100)
    assert m.instances[other].offered_pps == pytest.approx(400)


def test_unclassified_traffic_is_not_delivered():
    """A stream that no installed graph's classifier takes reaches nobody."""
    m = FlowModel(ring(), CAL)
    st = Stream("x", "h1", "h2", (5001,), 5001, rate=100)
    m.add_stream(st)
    m.update(0.0)
    assert st.frac == 0


def test_unknown_link_and_endpoint_are_refused_by_name():
    """Faults and streams on elements the topology lacks raise errors naming them."""
    m = FlowModel(ring(), CAL)
    with pytest.raises(TestbedError, match="link s1-s3: no such link"):
        m.set_link("s1", "s3", False)
    with pytest.raises(TestbedError, match="no endpoint 'h9'"):
        m.add_stream(Stream("x", "h1", "h9", (1,), 1))


def test_load_account_splits_time_at_interval_boundaries():
    """A load account puts each packet in the interval of its send time, and integrates the
    commanded rate and latency per interval."""
    acc = LoadAccount(0.5, 0)
    acc.add(0.25, 1.25, 100.0, 0.5, 0.002)
    assert acc.sent == pytest.approx({0: 25.0, 1: 50.0, 2: 25.0})
    assert acc.received == pytest.approx({0: 12.5, 1: 25.0, 2: 12.5})
    assert acc.latency_w[1] / acc.received[1] == pytest.approx(0.002)
    assert acc.rate_dt[1] / acc.elapsed[1] == pytest.approx(100.0)


def test_probe_records_give_the_outage_to_the_measures():
    """Records synthesised from a delivered/lost/delivered history give one gap whose
    outage and loss are the lost span, computed by testbed.measures."""
    rate, start_ns = 1000.0, 1_000_000_000
    hist = [(1.0, 1.0, 0.001), (3.0, 0.0, 0.0), (3.05, 1.0, 0.001)]
    sent = 4000
    seqs, recvs, sends = probe_records(hist, start_ns, rate, sent)
    recs = list(zip(seqs, recvs, sends))
    gaps = measures.probe_gaps(recs, rate=rate, sent=sent, start_ns=start_ns)
    assert len(gaps) == 1 and gaps[0].lost == 50 and gaps[0].recovered
    assert gaps[0].outage_ms == pytest.approx(50.0)
    assert measures.lost_packets(recs, sent) == 50


def test_probe_records_spread_partial_loss_evenly():
    """A delivered fraction f keeps f of the packets, spread evenly (no gap at f = 0.5)."""
    seqs, _r, _s = probe_records([(0.0, 0.5, 0.0)], 0, 1000.0, 1000)
    assert len(seqs) == 500
    assert max(b - a for a, b in itertools.pairwise(seqs)) == 2
    recs = list(zip(*probe_records([(0.0, 0.5, 0.0)], 0, 1000.0, 1000)))
    assert measures.probe_gaps(recs, rate=1000.0, sent=1000, start_ns=0) == []


def test_probe_records_keep_fifo_order_when_latency_drops():
    """When the latency falls (a queue drains) no packet overtakes an earlier one: the
    backlog arrives first, bunched, and then the new latency holds."""
    seqs, recvs, _s = probe_records([(0.0, 1.0, 0.010), (0.005, 1.0, 0.0)], 0, 1000.0, 20)
    assert list(seqs) == list(range(20)) and list(recvs) == sorted(recvs)
    assert recvs[4] == 14_000_000                      # sent at 4 ms, 10 ms latency
    assert recvs[5] == recvs[14] == 14_000_000         # behind it, bunched
    assert recvs[15] == 15_000_000                     # then the new latency (0)


def test_detour_avoids_the_next_switch_like_the_fabric_backups():
    """A fast-failover detour avoids the switch after the cut link when it can (so it also
    survives that switch failing), even if a path through it is shorter."""
    t = Topology("ladder")
    for s in ("s1", "s2", "s3", "s4", "s5", "s6"):
        t.add_switch(s)
    for a, b in (("s1", "s2"), ("s2", "s3"), ("s1", "s4"), ("s4", "s2"), ("s4", "s5"),
                 ("s5", "s6"), ("s6", "s3")):
        t.add_link(a, b)
    t.add_endpoint("h1", "s1")
    m = FlowModel(t, CAL)
    m.set_link("s1", "s2", False)
    assert m.detour(["s1", "s2", "s3"]) == ["s1", "s4", "s5", "s6", "s3"]
    assert m.detour(["s1", "s2"]) == ["s1", "s4", "s2"]      # the next switch is the last
    m.set_link("s5", "s6", False)
    assert m.detour(["s1", "s2", "s3"]) == ["s1", "s4", "s2", "s3"]


def _state(m: FlowModel) -> tuple:
    return (tuple((i.iid, i.offered_pps, i.forwarded_pps, i.cpu_cores, i.sojourn_s)
                  for i in sorted(m.instances.values(), key=lambda i: i.iid)),
            tuple((k, st.frac, st.latency_s) for k, st in sorted(m.streams.items())))


def test_a_rate_change_recomputes_only_what_it_touches_with_the_full_result():
    """After each load change (random rates, saturating instances and a narrow link at
    times), the incremental update leaves exactly the state a full recomputation gives."""
    rng = random.Random(4)
    t = ring(bw_mbit=0.5)
    for k in range(3):
        t.add_endpoint(f"x{k}", "s1")
        t.add_endpoint(f"y{k}", "s3")
    m = FlowModel(t, CAL)
    for k in range(3):
        m.add_instance(inst(f"a{k}", vcpu=0.05 + 0.05 * k))
        m.add_instance(inst(f"b{k}", node="n2", switch="s4", vcpu=0.1))
        spec = ForwardingGraphSpec.from_dict({"name": f"g{k}", "hops": [f"x{k}", f"a{k}",
                                                                          [f"b{k}"], f"y{k}"],
                                              "match": {"ip_proto": 17}})
        m.fabric.add_graph(spec)
        m.install(f"g{k}")
        m.add_stream(Stream(f"l{k}", f"x{k}", f"y{k}", tuple(range(20000, 20008)), 6001))
        m.add_stream(Stream(f"p{k}", f"x{k}", f"y{k}", (5001,), 5001, rate=50.0))
    m.update(0.0)
    now = 0.0
    for _ in range(200):
        now += 0.5
        key = f"l{rng.randrange(3)}"
        m.set_rate(key, rng.choice([0.0, 50.0, 200.0, 400.0, 900.0]), now)
        got = _state(m)
        m.recompute()
        assert _state(m) == got
    assert 20 < m.partial_updates < 200     # both paths ran: incremental and full


def _close(a: tuple, b: tuple) -> bool:
    return all(x[0] == y[0] and x[1:] == pytest.approx(y[1:], rel=1e-9, abs=1e-12)
               for xs, ys in zip(a, b) for x, y in zip(xs, ys)) and \
        [len(x) for x in a] == [len(y) for y in b]


@pytest.mark.parametrize("bw_mbit", [None, 0.5], ids=["unshaped", "narrow-links"])
def test_every_kind_of_event_updates_only_what_it_touches_with_the_full_result(bw_mbit):
    """After each of 300 random events (load changes, crashes, hangs, restarts, instances
    removed and added back, links cut and restored with the controller's reinstall, graphs
    removed and installed), the incremental update leaves the state a full recomputation
    gives, and most updates are incremental where no link saturates."""
    rng = random.Random(7)
    t = ring(bw_mbit=bw_mbit)
    for k in range(4):
        t.add_endpoint(f"x{k}", "s1")
        t.add_endpoint(f"y{k}", "s3")
    m = FlowModel(t, CAL)
    specs = {}
    for k in range(4):
        m.add_instance(inst(f"a{k}", vcpu=0.05 + 0.05 * k))
        m.add_instance(inst(f"b{k}", node="n2", switch="s4", vcpu=0.1))
        specs[k] = ForwardingGraphSpec.from_dict({
            "name": f"g{k}", "hops": [f"x{k}", f"a{k}", [f"b{k}"], f"y{k}"],
            "match": {"ip_proto": 17}, "protection": k % 2 == 1})
        m.fabric.add_graph(specs[k])
        m.install(f"g{k}")
        m.add_stream(Stream(f"l{k}", f"x{k}", f"y{k}", tuple(range(20000, 20008)), 6001))
        m.add_stream(Stream(f"p{k}", f"x{k}", f"y{k}", (5001,), 5001, rate=20.0))
    m.update(0.0)
    links = sorted(tuple(sorted(k)) for k in m.link_ports)
    down: set = set()
    now = 0.0
    for _ in range(300):
        now += 0.25
        m.advance(now)
        k = rng.randrange(4)
        ev = rng.choice(["rate", "rate", "crash", "hang", "remove", "link", "graph"])
        if ev == "rate":
            m.set_rate(f"l{k}", rng.choice([0.0, 50.0, 200.0, 900.0]), now)
        elif ev == "crash":
            i = m.instances.get(f"a{k}")
            if i is not None:
                i.alive = not i.alive
        elif ev == "hang":
            i = m.instances.get(f"a{k}")
            if i is not None:
                i.hung = not i.hung
        elif ev == "remove":
            if f"b{k}" in m.instances:
                m.remove_instance(f"b{k}")
            else:
                m.add_instance(inst(f"b{k}", node="n2", switch="s4", vcpu=0.1))
        elif ev == "link":
            a, b = rng.choice(links)
            up = (a, b) in down
            (down.discard if up else down.add)((a, b))
            m.set_link(a, b, up)
            m.switch_over()
            m.recompute()
            m.controller_sees(a, b, up)
            for name in sorted(m.installed):
                m.install(name)
            m.switch_over()
        elif f"g{k}" in m.installed:
            m.fabric.remove_graph(f"g{k}")
            m.uninstall(f"g{k}")
        elif f"b{k}" in m.instances:
            m.fabric.add_graph(specs[k])
            m.install(f"g{k}")
        m.recompute()
        got = _state(m)
        m.recompute_all()
        assert _close(_state(m), got), ev
    if bw_mbit is None:
        assert m.partial_updates > 250
