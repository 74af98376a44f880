"""The simulated NFVI through its two seams: operations in modelled time, faults composing
by holds, the controller's reaction delays, load counters, probe records, infrastructure
events and calibration errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mano.errors import ConflictError, NotFoundError
from mano.nfvi import Flavour, Image
from testbed import measures
from testbed.errors import TestbedError
from testbed.nfvi import open_nfvi
from testbed.nfvi.simulated.calibration import DEFAULT_PATH, load_calibration
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
CAL = load_calibration()
FLAVOUR = Flavour(0.5, 128, 1)


@pytest.fixture
def nfvi(tmp_path):
    with open_nfvi("simulated", load_topology(ROOT / "topologies/fat_tree4.yaml"),
                   tmp_path / "run") as n:
        yield n


def run_op(nfvi, fn, *args):
    """Run ``fn`` through ``call`` to completion; return (result, finish time)."""
    env = nfvi.environment()
    out = {}

    def proc():
        fut = yield from nfvi.call(env, fn, *args)
        out["fut"], out["t"] = fut, env.now

    env.run(until=env.process(proc()))
    return out["fut"].result(), out["t"]


def chain(nfvi, protection=False):
    """One forwarder on the compute node of e2 between h1 and h16; returns the graph."""
    d = nfvi.driver
    node = sorted(d.topology.computes)[1]
    run_op(nfvi, d.create_instance, "v_1", node, FLAVOUR, Image("forwarder", {}))
    g = {"name": "ns.fg", "match": {"ip_proto": 17}, "hops": ["h1", "v_1", "h16"],
         "protection": protection}
    run_op(nfvi, d.put_graph, g)
    return g


def test_operations_take_their_calibrated_time(nfvi):
    """Creating an instance ends instance_create_s later, programming a graph
    graph_program_s later; the clock is the environment's."""
    d = nfvi.driver
    t0 = nfvi.clock()
    info, t1 = run_op(nfvi, d.create_instance, "v_1", "n1", FLAVOUR, Image("forwarder"))
    assert t1 - t0 == pytest.approx(CAL.instance_create_s) and info.instance_id == "v_1"
    _view, t2 = run_op(nfvi, d.put_graph, {"name": "ns.fg", "match": {"ip_proto": 17},
                                           "hops": ["h1", "v_1", "h16"]})
    assert t2 - t1 == pytest.approx(CAL.graph_program_s)
    assert nfvi.graph_paths("ns.fg")[0][0] == nfvi.endpoint_switch("h1")


def test_driver_errors_cross_the_seam_as_mano_errors(nfvi):
    """A second instance with one id is a ConflictError, an unknown one NotFoundError."""
    d = nfvi.driver
    run_op(nfvi, d.create_instance, "v_1", "n1", FLAVOUR, Image("forwarder"))
    with pytest.raises(ConflictError):
        run_op(nfvi, d.create_instance, "v_1", "n1", FLAVOUR, Image("forwarder"))
    with pytest.raises(NotFoundError):
        d.instance_metrics("nope")


def test_faults_on_one_link_compose_by_holds(nfvi):
    """A switch fault and a link fault on one of its links: the link comes back only when
    both are undone, in either order."""
    a, b = nfvi.switch_links()[0]
    undo_sw = nfvi.fail_switch(a, hold="sw")
    undo_ln = nfvi.fail_link(a, b, hold="ln")
    key = frozenset((a, b))
    undo_sw()
    assert key in nfvi.model.down
    undo_sw()                          # an undo is safe twice
    assert key in nfvi.model.down
    undo_ln()
    assert key not in nfvi.model.down


def test_link_cut_outage_is_detection_plus_reroute(nfvi):
    """A cut link on the probe's path makes one gap of port_status_s + reroute_s in the
    synthesised records, found by testbed.measures; the new path avoids the link."""
    chain(nfvi)
    env = nfvi.environment()
    nfvi.start_probe("p", "h1", "h16", 5001, 1000)
    env.run(until=env.now + 1.0)
    path = next(p for p in nfvi.graph_paths("ns.fg") if len(p) > 1)
    nfvi.fail_link(path[0], path[1], hold="f")
    env.run(until=env.now + 1.0)
    assert all(path[:2] != p[j:j + 2] for p in nfvi.graph_paths("ns.fg")
               for j in range(len(p) - 1))
    rec = nfvi.stop_probe("p")
    recs = measures.read_records(rec.records)
    gaps = measures.probe_gaps(recs, rate=rec.rate, sent=rec.sent, start_ns=rec.start_ns)
    assert len(gaps) == 1
    want_ms = (CAL.port_status_s + CAL.reroute_s) * 1000
    assert gaps[0].outage_ms == pytest.approx(want_ms, abs=1.0)
    assert json.loads(rec.sender_stats.read_text())["sent"] == rec.sent == 2000


def test_protection_switches_over_faster_than_restoration(nfvi):
    """With protection the gap is the fast-failover switch-over only."""
    chain(nfvi, protection=True)
    env = nfvi.environment()
    nfvi.start_probe("p", "h1", "h16", 5001, 1000)
    env.run(until=env.now + 1.0)
    path = next(p for p in nfvi.graph_paths("ns.fg") if len(p) > 1)
    nfvi.fail_link(path[0], path[1], hold="f")
    env.run(until=env.now + 1.0)
    rec = nfvi.stop_probe("p")
    gaps = measures.probe_gaps(measures.read_records(rec.records), rate=rec.rate,
                               sent=rec.sent, start_ns=rec.start_ns)
    assert len(gaps) == 1
    assert gaps[0].outage_ms == pytest.approx(CAL.ff_switchover_s * 1000, abs=1.0)


