"""Results of a run: writing, loading, summarizing, plotting and aggregating a sweep (pure logic)."""
from __future__ import annotations

import csv
import json
import math

import pytest

from mano.monitoring import TimeSeriesStore, labels_of
from testbed.experiment import plots, sweep
from testbed.experiment.results import RunWriter, check, load_run, summarize, write_summary

T0 = 1000.0   # the monotonic clock's value when the synthetic run started


def _loss(t: int) -> float:
    if t in (10, 11, 12):
        return 100.0          # the crashed VNF forwards nothing
    if t in (21, 22, 23):
        return 60.0           # the load step saturates the chain until the scale-out
    if t == 24:
        return 3.0            # the new instance carries traffic
    if t in (31, 32, 33):
        return 30.0           # the compute node failure
    return 0.0


def _commanded(t: float) -> float:
    return 1500.0 if 20 <= t < 45 else 300.0


def write_synthetic(run_dir, *, overloaded: bool = True, heal_fwd: float = 12.5):
    """A 60 s run: a VNF crash at 10 s, a load step at 20 s with a scale-out at 23 s, a
    compute node failure at 30 s (two instances healed), a step down at 45 s and a scale-in
    at 50 s."""
    w = RunWriter(run_dir)
    w.config({"scenario": "synthetic", "seed": 7, "duration": 60, "params": {"mttr": 1},
              "topology": "topologies/fat_tree4.yaml", "services": [["chain3", "web"]],
              "sla": {"web": {"max_loss_pct": 2.0, "max_latency_ms": 10.0}},
              "versions": {"python": "3.11"}, "git": "abc"})
    ev = w.event
    ev(0.0, "start", duration=60, seed=7)
    ev(0.0, "load", ns="web", graph="web.fg1", rate=300.0, planned_t=0.0)
    ev(10.0, "fault", fault="vnf_crash", target="web/fwd", instance="web-fwd-1",
       id="vnf_crash@10.0", ns=["web"], duration=None, planned_t=10.0)
    ev(10.8, "detect", target="web-fwd-1", by="liveness", reason="not alive")
    ev(10.9, "heal_start", target="web-fwd-1", mode="restart")
    ev(heal_fwd, "heal_done", target="web-fwd-1", instances=["web-fwd-1"], mode="restart",
       decide_s=0.1, execute_s=heal_fwd - 10.9)
    ev(20.0, "load", ns="web", graph="web.fg1", rate=400.0, planned_t=20.0)  # 300->400->1500
    ev(20.5, "load", ns="web", graph="web.fg1", rate=1500.0, planned_t=20.5)
    ev(23.0, "scale_out", ns="web", vnf="fwd", instances=2, reason="cpu 0.9", by="thr",
       added=["web-fwd-2"], removed=[], observed_t=21.5, decided_t=22.5, start_t=22.5,
       completed_t=23.0, decide_s=1.0, execute_s=0.5)
    ev(30.0, "fault", fault="compute_down", target="cn2", id="compute_down@30.0", ns=["web"],
       duration=10, planned_t=29.98)
    ev(31.0, "detect", target="web-fw-1", by="liveness", reason="not alive")
    ev(31.5, "detect", target="web-fwd2-1", by="liveness", reason="not alive")
    ev(33.0, "heal_done", target="web-fw-1", instances=["web-fw-2"], mode="recreate")
    ev(34.0, "heal_done", target="web-fwd2-1", instances=["web-fwd2-2"], mode="recreate")
    ev(40.0, "fault_end", fault="compute_down", target="cn2", id="compute_down@30.0",
       planned_t=40.0)
    ev(45.0, "load", ns="web", graph="web.fg1", rate=300.0, planned_t=45.0)
    ev(50.0, "scale_in", ns="web", vnf="fwd", instances=1, reason="cpu 0.1", by="thr",
       added=[], removed=["web-fwd-2"], observed_t=48.0, decided_t=49.5, start_t=49.5,
       completed_t=50.0)
    ev(60.0, "probe", ns="web", graph="web.fg1", rate=1000.0, sent=60000, received=58240,
       lost=1760, records="probes/web.fg1.bin")
    ev(60.0, "outage", ns="web", graph="web.fg1", outage_ms=2400.0, lost=1200,
       start_t=10.05, end_t=12.45, leading=False, trailing=False)
    ev(60.0, "outage", ns="web", graph="web.fg1", outage_ms=800.0, lost=400,
       start_t=30.02, end_t=30.82, leading=False, trailing=False)
    ev(60.0, "outage", ns="web", graph="web.fg1", outage_ms=300.0, lost=150,
       start_t=33.9, end_t=34.2, leading=False, trailing=False)
    ev(60.0, "outage", ns="web", graph="web.fg1", outage_ms=9.0, lost=10,
       start_t=1.0, end_t=1.01, leading=False, trailing=False)     # before any fault
    ev(60.0, "end", ns_states={"web": "INSTANTIATED"}, packets_flowing={"web": True},
       healthy=True)
    lb = {"ns": "web", "graph": "web.fg1"}
    for t in range(1, 60):
        cmd = _commanded(t)
        w.metric(t, "commanded_pps", lb, cmd)
        w.metric(t, "sent_pps", lb, cmd if t != 21 else 0.5 * cmd)   # one late interval
        w.metric(t, "received_pps", lb, cmd * (1 - _loss(t) / 100))
        w.metric(t, "loss_pct", lb, _loss(t))
        w.metric(t + 0.01, "latency_ms", lb, 50.0 if t == 25 else 2.0 + 0.1 * _loss(t)
                 if _loss(t) < 30 else 8.0)
        idle = {22: 5.0, 23: 8.0}.get(t, 55.0) if overloaded else 55.0
        w.metric(t, "cpu_idle_pct", {"cpu": 0}, 60.0)
        w.metric(t, "cpu_idle_pct", {"cpu": 1}, idle)
        w.metric(t, "process_cpu_pct", {"process": "ovs-vswitchd"}, 40.0 + t % 3)
        w.metric(t, "engine_drift_ms", {"process": "policy"}, 3.0 if t != 30 else 12.0)
        for vnf in ("fw", "fwd", "fwd2"):
            n = 2 if vnf == "fwd" and 23 <= t < 50 else 1
            w.metric(t, "instances", {"ns": "web", "vnf": vnf}, n)
        w.metric(t, "packets_rate", {"instance": "web-fwd-1", "ns": "web", "vnf": "fwd"},
                 1000.0 if 23 <= t < 45 else 300.0)
        if 23 <= t < 50:     # the new instance takes its share from 25 s
            w.metric(t + 0.2, "packets_rate", {"instance": "web-fwd-2", "ns": "web",
                                                "vnf": "fwd"}, 0.0 if t < 25 else 500.0)
    store = TimeSeriesStore()
    for i in range(1, 21):
        store.record("cpu_util", labels_of(instance="web-fwd-1", ns="web", vnf="fwd"),
                     T0 + i, 0.1 * i)
    for t in range(1, 60):
        store.record("active_servers", (), T0 + t, 4 if 23 <= t < 50 else 3)
    assert w.metrics_from_store(store, T0) == 20 + 59
    w.close()
    return run_dir


