"""Tests of the data-path and host-health measures (``testbed.measures``).

Pure tests build synthetic probe records on the probe's schedule (seq i sent at
start + i*T, received a fixed latency later). The loopback tests run the real probe and
load-generator programs as subprocesses on 127.0.0.1 (no root needed) and check that their
own numbers and the measures computed from their raw files agree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed import measures as m
from testbed.hosthealth import HostHealth

REPO = Path(__file__).resolve().parents[2]
START = 10**12  # ns
LAT = 100_000  # 0.1 ms one-way latency


def stream(rate: float, seqs, *, start: int = START, lat: int = LAT):
    """Records for ``seqs`` sent on schedule at ``rate`` pps, each received ``lat`` ns later."""
    t = 1e9 / rate
    return [(s, start + round(s * t) + lat, start + round(s * t)) for s in seqs]


def report(records, rate, sent, k=m.DEFAULT_K):
    return m.probe_report(records, rate=rate, sent=sent, start_ns=START, k=k)


# --------------------------------------------------------------------------- gaps and loss


def test_clean_stream_has_no_gap_and_no_loss():
    """A complete in-order stream has no gap (edges included), no loss and recovers."""
    r = report(stream(2000, range(2000)), 2000, 2000)
    assert r["gaps"] == [] and r["lost"] == 0 and r["outage_ms"] == 0.0
    assert r["recovered"] is True
    assert r["max_gap_ms"] == pytest.approx(0.5)
    assert r["latency_ms"]["median"] == pytest.approx(0.1)
    assert r["base_latency_ms"] == pytest.approx(0.1)


def test_mid_stream_gap_outage_is_lost_times_interval():
    """50 packets lost mid-stream at 1,000 pps give one gap of 50 lost and a 50 ms outage."""
    seqs = [s for s in range(1000) if not 100 <= s < 150]
    r = report(stream(1000, seqs), 1000, 1000)
    assert len(r["gaps"]) == 1
    g = r["gaps"][0]
    assert (g["after_seq"], g["before_seq"], g["lost"]) == (99, 150, 50)
    assert g["outage_ms"] == pytest.approx(50.0)
    assert not g["leading"] and not g["trailing"] and g["recovered"]
    assert r["outage_ms"] == pytest.approx(50.0) and r["lost"] == 50
    assert r["max_gap_ms"] == pytest.approx(51.0)


def test_gap_at_start_is_leading():
    """Losing the first 30 packets gives a leading gap (no after_seq) of 30 lost, 30*T outage."""
    r = report(stream(2000, range(30, 2000)), 2000, 2000)
    (g,) = r["gaps"]
    assert g["leading"] and not g["trailing"] and g["after_seq"] is None
    assert g["before_seq"] == 30 and g["lost"] == 30
    assert g["outage_ms"] == pytest.approx(15.0)
    assert r["lost"] == 30 and r["recovered"] is True


def test_gap_at_end_is_trailing_and_not_recovered():
    """A stream that stops 400 packets before the sender does ends in a trailing gap."""
    r = report(stream(2000, range(1600)), 2000, 2000)
    (g,) = r["gaps"]
    assert g["trailing"] and not g["leading"] and g["before_seq"] is None
    assert g["after_seq"] == 1599 and g["lost"] == 400
    assert g["outage_ms"] == pytest.approx(200.0)
    assert r["recovered"] is False and r["lost"] == 400


def test_nothing_received_is_one_gap_over_the_whole_run():
    """No packet at all: one leading and trailing gap, every packet lost, outage sent*T."""
    r = report([], 1000, 500)
    (g,) = r["gaps"]
    assert g["leading"] and g["trailing"] and g["lost"] == 500
    assert g["outage_ms"] == pytest.approx(500.0)
    assert r["lost"] == 500 and r["recovered"] is False and r["received"] == 0
    assert r["latency_ms"]["median"] is None


def test_many_small_gaps_at_2khz_are_all_found():
    """Forty 3 ms gaps (6 packets lost each) at 2,000 pps are all reported with k = 2."""
    holes = [100 + 100 * j for j in range(40)]
    seqs = [s for s in range(5000) if not any(h <= s < h + 6 for h in holes)]
    r = report(stream(2000, seqs), 2000, 5000)
    assert len(r["gaps"]) == 40
    assert [g["after_seq"] for g in r["gaps"]] == [h - 1 for h in holes]
    assert all(g["lost"] == 6 and g["outage_ms"] == pytest.approx(3.0) for g in r["gaps"])
    assert sum(g["lost"] for g in r["gaps"]) == r["lost"] == m.lost_packets(stream(2000, seqs),
                                                                              5000)


def test_a_pause_without_loss_is_a_delay_spike_not_an_outage():
    """Packets from seq 100 on sent 5 ms late: nothing is lost, so there is no gap in the
    sequence (no outage) but one delay spike of 5 ms, whose sender_late_ms says the sender
    caused it; two packets lost mid-stream are a gap with sender_late_ms 0."""
    recs = stream(2000, range(400))
    stall = 5_000_000
    recs = [(s, r + stall, t + stall) if s >= 100 else (s, r, t) for s, r, t in recs]
    rep = report(recs, 2000, 400)
    assert rep["gaps"] == [] and rep["outage_ms"] == 0.0 and rep["recovered"]
    assert rep["delay_spikes"] == 1 and rep["max_delay_spike_ms"] == pytest.approx(5.0)
    (spike,) = m.delay_spikes(recs, rate=2000, sent=400, start_ns=START)
    assert spike.lost == 0 and spike.sender_late_ms == pytest.approx(5.0)
    (g,) = report(stream(2000, [s for s in range(400) if s != 100 and s != 101]), 2000,
                  400)["gaps"]
    assert g["sender_late_ms"] == 0.0 and g["lost"] == 2


def test_gap_exactly_at_threshold_is_not_a_gap():
    """One lost packet at k = 2 leaves arrivals exactly 2T apart: not a gap; 2 lost is one."""
    one = [s for s in range(100) if s != 50]
    assert report(stream(1000, one), 1000, 100)["gaps"] == []
    assert report(stream(1000, one), 1000, 100)["lost"] == 1
    two = [s for s in range(100) if s not in (50, 51)]
    (g,) = report(stream(1000, two), 1000, 100)["gaps"]
    assert g["lost"] == 2 and g["outage_ms"] == pytest.approx(2.0)
    assert report(stream(1000, one), 1000, 100, k=1.5)["gaps"][0]["lost"] == 1


def test_reordering_creates_no_gap_and_no_loss():
    """Swapped neighbours and a packet overtaken by ten others are reordered, not lost."""
    recs = stream(2000, range(1000))
    recv = [r[1] for r in recs]  # arrival times stay in order; the packets change places
    order = list(range(1000))
    order[10], order[11] = 11, 10
    order.remove(500)
    order.insert(510, 500)
    recs = [(recs[i][0], t, recs[i][2]) for i, t in zip(order, recv)]
    r = report(recs, 2000, 1000)
    assert r["gaps"] == [] and r["lost"] == 0
    assert r["reordered"] == 2 and r["duplicates"] == 0 and r["unique"] == 1000


def test_duplicates_count_once():
    """A packet received three times counts once: no extra unique packet, no hidden loss."""
    recs = stream(1000, range(100))
    recs[20:20] = [recs[20], recs[20]]
    recs = [r for r in recs if r[0] != 60]  # and one real loss
    r = report(recs, 1000, 100)
    assert r["received"] == 101 and r["unique"] == 99 and r["duplicates"] == 2
    assert r["lost"] == 1 == m.lost_packets(recs, 100)


def test_gap_lost_counts_sum_to_lost_packets():
    """Leading, middle and trailing losses: the gaps' lost counts add up to lost_packets."""
    seqs = [s for s in range(10, 900) if not 300 <= s < 340 and not 600 <= s < 605]
    recs = stream(2000, seqs)
    gaps = m.probe_gaps(recs, rate=2000, sent=1000, start_ns=START)
    assert [(g.leading, g.trailing) for g in gaps] == [(True, False), (False, False),
                                                      (False, False), (False, True)]
    assert [g.lost for g in gaps] == [10, 40, 5, 100]
    assert sum(g.lost for g in gaps) == m.lost_packets(recs, 1000) == 155
    assert gaps[-1].recovered is False and gaps[0].recovered is True


