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
- ``outage_ms`` is the largest data-path gap the probes attributed to the fault,
  ``outage_total_ms`` the sum of its gaps, ``lost`` the packets lost in them, and
  ``restored_s`` the time from the fault to the end of its last gap.
- ``recovery_s`` is ``heal_s`` when MANO healed the fault, else ``restored_s`` (a link
  failure is repaired by the controller, not healed by MANO): the recovery-time CDF uses it.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

ATTRIBUTION_WINDOW_S = 120.0   # a detect with no fault of its own: the latest fault this recent
STEP_RATIO = 1.5               # a load step: the rate changes by this factor ...
STEP_WINDOW_S = 5.0            # ... within this many seconds
SERVED_LOSS_PCT = 5.0          # after a scale-out the load counts as served below this loss
AVAILABLE_LOSS_PCT = 50.0      # an NS counts as available in a sample with less loss than this
DEFAULT_MAX_LOSS_PCT = 1.0     # the SLA when a scenario declares none
OVERLOAD_IDLE_PCT = 10.0       # host CPU idle below this: the emulation was overloaded
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
        self._events = open(self.dir / "events.jsonl", "a")  # noqa: SIM115 (closed by close)
        self._metrics_f = None
        self._metrics = None

    def config(self, cfg: dict) -> None:
        """Write ``config.json``."""
        (self.dir / "config.json").write_text(json.dumps(cfg, indent=1, default=str) + "\n")

    def event(self, t: float, kind: str, **fields) -> None:
        """Append one event to ``events.jsonl`` and flush it."""
        rec = {"t": round(float(t), 6), "kind": kind, **fields}
        self._events.write(json.dumps(rec, default=str) + "\n")
        self._events.flush()

    def metric(self, t: float, name: str, labels: dict, value: float) -> None:
        """Append one tidy row to ``metrics.csv``."""
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
    if fault.get("target") == target:
        return True
    kind = fault.get("fault", "")
    return (kind == "nfvo_restart" and target == "nfvo") or \
        (kind == "controller_restart" and target == "controller")


def _faults(run: Run) -> tuple[list[dict], list[dict]]:
    """Per fault: detect, heal, data-path outage; and the outages no fault owns."""
    faults = run.events_of("fault")
    by_id = {}
    for i, f in enumerate(faults):
        by_id.setdefault(f.get("id") or f"fault-{i}", f)
    ids = {id(f): (f.get("id") or f"fault-{i}") for i, f in enumerate(faults)}
    detects: dict[str, list[dict]] = defaultdict(list)
    heals: dict[str, list[dict]] = defaultdict(list)
    recovered: dict[str, list[dict]] = defaultdict(list)
    detect_owner: dict[str, str] = {}

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
        elif kind in HEAL_KINDS:
            fid = e.get("fault_id") if e.get("fault_id") in by_id else None
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
        if o.get("fault_id") in by_id:
            outages[o["fault_id"]].append(o)
        else:
            orphans.append({k: o.get(k) for k in ("ns", "outage_ms", "lost", "start_t", "end_t")})

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
        out.append({
            "id": fid, "fault": f.get("fault"), "target": f.get("target"), "t": _r(t, 3),
            "end_t": _r(end["t"], 3) if end else None,
            "detect_s": _r(ds[0]["t"] - t) if ds else None,
            "detected_by": ds[0].get("by") if ds else None,
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
        })
    return out, orphans


def _load_steps(run: Run) -> list[dict]:
    """Load steps per NS: the commanded rate rose (or fell) by ``STEP_RATIO`` within
    ``STEP_WINDOW_S``; the step starts at the first change after the base rate."""
    per_ns: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in run.events_of("load"):
        if e.get("rate") is not None:
            per_ns[str(e.get("ns", ""))].append((float(e["t"]), float(e["rate"])))
    steps = []
    for ns, pts in per_ns.items():
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