@pytest.fixture
def run(tmp_path):
    return load_run(write_synthetic(tmp_path / "synthetic" / "run1"))


def test_load_run_reads_config_events_and_metrics(tmp_path, run):
    """The writer's files load back: config, events in time order, tidy metrics with times
    from the store made relative to the run's start; a truncated last line is skipped."""
    assert run.config["seed"] == 7
    assert [e["kind"] for e in run.events[:3]] == ["start", "load", "fault"]
    assert len(run.metrics["loss_pct"]) == 59
    cpu = run.metrics["cpu_util"]
    assert cpu[0].t == pytest.approx(1.0) and cpu[0].labels["instance"] == "web-fwd-1"
    with open(run.dir / "events.jsonl", "a") as f:
        f.write('{"t": 61.0, "kind": "no')
    assert len(load_run(run.dir).events) == len(run.events)
    with open(run.dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0].keys() == {"time", "metric", "labels", "value"}


def test_summary_per_fault(run):
    """Detect and heal times per fault, outage and packets lost from the probes; a compute
    node failure is healed when every instance detected on it is healed."""
    s = summarize(run)
    crash, node = s["faults"]
    assert crash["fault"] == "vnf_crash" and crash["detect_s"] == pytest.approx(0.8)
    assert crash["heal_s"] == pytest.approx(2.5) and crash["recovery_s"] == pytest.approx(2.5)
    assert crash["outage_ms"] == 2400 and crash["lost"] == 1200
    assert crash["restored_s"] == pytest.approx(2.45)
    assert node["detect_s"] == pytest.approx(1.0) and node["heal_s"] == pytest.approx(4.0)
    assert node["healed_targets"] == "2/2" and node["end_t"] == 40.0
    assert node["outage_ms"] == 800 and node["outage_total_ms"] == 1100
    assert node["lost"] == 550 and node["gaps"] == 2
    assert crash["recovered"] and node["recovered"]
    assert crash["decide_s"] == pytest.approx(0.1)
    assert node["planned_t"] == 29.98 and node["ns"] == ["web"]
    assert s["healthy_at_end"] is True
    assert [o["start_t"] for o in s["unattributed_outages"]] == [1.0]