def test_gap_lost_ignores_seqs_received_out_of_order_elsewhere():
    """A seq inside a gap's range that arrived late elsewhere is not counted lost in the gap."""
    recs = stream(1000, [s for s in range(200) if not 100 <= s < 120])
    late = stream(1000, [110])[0]
    recs.append((late[0], recs[-1][1] + 10, late[2]))
    (g,) = report(recs, 1000, 200)["gaps"][:1]
    assert (g["after_seq"], g["before_seq"], g["lost"]) == (99, 120, 19)


def test_bad_schedule_is_refused():
    """A rate <= 0, a negative sent count or k < 1 raise ValueError naming the parameter."""
    with pytest.raises(ValueError, match="rate"):
        m.probe_gaps([], rate=0, sent=1, start_ns=0)
    with pytest.raises(ValueError, match="sent"):
        m.probe_gaps([], rate=10, sent=-1, start_ns=0)
    with pytest.raises(ValueError, match="k"):
        m.probe_gaps([], rate=10, sent=1, start_ns=0, k=0.5)
    with pytest.raises(ValueError, match="start_ns"):
        m.probe_report_with_sender([], {"rate": 10, "sent": 3})


def test_records_file_round_trip(tmp_path):
    """Records written as a flat u64 array read back identical; a torn file is refused."""
    from array import array

    recs = stream(1000, range(5))
    cols = [array("Q", [r[i] for r in recs]) for i in range(3)]
    path = tmp_path / "r.bin"
    m.write_records(str(path), *cols)
    assert path.stat().st_size == 5 * 24
    back = m.read_records(path)
    assert list(back) == recs and back[-1] == recs[-1] and len(back) == 5
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="24-byte"):
        m.read_records(path)