def test_load_counters_per_send_interval(nfvi):
    """A load generator's counters hold every interval since it started, sent and received
    at the commanded rate, complete up to now."""
    chain(nfvi)
    env = nfvi.environment()
    env.run(until=1.0)
    nfvi.start_load("l", "h1", "h16", 6001, 8)
    nfvi.command_load("l", 400)
    env.run(until=3.0)
    c = nfvi.load_counters("l")
    assert c.interval_s == 0.5 and c.complete_until == 3.0
    assert [c.sent[i] for i in (2, 3, 4, 5)] == [200, 200, 200, 200]
    assert c.received == c.sent and c.commanded[3] == pytest.approx(400)
    assert c.latency_ms[3] > 0
    env.run(until=3.25)
    nfvi.command_load("l", 0)
    env.run(until=4.0)
    c = nfvi.load_counters("l")
    assert c.sent[6] == 100 and c.sent[7] == 0
    assert c.commanded[6] == pytest.approx(200)     # time-weighted: 400 then 0, half each
    final = nfvi.stop_load("l")
    assert sum(final.sent.values()) == 900


def test_crash_is_reported_after_the_watch_interval_and_node_failure_at_once(nfvi):
    """A crashed instance is reported instance_down instance_down_detect_s later; a failed
    compute node at once, and it is no longer up."""
    chain(nfvi)
    env = nfvi.environment()
    events = []
    nfvi.driver.subscribe(events.append)
    t = nfvi.clock()
    nfvi.crash_instance("v_1")
    env.run(until=t + 1.0)
    assert [(e.kind, round(e.time - t, 6)) for e in events] == \
        [("instance_down", CAL.instance_down_detect_s)]
    assert not nfvi.driver.list_instances()[0].alive
    node = nfvi.driver.list_instances()[0].compute_node
    undo = nfvi.fail_compute_node(node)
    assert events[-1].kind == "compute_down"
    assert not {c.name: c.up for c in nfvi.driver.compute_nodes()}[node]
    undo()
    assert events[-1].kind == "compute_up"


def test_find_instance_answers_as_the_listing_does(nfvi):
    """find_instance gives the item list_instances has for the id (alive included, also
    right after a crash, a restart and a removal), and None for an id it does not list."""
    d = nfvi.driver

    def listed(iid):
        return next((i for i in d.list_instances() if i.instance_id == iid), None)
    chain(nfvi)
    run_op(nfvi, d.create_instance, "v_2", "n1", FLAVOUR, Image("forwarder"))
    assert d.find_instance("v_1") == listed("v_1") and d.find_instance("v_1").alive
    nfvi.crash_instance("v_1")            # changed since the last listing
    assert d.find_instance("v_1") == listed("v_1") and not d.find_instance("v_1").alive
    run_op(nfvi, d.restart_instance, "v_1")
    assert d.find_instance("v_1").alive and d.find_instance("v_1") == listed("v_1")
    run_op(nfvi, d.delete_instance, "v_2")
    assert d.find_instance("v_2") is None and listed("v_2") is None
    assert d.find_instance("nope") is None


def test_restart_brings_a_crashed_instance_back_after_its_time(nfvi):
    """A restart takes instance_restart_s; the instance is alive and forwards again."""
    chain(nfvi)
    nfvi.crash_instance("v_1")
    t0 = nfvi.clock()
    _info, t1 = run_op(nfvi, nfvi.driver.restart_instance, "v_1")
    assert t1 - t0 == pytest.approx(CAL.instance_restart_s)
    assert nfvi.driver.list_instances()[0].alive
    assert nfvi.driver.probe("h1", "h16", port=5001, rate=100, duration=0.5)["loss_pct"] == 0


def test_calibration_errors_name_the_file_and_field(tmp_path):
    """A missing value, a value out of range or an unknown name is refused with its path."""
    doc = json.loads(DEFAULT_PATH.read_text())
    bad = tmp_path / "cal.json"
    missing = json.loads(json.dumps(doc))
    del missing["values"]["reroute_s"]
    bad.write_text(json.dumps(missing))
    with pytest.raises(TestbedError, match=r"values\.reroute_s: missing"):
        load_calibration(bad)
    neg = json.loads(json.dumps(doc))
    neg["values"]["port_status_s"]["value"] = -1
    bad.write_text(json.dumps(neg))
    with pytest.raises(TestbedError, match=r"values\.port_status_s\.value is -1"):
        load_calibration(bad)
    extra = json.loads(json.dumps(doc))
    extra["values"]["warp_s"] = {"value": 1}
    bad.write_text(json.dumps(extra))
    with pytest.raises(TestbedError, match=r"values\.warp_s: unknown"):
        load_calibration(bad)
    with pytest.raises(TestbedError, match="cannot read it"):
        load_calibration(tmp_path / "none.json")


def test_default_calibration_names_a_source_for_every_value():
    """The shipped calibration file gives a date, a command and a source for each value."""
    doc = json.loads(DEFAULT_PATH.read_text())
    assert doc["date"] and doc["command"]
    assert all(v.get("source") for v in doc["values"].values())