def test_summary_scaling_sla_availability_cpu_servers_health(run):
    """Scaling reaction from the load step (a two-event rise starts at its first change),
    SLA violation seconds, availability, CPU per instance, servers and emulation health."""
    s = summarize(run)
    sc = s["scaling"]
    assert sc["scale_outs"] == 1 and sc["scale_ins"] == 1
    up, down = sc["steps"]
    assert (up["t"], up["from"], up["to"], up["vnf"]) == (20.0, 300.0, 1500.0, "fwd")
    assert up["reaction_s"] == pytest.approx(3.0) and up["served_s"] == pytest.approx(5.2)
    assert (up["detect_s"], up["decide_s"], up["execute_s"]) == (1.5, 1.0, 0.5)
    assert down["direction"] == "down" and down["reaction_s"] == pytest.approx(5.0)
    assert sc["reaction_s_median"] == pytest.approx(3.0)
    # loss > 2 % at 10 samples (10-12, 21-24, 31-33), latency > 10 ms at one more (t=25)
    assert s["sla"]["web"]["violation_s"] == pytest.approx(11.0)
    assert s["availability"]["web"]["availability"] == pytest.approx(53 / 59, abs=1e-4)
    assert s["availability"]["web"]["probe_availability"] == pytest.approx(
        1 - 3.509 / 60, abs=1e-4)
    cpu = s["cpu"]["web-fwd-1"]
    assert cpu["mean"] == pytest.approx(1.05) and cpu["p95"] == pytest.approx(1.905)
    assert s["active_servers"]["max"] == 4 and s["active_servers"]["mean"] == pytest.approx(
        (27 * 4 + 32 * 3) / 59, abs=1e-3)
    emu = s["emulation"]
    assert emu["overloaded"] is True and emu["min_idle_pct"] == 5.0
    assert emu["min_idle_pct_per_cpu"] == [60.0, 5.0]
    assert emu["saturated"] == [{"cpu": 1, "from_t": 21.0, "to_t": 23.0}]
    assert emu["senders_behind"] == [] and emu["sender_min_ratio"] == pytest.approx(0.5)
    assert emu["busiest"][0]["process"] == "ovs-vswitchd"
    assert s["engine"]["max_drift_ms"] == pytest.approx(20.0) and not s["engine"]["flagged"]
    sc_ = s["scalars"]
    assert sc_["heal_s_median"] == pytest.approx(3.25) and sc_["lost_total"] == 1760
    assert sc_["healthy_at_end"] == 1
    json.dumps(s)   # plain JSON


def test_default_sla_is_one_percent_loss(tmp_path):
    """With no SLA in the config, a sample violates when loss exceeds 1 %."""
    d = tmp_path / "r"
    with RunWriter(d) as w:
        w.config({"scenario": "x", "seed": 1, "duration": 4})
        for t, loss in [(1, 0.5), (2, 1.5), (3, 20.0), (4, 0.0)]:
            w.metric(t, "loss_pct", {"ns": "a"}, loss)
    s = summarize(load_run(d))
    assert s["sla"]["a"]["violation_s"] == pytest.approx(2.0)
    assert s["sla"]["a"]["max_loss_pct"] == 1.0
    assert s["faults"] == [] and s["emulation"]["overloaded"] is False
    assert s["healthy_at_end"] is None


def test_write_summary_files_and_overload_warning(tmp_path, run):
    """summary.json and summary.md are written; the Markdown shouts when the host was
    overloaded and stays quiet otherwise."""
    j, m = write_summary(run.dir, summarize(run))
    assert json.loads(j.read_text())["seed"] == 7
    md = m.read_text()
    assert "WARNING" in md and "OVERLOADED" in md
    assert "vnf_crash" in md and "compute_down" in md and "## Scaling" in md
    quiet = load_run(write_synthetic(tmp_path / "quiet", overloaded=False))
    _, m2 = write_summary(quiet.dir, summarize(quiet))
    assert "WARNING" not in m2.read_text()