# --------------------------------------------------------------------------- load loss


def test_step_up_of_the_load_shows_no_loss():
    """Sender and receiver counting by send-time interval: a 10x step up shows 0 % loss."""
    sent = {"100": 50, "101": 50, "102": 275, "103": 500}  # step up during interval 102
    assert m.interval_loss(sent, dict(sent)) == {100: 0.0, 101: 0.0, 102: 0.0, 103: 0.0}


def test_starved_sender_shows_no_loss_but_falls_behind():
    """A sender that manages 300 of 1000 pps has 0 % loss and is flagged as behind."""
    stats = {"interval": 0.5, "sent_by_interval": {str(i): 150 for i in range(10)},
             "commanded_by_interval": {str(i): 1000.0 for i in range(10)}, "partial_index": 9}
    recv = {"interval": 0.5, "received_by_interval": {str(i): 150 for i in range(10)}}
    assert set(m.load_loss(stats, recv).values()) == {0.0}
    behind = m.sender_behind(m.sender_rate_samples(stats))
    assert behind["behind"] is True and behind["min_ratio"] == pytest.approx(0.3)
    assert behind["intervals"] == [{"from_t": 0.5, "to_t": 4.5}]


def test_interval_loss_counts_real_loss_and_clamps():
    """Missing packets give their percentage; more received than sent clamps to 0."""
    loss = m.interval_loss({1: 200, 2: 200, 3: 0}, {"1": 150, "2": 201})
    assert loss == {1: 25.0, 2: 0.0}


def test_load_loss_refuses_mismatched_intervals():
    """Sender and receiver with different --interval values are refused, not compared."""
    with pytest.raises(ValueError, match="interval"):
        m.load_loss({"interval": 0.5, "sent_by_interval": {}},
                    {"interval": 1.0, "received_by_interval": {}})


def test_sender_behind_short_dip_is_not_flagged():
    """Falling behind for one 0.5 s interval (<= 1 s) is listed but does not flag the run."""
    samples = [(0.5 * i, 1000.0, 400.0 if i == 4 else 1000.0) for i in range(1, 10)]
    samples.append((5.0, 0.0, 0.0))  # rate 0 is never behind
    r = m.sender_behind(samples)
    assert r["behind"] is False and r["intervals"] == [{"from_t": 1.5, "to_t": 2.0}]
    assert r["min_ratio"] == pytest.approx(0.4)


# --------------------------------------------------------------------------- host health


def test_saturation_of_one_cpu_in_sixteen():
    """One of 16 CPUs at 2 % idle for 1.5 s is overloaded though the average idle is high."""
    samples = []
    for i in range(10):
        idle = [90.0] * 16
        if 2 <= i <= 5:
            idle[7] = 2.0
        samples.append((0.5 * i, idle))
    r = m.saturation(samples)
    assert r["overloaded"] is True
    assert r["saturated"] == [{"cpu": 7, "from_t": 0.5, "to_t": 2.5}]
    assert r["min_idle_pct"] == 2.0 and r["min_idle_pct_per_cpu"][7] == 2.0
    assert r["min_idle_pct_per_cpu"][0] == 90.0


def test_saturation_for_one_second_is_not_overload():
    """A CPU saturated for exactly 1 s (two 0.5 s samples) is reported, not overloaded."""
    samples = [(0.5 * i, [50.0, 5.0 if i in (3, 4) else 50.0]) for i in range(8)]
    r = m.saturation(samples)
    assert r["overloaded"] is False and r["saturated"] == [{"cpu": 1, "from_t": 1.0,
                                                            "to_t": 2.0}]
    assert m.saturation([])["min_idle_pct"] is None