def _scaling(run: Run) -> dict:
    steps = _load_steps(run)
    outs, ins = run.events_of("scale_out"), run.events_of("scale_in")
    loss = {}
    for labels, pts in run.series("loss_pct").items():
        loss.setdefault(dict(labels).get("ns"), []).extend(pts)
    rows = []
    for i, s in enumerate(steps):
        nxt = next((x["t"] for x in steps[i + 1:] if x["ns"] == s["ns"]), math.inf)
        pool = outs if s["direction"] == "up" else ins
        act = next((a for a in pool if str(a.get("ns", "")) == s["ns"]
                    and s["t"] <= a["t"] < nxt), None)
        row = {**s, "t": _r(s["t"], 3), "action": "scale_out" if s["direction"] == "up"
               else "scale_in", "action_t": _r(act["t"], 3) if act else None,
               "vnf": act.get("vnf") if act else None,
               "instances": act.get("instances") if act else None,
               "reaction_s": _r(act["t"] - s["t"]) if act else None, "served_s": None}
        if act and s["direction"] == "up":
            ok = [t for t, v in sorted(loss.get(s["ns"], [])) if act["t"] <= t < nxt
                  and v <= SERVED_LOSS_PCT]
            row["served_s"] = _r(ok[0] - s["t"]) if ok else None
        rows.append(row)
    up = [r["reaction_s"] for r in rows if r["direction"] == "up"]
    down = [r["reaction_s"] for r in rows if r["direction"] == "down"]
    return {
        "scale_outs": len(outs), "scale_ins": len(ins), "steps": rows,
        "actions": [{"t": _r(a["t"], 3), "kind": a["kind"], "ns": a.get("ns"),
                     "vnf": a.get("vnf"), "instances": a.get("instances"),
                     "reason": a.get("reason")} for a in run.events_of("scale_out", "scale_in")],
        "reaction_s_median": _r(_median(up)),
        "served_s_median": _r(_median(r["served_s"] for r in rows if r["direction"] == "up")),
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


def _sla_and_availability(run: Run) -> tuple[dict, dict]:
    loss, lat = _per_ns(run, "loss_pct"), _per_ns(run, "latency_ms")
    services = [sv[1] for sv in run.config.get("services") or []
                if isinstance(sv, (list, tuple)) and len(sv) == 2]
    names = sorted(set(loss) | set(lat) | set(services) | set(run.config.get("sla") or {}))
    duration = float(run.config.get("duration") or 0) or None
    gaps = defaultdict(float)
    for o in run.events_of("outage"):
        gaps[str(o.get("ns"))] += float(o.get("outage_ms") or 0)
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
            "probe_availability": _r(max(0.0, 1 - gaps[ns] / 1000 / duration))
            if duration else None,
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


def _emulation(run: Run) -> dict:
    idle = sorted(p for s in run.series("host_cpu_idle_pct").values() for p in s)
    vals = [v for _, v in idle]
    step = _interval([t for t, _ in idle])
    low = [t for t, v in idle if v < OVERLOAD_IDLE_PCT]
    ach, cmd = _per_ns(run, "achieved_pps"), _per_ns(run, "commanded_pps")
    ratios: dict[str, list[float]] = {}
    for ns, cpts in cmd.items():
        st = _interval([t for t, _ in cpts])
        a = {round(t / st): v for t, v in ach.get(ns, [])}
        ratios[ns] = [a[round(t / st)] / c for t, c in cpts if c > 0 and round(t / st) in a]
    allr = [r for rs in ratios.values() for r in rs]
    return {
        "host_idle_min_pct": _r(min(vals), 2) if vals else None,
        "host_idle_mean_pct": _r(_mean(vals), 2),
        "overloaded": bool(low),
        "overloaded_s": _r(len(low) * step, 3),
        "overload_threshold_pct": OVERLOAD_IDLE_PCT,
        "achieved_ratio_median": _r(_median(allr)),
        "achieved_ratio": {ns: _r(_median(r)) for ns, r in sorted(ratios.items())},
    }


def summarize(run: Run) -> dict:
    """What the run measured: per fault, scaling, SLA, availability, CPU, servers, emulation
    health and the end state (see the module docstring for how events are matched)."""
    cfg = run.config
    faults, orphans = _faults(run)
    scaling = _scaling(run)
    sla, avail = _sla_and_availability(run)
    emu = _emulation(run)
    servers = _servers(run)
    ends = run.events_of("end")
    healthy = ends[-1].get("healthy") if ends else cfg.get("healthy_at_end")
    summary = {
        "scenario": cfg.get("scenario"), "seed": cfg.get("seed"), "run": run.dir.name,
        "duration": cfg.get("duration"), "params": cfg.get("params") or {},
        "faults": faults, "unattributed_outages": orphans, "scaling": scaling,
        "sla": sla, "availability": avail, "cpu": _cpu(run), "active_servers": servers,
        "emulation": emu, "healthy_at_end": healthy,
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
        "lost_total": sum(f["lost"] or 0 for f in faults),
        "scale_outs": scaling["scale_outs"], "scale_ins": scaling["scale_ins"],
        "reaction_s_median": scaling["reaction_s_median"],
        "scale_in_s_median": scaling["scale_in_s_median"],
        "sla_violation_s": _r(sum(s["violation_s"] or 0 for s in sla.values()), 3),
        "availability_min": min(avs) if avs else None,
        "active_servers_max": servers["max"], "active_servers_mean": servers["mean"],
        "host_idle_min_pct": emu["host_idle_min_pct"],
        "achieved_ratio_median": emu["achieved_ratio_median"],
        "healthy_at_end": None if healthy is None else int(bool(healthy)),
    }
    return summary


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
    return (f"**WARNING: THE EMULATION HOST WAS OVERLOADED** — host CPU idle fell to "
            f"{_f(emu.get('host_idle_min_pct'), 1)} % (below {_f(emu.get('overload_threshold_pct'), 0)}"
            f" % for {_f(emu.get('overloaded_s'), 0)} s): timings and rates in this run measure "
            f"the machine, not the policies; re-run with less load or a smaller topology.")


def summary_markdown(summary: dict) -> str:
    """A short Markdown report of a summary."""
    s = summary
    lines = [f"# {s.get('scenario')} — seed {s.get('seed')} — run {s.get('run')}", ""]
    warn = overload_warning(s)
    if warn:
        lines += [warn, ""]
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
            ["t (s)", "fault", "target", "detect (s)", "heal (s)", "restored (s)",
             "outage (ms)", "lost pkts", "detected by"],
            [[_f(f["t"], 2), f["fault"], f"`{f['target']}`", _f(f["detect_s"]),
              _f(f["heal_s"]), _f(f["restored_s"]), _f(f["outage_ms"], 1), _f(f["lost"]),
              _f(f["detected_by"])] for f in s["faults"]])
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
            ["load step t (s)", "ns", "rate (pps)", "action", "at (s)", "VNF", "instances",
             "reaction (s)", "served (s)"],
            [[_f(r["t"], 2), r["ns"], f"{r['from']:.0f} → {r['to']:.0f}", r["action"],
              _f(r["action_t"], 2), _f(r["vnf"]), _f(r["instances"]), _f(r["reaction_s"]),
              _f(r["served_s"])] for r in sc["steps"]])

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
        lines += ["## CPU per VNF instance (cores)", ""]
        lines += _table(["instance", "ns", "VNF", "mean", "p95"],
                        [[f"`{i}`", _f(c["ns"]), _f(c["vnf"]), _f(c["mean"]), _f(c["p95"])]
                         for i, c in s["cpu"].items()])
    srv, emu = s.get("active_servers") or {}, s.get("emulation") or {}
    lines += ["## Servers and emulation health", "",
              f"- active servers: max {_f(srv.get('max'), 0)}, mean {_f(srv.get('mean'), 2)}",
              f"- host CPU idle: min {_f(emu.get('host_idle_min_pct'), 1)} %, "
              f"mean {_f(emu.get('host_idle_mean_pct'), 1)} %"
              + (" — **OVERLOADED**" if emu.get("overloaded") else ""),
              f"- achieved / commanded rate (median): {_f(emu.get('achieved_ratio_median'))}",
              ""]
    return "\n".join(lines)


def write_summary(run_dir, summary: dict) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into the run directory."""
    d = Path(run_dir)
    j, m = d / "summary.json", d / "summary.md"
    j.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    m.write_text(summary_markdown(summary))
    return j, m