def test_plots_are_written(tmp_path, run):
    """The timeline, the recovery CDF and the comparison plots are non-empty PNGs."""
    other = load_run(write_synthetic(tmp_path / "other", heal_fwd=15.0))
    for path in (plots.plot_timeline(run, tmp_path / "timeline.png"),
                 plots.plot_recovery_cdf([run, other], tmp_path / "cdf.png"),
                 plots.plot_compare([run, other], tmp_path / "compare.png")):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


def test_plots_of_an_empty_run_do_not_fail(tmp_path):
    """A run that recorded nothing still gets (empty) plots."""
    d = tmp_path / "empty"
    RunWriter(d).close()
    r = load_run(d)
    plots.plot_timeline(r, tmp_path / "t.png")
    plots.plot_recovery_cdf([r], tmp_path / "c.png")
    plots.plot_compare([r], tmp_path / "p.png")
    assert (tmp_path / "t.png").stat().st_size > 0


def test_aggregate_confidence_intervals(tmp_path):
    """Runs group by parameter; the 95 % CI uses Student t (df=2: 4.303)."""
    sums = [{"seed": i, "params": {"mttr": 1, "policy": "a"}, "scalars": {"heal_s_median": v}}
            for i, v in enumerate([2.0, 4.0, 6.0])]
    sums.append({"seed": 9, "params": {"mttr": 5, "policy": "a"},
                 "scalars": {"heal_s_median": 3.0}})
    sums.append({"seed": 10, "params": {"mttr": 5, "policy": "a"},
                 "scalars": {"heal_s_median": None}})
    rows = sweep.aggregate(sums, ["mttr"])
    assert [r["mttr"] for r in rows] == [1, 5]
    assert rows[0]["runs"] == 3 and rows[0]["heal_s_median_mean"] == pytest.approx(4.0)
    assert rows[0]["heal_s_median_ci95"] == pytest.approx(4.303 * 2 / math.sqrt(3), rel=1e-3)
    assert rows[1]["runs"] == 2 and rows[1]["heal_s_median_n"] == 1
    assert rows[1]["heal_s_median_ci95"] is None
    assert sweep.t_critical(40) == pytest.approx(1.96 if sweep._stats is None else 2.021,
                                                 abs=1e-3)
    c, m = sweep.write_table(rows, tmp_path / "agg.csv", tmp_path / "agg.md")
    with open(c) as f:
        assert next(csv.DictReader(f))["heal_s_median_mean"] == "4"
    assert "4 ± 5" in m.read_text()


def test_aggregate_real_summaries(tmp_path):
    """Summaries from summarize() aggregate on their scalars."""
    runs = [load_run(write_synthetic(tmp_path / f"r{i}", heal_fwd=12.5 + i)) for i in range(3)]
    rows = sweep.aggregate([summarize(r) for r in runs], ["mttr"])
    assert len(rows) == 1 and rows[0]["runs"] == 3
    assert rows[0]["faults_mean"] == 2 and rows[0]["faults_ci95"] == 0


def _two_ns_run(d, *, trailing: bool):
    with RunWriter(d) as w:
        w.config({"scenario": "x", "seed": 1, "duration": 20})
        w.event(5.0, "fault", fault="link_down", target="a1-c1", id="link_down@5", ns=["web"],
                duration=None, planned_t=5.0)
        w.event(6.0, "fault", fault="vnf_crash", target="db/fw", id="vnf_crash@6", ns=["db"],
                instance="fw_2", duration=None, planned_t=6.0)
        w.event(20.0, "outage", ns="web", graph="web.fg1", outage_ms=15.0, lost=15,
                start_t=5.01, end_t=5.026, leading=False, trailing=False)
        w.event(20.0, "outage", ns="web", graph="web.fg1", outage_ms=30.0, lost=30,
                start_t=6.5, end_t=6.53, leading=False, trailing=False)
        w.event(20.0, "outage", ns="db", graph="db.fg1", outage_ms=14000.0 if trailing
                else 800.0, lost=14000 if trailing else 800, start_t=6.0,
                end_t=20.0 if trailing else 6.8, leading=False, trailing=trailing)
    return summarize(load_run(d))


