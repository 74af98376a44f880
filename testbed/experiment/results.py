"""A run's results on disk: writing them, loading them back and summarizing what was measured.

A run directory ``results/<scenario>/<run-id>/`` holds ``config.json``, ``events.jsonl``
(one JSON object per line, each with ``t`` in seconds since the run started and a ``kind``),
``metrics.csv`` (tidy rows ``time,metric,labels,value``, labels as ``k=v;k=v``) and, once
summarized, ``summary.json`` and ``summary.md``.

How the summary reads the event log:

- A ``detect`` belongs to the fault named by its ``fault_id``; else to the latest earlier
  fault on the same target; else (a compute node or switch failure takes instances down, and
  the detector names the instance) to the latest fault at most ``ATTRIBUTION_WINDOW_S`` before.
- A ``heal_done`` belongs to the fault its target's latest ``detect`` belonged to (else the
  latest earlier fault on that target); a fault is healed when every target detected for it
  is healed (``heal_s`` is then the last of those heals); a ``recovered`` event (e.g. the
  NFVO reconciled after its restart) also counts as the heal.
- Every probe gap (``outage`` event, see ``testbed.measures``) belongs to the latest fault
  that began before the gap (with ``ATTRIBUTION_SLACK_S`` of slack) and at most
  ``ATTRIBUTION_WINDOW_S`` before it, preferring faults that affect the gap's NS; a gap
  with no such fault is *unattributed*.
- ``outage_ms`` is the largest gap attributed to the fault, ``outage_total_ms`` the sum of
  its gaps, ``lost`` the packets lost in them, and ``restored_s`` the time from the fault
  to the end of its last gap. A fault is ``recovered`` unless one of its gaps lasted to the
  end of the run, or it was detected and never healed.
- ``recovery_s`` is ``heal_s`` when MANO healed the fault, else ``restored_s`` (a link
  failure is repaired by the controller, not healed by MANO): the recovery-time CDF uses it.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from testbed import measures

ATTRIBUTION_WINDOW_S = 120.0   # a detect or gap with no fault of its own: the latest fault this recent
ATTRIBUTION_SLACK_S = 0.1      # a gap may begin this much before its fault's event is stamped
DRIFT_LIMIT_MS = 50.0          # a run whose engine was later than this on an event flags itself
STEP_RATIO = 1.5               # a load step: the rate changes by this factor ...
STEP_WINDOW_S = 5.0            # ... within this many seconds
SHARE_FRACTION = 0.5           # a new instance carries its share at this part of the mean
AVAILABLE_LOSS_PCT = 50.0      # an NS counts as available in a sample with less loss than this
DEFAULT_MAX_LOSS_PCT = 1.0     # the SLA when a scenario declares none
OVERLOAD_IDLE_PCT = 10.0       # a CPU with less idle than this is saturated
OVERLOAD_FOR_S = 1.0           # ... and the run overloaded when one stays so for longer
SENDER_RATIO = 0.9             # the load sender is behind below this share of its command
HEAL_KINDS = ("heal_done",)
LATENCY_KEYS = ("max_latency_ms", "latency_ms", "latency_max_ms", "max_latency")
LOSS_KEYS = ("max_loss_pct", "max_loss", "loss_pct", "loss_max_pct")


class Sample(NamedTuple):
    """One metric sample: time in seconds since the run started, labels and value."""

    t: float
    labels: dict
    value: float


def format_labels(labels: dict) -> str:
    """Labels as the tidy CSV writes them: ``k=v;k=v`` in key order."""
    return ";".join(f"{k}={v}" for k, v in sorted(labels.items()))


def parse_labels(text: str) -> dict:
    """The inverse of ``format_labels``."""
    out = {}
    for part in (text or "").split(";"):
        if part:
            k, _, v = part.partition("=")
            out[k] = v
    return out


def _key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


# ---- writing -------------------------------------------------------------------------------
class RunWriter:
    """Writes a run directory: config, events (appended and flushed one by one) and metrics."""

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()    # the engine writes from its loop and its workers
        self._events = open(self.dir / "events.jsonl", "a")  # noqa: SIM115 (closed by close)
        self._metrics_f = None
        self._metrics = None

    def config(self, cfg: dict) -> None:
        """Write ``config.json``."""
        (self.dir / "config.json").write_text(json.dumps(cfg, indent=1, default=str) + "\n")

    def event(self, t: float, kind: str, **fields) -> None:
        """Append one event to ``events.jsonl`` and flush it."""
        rec = {"t": round(float(t), 6), "kind": kind, **fields}
        line = json.dumps(rec, default=str) + "\n"
        with self._lock:
            self._events.write(line)
            self._events.flush()

    def metric(self, t: float, name: str, labels: dict, value: float) -> None:
        """Append one tidy row to ``metrics.csv``."""
        with self._lock:
            self._metric(t, name, labels, value)

    def _metric(self, t: float, name: str, labels: dict, value: float) -> None:
        if self._metrics is None:
            path = self.dir / "metrics.csv"
            fresh = not path.exists() or path.stat().st_size == 0
            self._metrics_f = open(path, "a", newline="")  # noqa: SIM115
            self._metrics = csv.writer(self._metrics_f)
            if fresh:
                self._metrics.writerow(["time", "metric", "labels", "value"])
        self._metrics.writerow([f"{float(t):.6f}", name, format_labels(labels or {}),
                                float(value)])

    def metrics_from_store(self, store, t0: float = 0.0) -> int:
        """Copy every point of a ``mano.monitoring.TimeSeriesStore``, times made ``t - t0``."""
        n = 0
        for name in store.metrics():
            for labels, pts in sorted(store.series(name).items()):
                for t, v in pts:
                    self.metric(t - t0, name, dict(labels), v)
                    n += 1
        if self._metrics_f:
            self._metrics_f.flush()
        return n

    def flush(self) -> None:
        """Flush the metrics file (events are flushed one by one)."""
        with self._lock:
            if self._metrics_f:
                self._metrics_f.flush()

    def close(self) -> None:
        """Flush and close the files."""
        self._events.close()
        if self._metrics_f:
            self._metrics_f.close()
            self._metrics_f = self._metrics = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def dumps(obj) -> str:
    """JSON as the run files are written (indented, one trailing newline)."""
    return json.dumps(obj, indent=1, default=str) + "\n"


# ---- loading -------------------------------------------------------------------------------
@dataclass
class Run:
    """A loaded run: its config, events in time order and metrics by name."""

    dir: Path
    config: dict
    events: list[dict]
    metrics: dict[str, list[Sample]] = field(default_factory=dict)
    timeline: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        """A short name for legends: scenario, seed and run id."""
        c = self.config
        return f"{c.get('scenario', '?')} seed {c.get('seed', '?')} ({self.dir.name})"

    def events_of(self, *kinds: str) -> list[dict]:
        """The events of the given kinds, in time order."""
        return [e for e in self.events if e.get("kind") in kinds]

    def series(self, name: str, **match) -> dict[tuple, list[tuple[float, float]]]:
        """Every series of metric ``name`` whose labels include ``match``, keyed by label tuple."""
        want = {(k, str(v)) for k, v in match.items()}
        out: dict[tuple, list] = defaultdict(list)
        for s in self.metrics.get(name, []):
            if want <= set(s.labels.items()):
                out[_key(s.labels)].append((s.t, s.value))
        return {k: sorted(v) for k, v in out.items()}


def load_run(run_dir) -> Run:
    """Read a run directory (a missing file reads as empty, a truncated last event is skipped)."""
    d = Path(run_dir)
    cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else {}
    events = []
    if (d / "events.jsonl").exists():
        for line in (d / "events.jsonl").read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "t" in rec and "kind" in rec:
                events.append(rec)
    events.sort(key=lambda e: float(e["t"]))   # stable: same-time events keep their order
    metrics: dict[str, list[Sample]] = defaultdict(list)
    if (d / "metrics.csv").exists():
        with open(d / "metrics.csv", newline="") as f:
            for row in csv.DictReader(f):
                try:
                    t, v = float(row["time"]), float(row["value"])
                except (TypeError, ValueError, KeyError):
                    continue
                if math.isfinite(t) and math.isfinite(v):
                    metrics[row["metric"]].append(Sample(t, parse_labels(row["labels"]), v))
    for rows in metrics.values():
        rows.sort(key=lambda s: s.t)
    timeline = []
    if (d / "timeline.json").exists():
        try:
            timeline = json.loads((d / "timeline.json").read_text())
        except ValueError:
            pass
    return Run(d, cfg, events, dict(metrics), timeline)


# ---- summarizing -----------------------------------------------------------------------------
def _median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return statistics.fmean(vals) if vals else None


def _pct(vals, q: float):
    """The q-th percentile (linear interpolation, like numpy's default)."""
    vals = sorted(vals)
    if not vals:
        return None
    pos = (len(vals) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def _r(v, nd: int = 4):
    return None if v is None else round(float(v), nd)


def _interval(times: list[float]) -> float:
    """The sampling interval of a series: the median gap between samples (1 s if unknown)."""
    ts = sorted(set(times))
    gaps = [b - a for a, b in itertools.pairwise(ts) if b > a]
    return statistics.median(gaps) if gaps else 1.0


def _fault_targets_match(fault: dict, target) -> bool:
    if target is None:
        return False
    if target in (fault.get("target"), fault.get("instance")):
        return True
    kind = fault.get("fault", "")
    return (kind == "nfvo_restart" and target == "nfvo") or \
        (kind == "controller_restart" and target == "controller")


def attribute_gap(gap: dict, faults: list[dict], ids: dict) -> str | None:
    """The fault a probe gap belongs to (see the module docstring), or None."""
    start = float(gap.get("start_t") or 0.0)
    cands = [f for f in faults if f["t"] <= start + ATTRIBUTION_SLACK_S
             and start - f["t"] <= ATTRIBUTION_WINDOW_S]
    if gap.get("leading"):
        cands = [f for f in cands if f["t"] <= start + ATTRIBUTION_SLACK_S]
    mine = [f for f in cands if gap.get("ns") in (f.get("ns") or [])]
    pool = mine or [f for f in cands if not f.get("ns")]
    if not pool:
        return None
    return ids[id(max(pool, key=lambda f: f["t"]))]


def _faults(run: Run) -> tuple[list[dict], list[dict]]:
    """Per fault: detect, decide, execute, heal, data-path outage; and the unattributed gaps."""
    faults = run.events_of("fault")
    by_id = {}
    for i, f in enumerate(faults):
        by_id.setdefault(f.get("id") or f"fault-{i}", f)
    ids = {id(f): (f.get("id") or f"fault-{i}") for i, f in enumerate(faults)}
    detects: dict[str, list[dict]] = defaultdict(list)
    heals: dict[str, list[dict]] = defaultdict(list)
    recovered: dict[str, list[dict]] = defaultdict(list)
    detect_owner: dict[str, str] = {}
    detect_at: dict[tuple[str, float | None], str] = {}

    def latest(t, pred):
        best = None
        for f in faults:
            if f["t"] <= t and pred(f):
                best = f
        return ids[id(best)] if best is not None else None

    for e in run.events:
        kind, t, target = e["kind"], e["t"], e.get("target")
        if kind == "detect":
            fid = e.get("fault_id") if e.get("fault_id") in by_id else None
            fid = fid or latest(t, lambda f, x=target: _fault_targets_match(f, x))
            fid = fid or latest(t, lambda f, t=t: t - f["t"] <= ATTRIBUTION_WINDOW_S)
            if fid:
                detects[fid].append(e)
                detect_owner[str(target)] = fid
                detect_at[(str(target), _r(t, 4))] = fid
        elif kind in HEAL_KINDS:
            fid = e.get("fault_id") if e.get("fault_id") in by_id else None
            # a heal answers the detection it names (observed_t): a later detection of the
            # same target (a second fault on it while it heals) does not take it over
            fid = fid or detect_at.get((str(target), _r(e.get("observed_t"), 4)))
            fid = fid or detect_owner.get(str(target))
            fid = fid or latest(t, lambda f, x=target: _fault_targets_match(f, x))
            if fid:
                heals[fid].append(e)
        elif kind == "recovered":
            fid = e.get("fault_id") if e.get("fault_id") in by_id else None
            fid = fid or latest(t, lambda f, x=target: _fault_targets_match(f, x))
            if fid:
                recovered[fid].append(e)
    ends = {e.get("id"): e for e in run.events_of("fault_end")}
    outages: dict[str, list[dict]] = defaultdict(list)
    orphans = []
    for o in run.events_of("outage"):
        fid = attribute_gap(o, faults, ids)
        if fid is not None:
            outages[fid].append(o)
        else:
            orphans.append({k: o.get(k) for k in ("ns", "graph", "outage_ms", "lost", "start_t",
                                                   "end_t", "leading", "trailing")})

    out = []
    for f in faults:
        fid, t = ids[id(f)], float(f["t"])
        ds = detects.get(fid, [])
        first_heal: dict[str, dict] = {}
        for h in heals.get(fid, []):
            first_heal.setdefault(str(h.get("target")), h)
        targets = {str(d.get("target")) for d in ds} or set(first_heal)
        heal = None
        if targets and targets <= set(first_heal):
            heal = max((first_heal[x] for x in targets), key=lambda h: h["t"])
        rec = recovered.get(fid, [])
        heal_t = heal["t"] if heal else (rec[0]["t"] if rec else None)
        gaps = sorted(outages.get(fid, []), key=lambda o: o.get("start_t") or 0)
        gap_ms = [float(g["outage_ms"]) for g in gaps if g.get("outage_ms") is not None]
        ends_t = [float(g["end_t"]) for g in gaps if g.get("end_t") is not None]
        restored = max(ends_t) - t if ends_t else None
        heal_s = heal_t - t if heal_t is not None else None
        end = ends.get(f.get("id"))
        trailing = any(g.get("trailing") for g in gaps)
        unhealed = bool(ds) and heal is None
        out.append({
            "id": fid, "fault": f.get("fault"), "target": f.get("target"),
            "instance": f.get("instance"), "ns": f.get("ns"), "t": _r(t, 3),
            "planned_t": f.get("planned_t"),
            "end_t": _r(end["t"], 3) if end else None,
            "detect_s": _r(ds[0]["t"] - t) if ds else None,
            "detected_by": ds[0].get("by") if ds else None,
            "decide_s": _r((heal or {}).get("decide_s")),
            "execute_s": _r((heal or {}).get("execute_s")),
            "heal_s": _r(heal_s),
            "heal_mode": (heal or {}).get("mode"),
            "healed_targets": f"{len(targets & set(first_heal))}/{len(targets)}"
            if targets else None,
            "restored_s": _r(restored),
            "recovery_s": _r(heal_s if heal_s is not None else restored),
            "outage_ms": _r(max(gap_ms), 3) if gap_ms else None,
            "outage_total_ms": _r(sum(gap_ms), 3) if gap_ms else None,
            "lost": int(sum(int(g.get("lost") or 0) for g in gaps)) if gaps else None,
            "gaps": len(gaps),
            "outages_by_ns": {ns: _r(max(float(g["outage_ms"]) for g in gaps
                                         if g.get("ns") == ns), 3)
                              for ns in sorted({str(g.get("ns")) for g in gaps})},
            "recovered": not trailing and not unhealed,
        })
    return out, orphans


def _load_steps(run: Run) -> list[dict]:
    """Load steps per NS: the commanded rate rose (or fell) by ``STEP_RATIO`` within
    ``STEP_WINDOW_S``; the step starts at the first change after the base rate."""
    per_ns: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for e in run.events_of("load"):
        if e.get("rate") is not None:
            key = (str(e.get("ns", "")), str(e.get("graph", "")))
            per_ns[key].append((float(e.get("planned_t", e["t"])), float(e["rate"])))
    steps = []
    for (ns, _graph), pts in sorted(per_ns.items()):
        last_step_t = -math.inf
        for i in range(1, len(pts)):
            t, rate = pts[i]
            if t - last_step_t < STEP_WINDOW_S:
                continue
            j0 = i - 1            # the rate in effect STEP_WINDOW_S ago, and what came after
            while j0 > 0 and pts[j0][0] > t - STEP_WINDOW_S:
                j0 -= 1
            window = pts[j0:i]
            lo = min(window, key=lambda p: p[1])
            hi = max(window, key=lambda p: p[1])
            if rate > 0 and (rate >= STEP_RATIO * lo[1]):
                base, direction = lo, "up"
            elif rate <= hi[1] / STEP_RATIO and hi[1] > 0:
                base, direction = hi, "down"
            else:
                continue
            k = pts.index(base, j0) + 1   # the first change after the base
            steps.append({"ns": ns, "t": pts[k][0], "from": base[1], "to": rate,
                          "direction": direction})
            last_step_t = t
    return sorted(steps, key=lambda s: s["t"])


def _served(run: Run, act: dict, until: float) -> float | None:
    """When the instance a scale-out added first carries its share: the first sample of its
    ``packets_rate`` at or after the operation completed that is at least
    ``SHARE_FRACTION`` of the VNF's mean rate per instance at that time (measured at the
    instances, by the NFVO's monitoring)."""
    added = act.get("added") or []
    if not added:
        return None
    vnf_series = run.series("packets_rate", ns=act.get("ns"), vnf=act.get("vnf"))
    latest: dict[str, list[tuple[float, float]]] = {dict(k).get("instance"): v
                                                     for k, v in vnf_series.items()}
    done = float(act.get("completed_t") or act["t"])
    for t, v in latest.get(added[0], []):
        if t < done or t >= until:
            continue
        others = []
        for iid, pts in latest.items():
            near = [x for tt, x in pts if t - 1.0 <= tt <= t]
            if near:
                others.append(near[-1])
        fair = sum(others) / len(others) if others else 0.0
        if fair > 0 and v >= SHARE_FRACTION * fair:
            return t
    return None


def _scaling(run: Run) -> dict:
    """Load steps and the scaling actions that answered them, with the reaction split in
    detect (step → threshold crossing observed), decide (crossing → action decided),
    execute (action start → operation COMPLETED) and served (step → the new instance
    carries its share, measured at the instance)."""
    steps = _load_steps(run)
    outs, ins = run.events_of("scale_out"), run.events_of("scale_in")
    rows = []
    for i, s in enumerate(steps):
        nxt = next((x["t"] for x in steps[i + 1:] if x["ns"] == s["ns"]), math.inf)
        pool = outs if s["direction"] == "up" else ins
        act = next((a for a in pool if str(a.get("ns", "")) == s["ns"]
                    and s["t"] <= float(a.get("decided_t", a["t"])) < nxt), None)
        row = {**s, "t": _r(s["t"], 3), "action": "scale_out" if s["direction"] == "up"
               else "scale_in", "action_t": _r(act.get("decided_t", act["t"]), 3)
               if act else None,
               "vnf": act.get("vnf") if act else None,
               "instances": act.get("instances") if act else None,
               "detect_s": None, "decide_s": None, "execute_s": None,
               "reaction_s": None, "served_s": None}
        if act:
            obs = act.get("observed_t")
            row["detect_s"] = _r(obs - s["t"]) if obs is not None else None
            row["decide_s"] = _r(act.get("decide_s"))
            row["execute_s"] = _r(act.get("execute_s"))
            row["reaction_s"] = _r(float(act.get("completed_t", act["t"])) - s["t"])
            if s["direction"] == "up":
                served = _served(run, act, nxt)
                row["served_s"] = _r(served - s["t"]) if served is not None else None
        rows.append(row)
    up = [r for r in rows if r["direction"] == "up"]
    down = [r["reaction_s"] for r in rows if r["direction"] == "down"]
    return {
        "scale_outs": len(outs), "scale_ins": len(ins), "steps": rows,
        "actions": [{"t": _r(a["t"], 3), "kind": a["kind"], "ns": a.get("ns"),
                     "vnf": a.get("vnf"), "instances": a.get("instances"),
                     "added": a.get("added"), "removed": a.get("removed"),
                     "decide_s": a.get("decide_s"), "execute_s": a.get("execute_s"),
                     "reason": a.get("reason")} for a in run.events_of("scale_out", "scale_in")],
        "reaction_s_median": _r(_median(r["reaction_s"] for r in up)),
        "detect_s_median": _r(_median(r["detect_s"] for r in up)),
        "decide_s_median": _r(_median(r["decide_s"] for r in up)),
        "execute_s_median": _r(_median(r["execute_s"] for r in up)),
        "served_s_median": _r(_median(r["served_s"] for r in up)),
        "scale_in_s_median": _r(_median(down)),
    }


def _sla_limits(run: Run, ns: str) -> dict:
    sla = (run.config.get("sla") or {}).get(ns) or {}
    lat = next((float(sla[k]) for k in LATENCY_KEYS if sla.get(k) is not None), None)
    loss = next((float(sla[k]) for k in LOSS_KEYS if sla.get(k) is not None), None)
    if lat is None and loss is None:
        loss = DEFAULT_MAX_LOSS_PCT
    return {"max_latency_ms": lat, "max_loss_pct": loss}


def _per_ns(run: Run, name: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list] = defaultdict(list)
    for labels, pts in run.series(name).items():
        out[dict(labels).get("ns", "")].extend(pts)
    return {k: sorted(v) for k, v in out.items()}


def _traffic(run: Run) -> dict:
    """Achieved throughput and latency of the load (results/README.md, Summary):
    ``throughput_pps_mean`` = mean over the 0.5 s intervals of the load packets received
    per second, summed over every forwarding graph; ``latency_ms_median`` = median over
    every graph's intervals of their mean one-way latency (ms)."""
    per_t: dict[float, float] = defaultdict(float)
    for pts in run.series("received_pps").values():
        for t, v in pts:
            per_t[round(t, 4)] += v
    lats = [v for pts in run.series("latency_ms").values() for _, v in pts]
    return {"throughput_pps_mean": _r(_mean(per_t.values()), 3),
            "latency_ms_median": _r(_median(lats))}


def _sla_and_availability(run: Run) -> tuple[dict, dict]:
    loss, lat = _per_ns(run, "loss_pct"), _per_ns(run, "latency_ms")
    services = [sv[1] for sv in run.config.get("services") or []
                if isinstance(sv, (list, tuple)) and len(sv) == 2]
    names = sorted(set(loss) | set(lat) | set(services) | set(run.config.get("sla") or {}))
    gaps, span = defaultdict(float), defaultdict(float)
    for o in run.events_of("outage"):
        gaps[str(o.get("ns"))] += float(o.get("outage_ms") or 0)
    for p in run.events_of("probe"):     # seconds of probing: sent / rate
        if p.get("rate"):
            span[str(p.get("ns"))] += float(p.get("sent") or 0) / float(p["rate"])
    sla, avail = {}, {}
    for ns in names:
        lim = _sla_limits(run, ns)
        times = [t for t, _ in loss.get(ns, [])] + [t for t, _ in lat.get(ns, [])]
        step = _interval([t for t, _ in loss.get(ns, [])] or times)
        bad = set()
        if lim["max_loss_pct"] is not None:
            bad |= {round(t / step) for t, v in loss.get(ns, []) if v > lim["max_loss_pct"]}
        if lim["max_latency_ms"] is not None:
            bad |= {round(t / step) for t, v in lat.get(ns, []) if v > lim["max_latency_ms"]}
        n = len({round(t / step) for t in times})
        sla[ns] = {**lim, "violation_s": _r(len(bad) * step, 3), "samples": n,
                   "interval_s": _r(step, 3)}
        vals = [v for _, v in loss.get(ns, [])]
        avail[ns] = {
            "availability": _r(sum(v < AVAILABLE_LOSS_PCT for v in vals) / len(vals))
            if vals else None,
            "samples": len(vals),
            "probe_availability": _r(max(0.0, 1 - gaps[ns] / 1000 / span[ns]))
            if span.get(ns) else None,
        }
    return sla, avail


def _cpu(run: Run) -> dict:
    out = {}
    for labels, pts in run.series("cpu_util").items():
        lb = dict(labels)
        inst = lb.get("instance") or format_labels(lb)
        vals = [v for _, v in pts]
        out[inst] = {"ns": lb.get("ns"), "vnf": lb.get("vnf"), "mean": _r(_mean(vals)),
                     "p95": _r(_pct(vals, 95)), "samples": len(vals),
                     "first_t": _r(pts[0][0], 3), "last_t": _r(pts[-1][0], 3)}
    return dict(sorted(out.items()))


def _servers(run: Run) -> dict:
    pts = sorted(p for series in run.series("active_servers").values() for p in series)
    vals = [v for _, v in pts]
    return {"max": max(vals) if vals else None, "min": min(vals) if vals else None,
            "mean": _r(_mean(vals), 3), "last": vals[-1] if vals else None,
            "samples": len(vals)}


def emulation_health(run: Run) -> dict:
    """Emulation health: per-CPU saturation (``measures.saturation`` on ``cpu_idle_pct``),
    each load sender against its commanded rate (``measures.sender_behind`` on
    ``sent_pps``/``commanded_pps``) and the busiest watched processes."""
    per_t: dict[float, dict[int, float]] = defaultdict(dict)
    for s in run.metrics.get("cpu_idle_pct", []):
        per_t[s.t][int(s.labels.get("cpu", 0))] = s.value
    samples = [(t, [c[i] for i in sorted(c)]) for t, c in sorted(per_t.items())]
    sat = measures.saturation(samples, idle_below_pct=OVERLOAD_IDLE_PCT, for_s=OVERLOAD_FOR_S)
    senders = {}
    for labels, cmd in run.series("commanded_pps").items():
        lb = dict(labels)
        sent = dict(run.series("sent_pps", **lb).get(labels, []))
        pts = [(t, c, sent[t]) for t, c in cmd if t in sent]
        senders[lb.get("graph") or lb.get("ns", "")] = measures.sender_behind(
            pts, ratio_below=SENDER_RATIO, for_s=OVERLOAD_FOR_S)
    procs: dict[str, list[float]] = defaultdict(list)
    for s in run.metrics.get("process_cpu_pct", []):
        procs[s.labels.get("process", "?")].append(s.value)
    busiest = sorted(({"process": k, "max_cpu_pct": _r(max(v), 1), "mean_cpu_pct":
                       _r(_mean(v), 1)} for k, v in procs.items()),
                     key=lambda r: -r["max_cpu_pct"])[:5]
    behind = sorted(k for k, v in senders.items() if v["behind"])
    ratios = [v["min_ratio"] for v in senders.values() if v["min_ratio"] is not None]
    return {
        "min_idle_pct": _r(sat["min_idle_pct"], 2) if sat["min_idle_pct"] is not None
        else None,
        "min_idle_pct_per_cpu": [_r(x, 2) for x in sat["min_idle_pct_per_cpu"]],
        "saturated": sat["saturated"],
        "cpu_saturated": sat["overloaded"],
        "senders_behind": behind,
        "sender_min_ratio": _r(min(ratios)) if ratios else None,
        "overloaded": bool(sat["overloaded"] or behind),
        "overload_threshold_pct": OVERLOAD_IDLE_PCT,
        "busiest": busiest,
    }


def _engine(run: Run) -> dict:
    """How late the engine executed what it planned: every timeline event (its
    ``planned_t`` against its time) and every tick (``engine_drift_ms`` samples)."""
    drift = [float(s.value) for s in run.metrics.get("engine_drift_ms", [])]
    for e in run.events_of("fault", "fault_end", "load"):
        if e.get("planned_t") is not None:
            drift.append(max(0.0, (float(e["t"]) - float(e["planned_t"])) * 1000.0))
    mx = max(drift) if drift else None
    return {"max_drift_ms": _r(mx, 2), "p99_drift_ms": _r(_pct(drift, 99), 2),
            "samples": len(drift), "limit_ms": DRIFT_LIMIT_MS,
            "flagged": mx is not None and mx > DRIFT_LIMIT_MS}


def summarize(run: Run) -> dict:
    """What the run measured: per fault, scaling, SLA, availability, CPU, servers, emulation
    health and the end state (see the module docstring for how events are matched)."""
    cfg = run.config
    faults, orphans = _faults(run)
    scaling = _scaling(run)
    sla, avail = _sla_and_availability(run)
    emu = emulation_health(run)
    engine = _engine(run)
    servers = _servers(run)
    probes = {e.get("graph"): {k: e.get(k) for k in ("ns", "rate", "sent", "received", "lost",
                                                   "duplicates", "reordered", "records")}
              for e in run.events_of("probe")}
    ends = run.events_of("end")
    healthy = ends[-1].get("healthy") if ends else cfg.get("healthy_at_end")
    summary = {
        "scenario": cfg.get("scenario"), "seed": cfg.get("seed"), "run": run.dir.name,
        "duration": cfg.get("duration"), "params": cfg.get("params") or {},
        "faults": faults, "unattributed_outages": orphans, "scaling": scaling,
        "sla": sla, "availability": avail, "cpu": _cpu(run), "active_servers": servers,
        "probes": probes, "emulation": emu, "engine": engine, "healthy_at_end": healthy,
        "ns_states": ends[-1].get("ns_states") if ends else None,
    }
    avs = [a["availability"] for a in avail.values() if a["availability"] is not None]
    summary["scalars"] = {
        "faults": len(faults),
        "detect_s_median": _r(_median(f["detect_s"] for f in faults)),
        "heal_s_median": _r(_median(f["heal_s"] for f in faults)),
        "heal_s_mean": _r(_mean(f["heal_s"] for f in faults)),
        "recovery_s_median": _r(_median(f["recovery_s"] for f in faults)),
        "outage_ms_median": _r(_median(f["outage_ms"] for f in faults), 3),
        "outage_ms_max": max((f["outage_ms"] for f in faults if f["outage_ms"] is not None),
                             default=None),
        "lost_total": sum(p["lost"] or 0 for p in probes.values()),
        "unrecovered_faults": sum(not f["recovered"] for f in faults),
        "scale_outs": scaling["scale_outs"], "scale_ins": scaling["scale_ins"],
        "reaction_s_median": scaling["reaction_s_median"],
        "served_s_median": scaling["served_s_median"],
        "scale_in_s_median": scaling["scale_in_s_median"],
        **_traffic(run),
        "sla_violation_s": _r(sum(s["violation_s"] or 0 for s in sla.values()), 3),
        "availability_min": min(avs) if avs else None,
        "active_servers_max": servers["max"], "active_servers_mean": servers["mean"],
        "cpu_idle_min_pct": emu["min_idle_pct"],
        "overloaded": int(emu["overloaded"]),
        "max_drift_ms": engine["max_drift_ms"],
        "healthy_at_end": None if healthy is None else int(bool(healthy)),
    }
    return summary


def check(summary: dict, checks: dict) -> list[dict]:
    """The checks a scenario declared with ``s.expect(...)``, each ``{"check", "ok",
    "detail"}``. ``max_outage_ms`` fails on any fault that did not recover (its outage ran
    to the end of the run, or it was detected and never healed). An unknown check fails."""
    out = []
    faults = summary.get("faults", [])
    unrecovered = [f["id"] for f in faults if not f.get("recovered", True)]
    for name, want in checks.items():
        if name == "max_outage_ms":
            vals = {f["id"]: f.get("outage_ms") for f in faults
                    if f.get("outage_ms") is not None}
            ok = not unrecovered and all(v < want for v in vals.values())
            out.append({"check": name, "ok": ok, "detail": (
                f"outages {vals} ms, bound {want}"
                + (f"; never recovered: {', '.join(unrecovered)}" if unrecovered else ""))})
        elif name == "all_recovered":
            out.append({"check": name, "ok": not (want and unrecovered),
                        "detail": f"never recovered: {unrecovered or 'none'}"})
        elif name == "scale_out":
            n = summary.get("scaling", {}).get("scale_outs", 0)
            out.append({"check": name, "ok": (n > 0) == bool(want), "detail": f"{n} scale-outs"})
        elif name == "scale_in":
            n = summary.get("scaling", {}).get("scale_ins", 0)
            out.append({"check": name, "ok": (n > 0) == bool(want), "detail": f"{n} scale-ins"})
        elif name == "healthy_at_end":
            h = summary.get("healthy_at_end")
            out.append({"check": name, "ok": h == want, "detail": f"healthy_at_end={h}"})
        elif name == "min_heals":
            n = len([f for f in faults if f.get("heal_s") is not None])
            out.append({"check": name, "ok": n >= want, "detail": f"{n} healed faults"})
        else:
            out.append({"check": name, "ok": False, "detail": "unknown check; known: "
                        "max_outage_ms, all_recovered, scale_out, scale_in, healthy_at_end, "
                        "min_heals"})
    return out


# ---- writing the summary ------------------------------------------------------------------
def _f(v, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


def overload_warning(summary: dict) -> str | None:
    """The loud line a summary carries when the emulation host ran out of CPU, else None."""
    emu = summary.get("emulation") or {}
    if not emu.get("overloaded"):
        return None
    why = []
    if emu.get("cpu_saturated"):
        cpus = sorted({r["cpu"] for r in emu.get("saturated") or []})
        why.append(f"CPU {', '.join(map(str, cpus))} saturated (idle below "
                   f"{_f(emu.get('overload_threshold_pct'), 0)} % for over a second; minimum "
                   f"{_f(emu.get('min_idle_pct'), 1)} %)")
    if emu.get("senders_behind"):
        why.append(f"load sender(s) {', '.join(emu['senders_behind'])} fell behind their "
                   f"commanded rate (down to {_f(emu.get('sender_min_ratio'), 2)} of it)")
    return (f"**WARNING: THE EMULATION HOST WAS OVERLOADED** — {'; '.join(why)}: timings and "
            f"rates in this run measure the machine, not the policies; re-run with less load "
            f"or a smaller topology.")


def summary_markdown(summary: dict) -> str:
    """A short Markdown report of a summary."""
    s = summary
    lines = [f"# {s.get('scenario')} — seed {s.get('seed')} — run {s.get('run')}", ""]
    warn = overload_warning(s)
    if warn:
        lines += [warn, ""]
    eng = s.get("engine") or {}
    if eng.get("flagged"):
        lines += [f"**WARNING: THE TIMELINE DRIFTED** — the engine ran an event up to "
                  f"{_f(eng.get('max_drift_ms'), 1)} ms after its planned time (limit "
                  f"{_f(eng.get('limit_ms'), 0)} ms): faults and load changes were late by "
                  f"that much.", ""]
    head = [f"Duration {_f(s.get('duration'), 0)} s.",
            f"Healthy at end: {_f(s.get('healthy_at_end'))}."]
    if "passed" in s:
        head.append(f"**Run {'PASSED' if s['passed'] else 'FAILED'}.**")
    if s.get("params"):
        head.append("Parameters: " + ", ".join(f"`{k}={v}`" for k, v in s["params"].items())
                    + ".")
    lines += [" ".join(head), ""]
    for c in s.get("checks") or []:
        lines.append(f"- check `{c.get('check')}`: {'ok' if c.get('ok') else 'FAILED'} "
                     f"({c.get('detail')})")
    if s.get("leftovers"):
        lines.append(f"- **left over after teardown:** {', '.join(map(str, s['leftovers']))}")
    if s.get("checks") or s.get("leftovers"):
        lines.append("")

    lines += ["## Faults", ""]
    if s.get("faults"):
        lines += _table(
            ["t (s)", "fault", "target", "NS", "detect (s)", "decide (s)", "execute (s)",
             "heal (s)", "outage (ms)", "lost", "recovered"],
            [[_f(f["t"], 2), f["fault"], f"`{f['target']}`", ", ".join(f.get("ns") or []) or "–",
              _f(f["detect_s"]), _f(f.get("decide_s")), _f(f.get("execute_s")),
              _f(f["heal_s"]), _f(f["outage_ms"], 1), _f(f["lost"]),
              _f(f.get("recovered"))] for f in s["faults"]])
    else:
        lines += ["No faults.", ""]
    if s.get("unattributed_outages"):
        lines += [f"{len(s['unattributed_outages'])} data-path outage(s) no fault explains: "
                  + ", ".join(f"{o['ns']} at {_f(o['start_t'], 2)} s ({_f(o['outage_ms'], 1)} ms)"
                              for o in s["unattributed_outages"][:10]), ""]

    sc = s.get("scaling") or {}
    lines += ["## Scaling", "",
              (f"{sc.get('scale_outs', 0)} scale-out(s), {sc.get('scale_ins', 0)} scale-in(s); "
               f"median reaction to a load step up {_f(sc.get('reaction_s_median'))} s, "
               f"to a step down {_f(sc.get('scale_in_s_median'))} s."), ""]
    if sc.get("steps"):
        lines += _table(
            ["step t (s)", "ns", "rate (pps)", "action", "VNF", "n", "detect (s)",
             "decide (s)", "execute (s)", "served (s)"],
            [[_f(r["t"], 2), r["ns"], f"{r['from']:.0f} → {r['to']:.0f}", r["action"],
              _f(r["vnf"]), _f(r["instances"]), _f(r.get("detect_s")), _f(r.get("decide_s")),
              _f(r.get("execute_s")), _f(r["served_s"])] for r in sc["steps"]])

    if s.get("probes"):
        lines += ["## Probes", ""]
        lines += _table(["graph", "rate (pps)", "sent", "received", "lost", "records"],
                        [[g, _f(p.get("rate"), 0), _f(p.get("sent")), _f(p.get("received")),
                          _f(p.get("lost")), f"`{p.get('records')}`"]
                         for g, p in s["probes"].items()])

    lines += ["## SLA and availability", ""]
    if s.get("sla"):
        av = s.get("availability") or {}
        lines += _table(
            ["ns", "max latency (ms)", "max loss (%)", "SLA violated (s)", "availability",
             "probe availability"],
            [[ns, _f(v["max_latency_ms"], 1), _f(v["max_loss_pct"], 1), _f(v["violation_s"], 1),
              _f((av.get(ns) or {}).get("availability")),
              _f((av.get(ns) or {}).get("probe_availability"), 4)]
             for ns, v in s["sla"].items()])
    else:
        lines += ["No service metrics recorded.", ""]

    if s.get("cpu"):
        lines += ["## CPU per VNF instance (share of its vCPU quota)", ""]
        lines += _table(["instance", "ns", "VNF", "mean", "p95"],
                        [[f"`{i}`", _f(c["ns"]), _f(c["vnf"]), _f(c["mean"]), _f(c["p95"])]
                         for i, c in s["cpu"].items()])
    srv, emu = s.get("active_servers") or {}, s.get("emulation") or {}
    lines += ["## Servers and emulation health", "",
              f"- active servers: max {_f(srv.get('max'), 0)}, mean {_f(srv.get('mean'), 2)}",
              f"- CPU idle, minimum per CPU: "
              f"{', '.join(_f(x, 1) for x in emu.get('min_idle_pct_per_cpu') or []) or '–'} %"
              + (" — **OVERLOADED**" if emu.get("overloaded") else ""),
              f"- load senders: lowest sent / commanded {_f(emu.get('sender_min_ratio'), 2)}"
              + (f", behind: {', '.join(emu['senders_behind'])}" if emu.get("senders_behind")
                 else ""),
              "- busiest processes (max % of a core): " + (", ".join(
                  f"{b['process']} {_f(b['max_cpu_pct'], 0)}" for b in emu.get("busiest") or [])
                  or "–"),
              f"- engine drift: max {_f((s.get('engine') or {}).get('max_drift_ms'), 1)} ms, "
              f"p99 {_f((s.get('engine') or {}).get('p99_drift_ms'), 1)} ms"
              + (" — **LATER THAN "
                 f"{_f((s.get('engine') or {}).get('limit_ms'), 0)} ms: the timeline drifted**"
                 if (s.get("engine") or {}).get("flagged") else ""),
              ""]
    return "\n".join(lines)


def write_summary(run_dir, summary: dict) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into the run directory."""
    d = Path(run_dir)
    j, m = d / "summary.json", d / "summary.md"
    j.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    m.write_text(summary_markdown(summary))
    return j, m