def test_host_health_reports_a_busy_watched_process():
    """A watched process spinning on a core shows in the busiest list with high cpu_pct."""
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        h = HostHealth({"spinner": spin.pid})
        time.sleep(0.6)
        s = h.sample()
        assert len(s["idle_pct_per_cpu"]) == os.cpu_count()
        mine = [p for p in s["busiest"] if p["name"] == "spinner"]
        assert mine and mine[0]["pid"] == spin.pid and mine[0]["cpu_pct"] > 30
        assert sum(1 for p in s["busiest"] if not p["watched"]) <= 3
    finally:
        spin.kill()
        spin.wait()
    s = h.sample()  # the process went away: skipped, not an error
    assert all(p["name"] != "spinner" for p in s["busiest"])


# --------------------------------------------------------------------------- real programs


def _py(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_file(path: Path, proc: subprocess.Popen, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stderr.read()}")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise AssertionError(f"{path} did not appear")


def _finish(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    assert proc.returncode == 0, proc.stderr.read()


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_records_file_gives_the_receivers_numbers(tmp_path):
    """On loopback, read_records + probe_report on the receiver's records file reproduce its
    JSON report, computed against the sender's count and schedule."""
    port = _free_port()
    out, rec, st = tmp_path / "recv.json", tmp_path / "rec.bin", tmp_path / "send.json"
    recv = _py("testbed.programs.probe", "recv", "--port", str(port), "--bind", "127.0.0.1",
               "--out", str(out), "--records", str(rec), "--sender-stats", str(st))
    try:
        assert _wait_file(out, recv)["ready"] is True
        send = _py("testbed.programs.probe", "send", "--dst", "127.0.0.1", "--port", str(port),
                   "--rate", "1000", "--duration", "0.5", "--stats", str(st))
        _finish(send)
        time.sleep(0.2)
    finally:
        recv.send_signal(signal.SIGTERM)
        _finish(recv)
    res, stats = json.loads(out.read_text()), json.loads(st.read_text())
    assert res["schedule_from"] == "sender" and stats["sent"] == 500
    again = m.probe_report_with_sender(m.read_records(rec), stats)
    for key in again:
        assert res[key] == again[key], key
    assert res["received"] == len(m.read_records(rec)) == 500 - res["lost"] + res["duplicates"]
    assert res["sent"] == 500


def test_trafgen_interval_counts_agree_on_loopback(tmp_path):
    """On loopback the load generator's sent_by_interval equals its receiver's
    received_by_interval (same --interval): no loss in any interval, even across a step up."""
    port = _free_port()
    out, st = tmp_path / "recv.json", tmp_path / "send.json"
    recv = _py("testbed.programs.trafgen", "recv", "--port", str(port), "--bind", "127.0.0.1",
               "--out", str(out), "--interval", "0.2")
    try:
        assert _wait_file(out, recv)["ready"] is True
        send = _py("testbed.programs.trafgen", "send", "--dst", "127.0.0.1", "--port", str(port),
                   "--flows", "2", "--stats", str(st), "--interval", "0.2",
                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        for line, pause in (("rate 300", 0.6), ("rate 1500", 0.6), ("stop", 0)):
            send.stdin.write(line + "\n")
            send.stdin.flush()
            time.sleep(pause)
        _finish(send)
        time.sleep(0.3)
    finally:
        recv.send_signal(signal.SIGTERM)
        _finish(recv)
    stats, res = json.loads(st.read_text()), json.loads(out.read_text())
    assert stats["done"] is True
    sent = {k: v for k, v in stats["sent_by_interval"].items() if v}
    assert sent == res["received_by_interval"]
    assert sum(sent.values()) == stats["sent"] == res["total"]
    assert stats["sent"] == pytest.approx(300 * 0.6 + 1500 * 0.6, rel=0.15)
    loss = m.load_loss(stats, res)
    assert loss and set(loss.values()) == {0.0}
    cmd = [c for _t, c, _s in m.sender_rate_samples(stats)]
    assert max(cmd) == pytest.approx(1500) and 300 in cmd


@pytest.mark.parametrize("lost_seqs,runs", [
    ([], 0), ([0], 1), ([0, 1, 2], 1), ([9], 1), ([3, 4, 7], 2), ([0, 5, 9], 3),
    ([5], 1), (list(range(10)), 1)])
def test_loss_runs_counts_each_run_of_lost_seqs_edges_included(lost_seqs, runs):
    """probe_report's loss_runs: one per maximal run of consecutive lost seqs, a run at
    the start or the end too, duplicates and reordering changing nothing."""
    T = 1_000_000
    recs = [(s, s * T + 50_000, s * T) for s in range(10) if s not in lost_seqs]
    recs = recs[::-1] + recs[:2]           # reordered, two duplicates
    rep = m.probe_report(recs, rate=1000, sent=10, start_ns=0)
    assert rep["loss_runs"] == runs
    assert rep["lost"] == len(lost_seqs)