def test_gaps_go_to_the_latest_fault_of_their_own_ns(tmp_path):
    """A gap belongs to the latest earlier fault that affects its NS, not merely the latest
    fault: web's gap at 6.5 s is the link cut's although the crash (of db) came later."""
    s = _two_ns_run(tmp_path / "r", trailing=False)
    cut, crash = s["faults"]
    assert cut["gaps"] == 2 and cut["outage_ms"] == 30.0 and cut["lost"] == 45
    assert crash["gaps"] == 1 and crash["outages_by_ns"] == {"db": 800.0}
    assert cut["recovered"] and crash["recovered"]
    assert [c["ok"] for c in check(s, {"max_outage_ms": 1000})] == [True]


def test_a_fault_that_never_recovered_fails_every_outage_check(tmp_path):
    """A gap lasting to the end makes its fault unrecovered; max_outage_ms then fails even
    with a bound above the outage, and so does all_recovered; unknown checks fail too."""
    s = _two_ns_run(tmp_path / "r", trailing=True)
    crash = s["faults"][1]
    assert crash["recovered"] is False and crash["outage_ms"] == 14000.0
    res = {c["check"]: c for c in check(s, {"max_outage_ms": 10**9, "all_recovered": True,
                                            "no_such_check": 1})}
    assert not res["max_outage_ms"]["ok"] and "vnf_crash@6" in res["max_outage_ms"]["detail"]
    assert not res["all_recovered"]["ok"] and not res["no_such_check"]["ok"]
    assert s["scalars"]["unrecovered_faults"] == 1


def test_drift_beyond_the_limit_flags_the_run(tmp_path):
    """An event executed 80 ms after its planned time flags the run's engine section."""
    d = tmp_path / "r"
    with RunWriter(d) as w:
        w.config({"scenario": "x", "seed": 1, "duration": 5})
        w.event(2.08, "load", ns="web", graph="web.fg1", rate=10.0, planned_t=2.0)
    eng = summarize(load_run(d))["engine"]
    assert eng["max_drift_ms"] == pytest.approx(80.0) and eng["flagged"]


@pytest.mark.parametrize("written", ["as_logged", "detect_first"])
def test_a_heal_goes_to_the_detection_it_answers(tmp_path, written):
    """An instance crashes, its restart runs, and it crashes again before the restart
    ends (the 1,800 s soak: fw_4 at 917.5 s and 919.6 s). The first heal (observed_t =
    the first detection) belongs to the first fault, the second heal to the second, in
    whatever order the events were written: both faults recovered."""
    with RunWriter(tmp_path / "r") as w:
        w.config({"scenario": "x", "seed": 1, "duration": 20})
        w.event(1.0, "fault", fault="vnf_crash", target="web/fw", id="vnf_crash@1",
                ns=["web"], instance="fw_4", duration=None, planned_t=1.0)
        w.event(1.01, "detect", target="fw_4", ns="web", vnf="fw", by="liveness")
        w.event(1.02, "heal_start", target="fw_4", mode="restart", ns="web")
        w.event(3.0, "fault", fault="vnf_crash", target="web/fw", id="vnf_crash@3",
                ns=["web"], instance="fw_4", duration=None, planned_t=3.0)
        first_heal = dict(target="fw_4", mode="restart", ns="web", observed_t=1.01,
                          decide_s=0.01, execute_s=2.2)
        second_detect = dict(target="fw_4", ns="web", vnf="fw", by="liveness")
        if written == "as_logged":      # the healer logs its end before the monitor logs
            w.event(3.22, "heal_done", **first_heal)
            w.event(3.05, "detect", **second_detect)
        else:
            w.event(3.05, "detect", **second_detect)
            w.event(3.22, "heal_done", **first_heal)
        w.event(5.0, "heal_done", target="fw_4", mode="restart", ns="web", observed_t=3.05,
                decide_s=0.01, execute_s=1.9)
    s = summarize(load_run(tmp_path / "r"))
    a, b = s["faults"]
    assert a["recovered"] and b["recovered"], s["faults"]
    assert a["heal_s"] == pytest.approx(2.22) and b["heal_s"] == pytest.approx(2.0)
    assert s["scalars"]["unrecovered_faults"] == 0
