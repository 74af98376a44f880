"""Plots of runs (matplotlib, Agg backend): a timeline, a recovery-time CDF and a comparison."""
from __future__ import annotations

import random
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, MaxNLocator

from testbed.experiment.results import Run, emulation_health, summarize

STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
         "xtick.labelsize": 10, "ytick.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3,
         "figure.dpi": 110, "savefig.dpi": 110}
FAULT, RECOVERY, SCALING = "#d62728", "#2ca02c", "#1f77b4"
# data colours: none red, green or blue, which mark faults, recoveries and scaling
PALETTE = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
           "#000000"]
MAX_FAULT_LABELS = 30   # beyond this many faults the timeline marks them without text
MIN_BOX = 5             # fewer values than this: points and a median line, no box
ROW_PT = 12             # height of a row of fault labels, in points


def _pts(run: Run, name: str) -> dict[str, list[tuple[float, float]]]:
    """A metric's series by a readable label (ns, or ns/vnf)."""
    out = {}
    for labels, pts in sorted(run.series(name).items()):
        lb = dict(labels)
        key = "/".join(str(lb[k]) for k in ("ns", "vnf") if k in lb) or name
        out.setdefault(key, []).extend(pts)
    return {k: sorted(v) for k, v in out.items()}


def _xy(pts):
    return [p[0] for p in pts], [p[1] for p in pts]


def _darker(color: str, k: float = 0.55):
    r, g, b = to_rgb(color)
    return (r * k, g * k, b * k)


def _label_faults(fig, ax, faults: list[dict], span: float) -> int:
    """Fault kinds (and short targets) above the top panel at their markers, in as many rows
    as it takes for no two labels to overlap (faults very close together share a label);
    returns the number of rows.  Call after a draw, so the layout is known."""
    groups: list[list[dict]] = []
    for f in faults:
        if groups and f["t"] - groups[-1][-1]["t"] < 0.01 * span:
            groups[-1].append(f)
        else:
            groups.append([f])
    renderer = fig.canvas.get_renderer()
    rows: list[list] = []   # per row, the extents of the labels placed in it
    for g in groups:
        kinds = []
        for f in g:
            if f.get("fault") not in kinds:
                kinds.append(f.get("fault"))
        text = ", ".join(str(k) for k in kinds)
        if len(g) > 1:
            text += f" ×{len(g)}"
        elif len(str(g[0].get("target", ""))) <= 18 and len(groups) <= 10:
            text += f" ({g[0].get('target')})"
        for level in range(len(rows) + 1):
            if level == len(rows):
                rows.append([])
            t = ax.annotate(text, xy=(g[0]["t"], 1.0), xycoords=ax.get_xaxis_transform(),
                            xytext=(0, 3 + level * ROW_PT), textcoords="offset points",
                            ha="center", va="bottom", fontsize=8.5, color=FAULT,
                            annotation_clip=False)
            box = t.get_window_extent(renderer)
            if not any(box.x0 < b.x1 + 6 and b.x0 < box.x1 + 6 for b in rows[level]):
                rows[level].append(box)
                break
            t.remove()
    return len(rows)


def plot_timeline(run: Run, path) -> Path:
    """One PNG: throughput, latency (loss when no latency was recorded) and instances per VNF
    on a shared time axis, faults (red, shaded while active), recoveries (green) and scaling
    actions (blue) marked."""
    path = Path(path)
    cfg = run.config
    faults = run.events_of("fault")
    ends = {e.get("id"): e["t"] for e in run.events_of("fault_end")}
    heals = run.events_of("heal_done", "recovered")
    outs, ins = run.events_of("scale_out"), run.events_of("scale_in")
    all_t = [s.t for rows in run.metrics.values() for s in rows] + [e["t"] for e in run.events]
    duration = float(cfg.get("duration") or 0) or (max(all_t) if all_t else 1.0)
    xmax = max([duration] + [t for t in all_t if t <= duration * 1.05])
    health = emulation_health(run)
    overloaded = health["overloaded"]

    with plt.rc_context(STYLE):
        fig, (a_tp, a_lat, a_inst) = plt.subplots(
            3, 1, sharex=True, figsize=(12, 8.8), height_ratios=[1.3, 1, 0.9],
            layout="constrained")
        colors = PALETTE

        # throughput
        ach, cmd = _pts(run, "received_pps"), _pts(run, "commanded_pps")
        for i, ns in enumerate(sorted(set(ach) | set(cmd))):
            c = colors[i % len(colors)]
            if ns in ach:
                a_tp.plot(*_xy(ach[ns]), color=c, lw=2.2, alpha=0.9, label=f"{ns} received",
                          zorder=2)
            if ns in cmd:
                a_tp.plot(*_xy(cmd[ns]), color=_darker(c), ls="--", lw=1.3, zorder=3,
                          drawstyle="steps-post", label=f"{ns} commanded")
        a_tp.set_ylabel("throughput (packets/s)")
        a_tp.yaxis.set_major_formatter(EngFormatter(sep=""))
        top = max([v for pts in list(ach.values()) + list(cmd.values()) for _, v in pts] or [1])
        a_tp.set_ylim(0, top * 1.08 or 1)
        if not (ach or cmd):
            a_tp.text(0.5, 0.5, "no throughput samples", transform=a_tp.transAxes,
                      ha="center", va="center", color="gray")

        # latency, else loss
        lat = _pts(run, "latency_ms")
        second, unit = (lat, "latency (ms)") if lat else (_pts(run, "loss_pct"), "loss (%)")
        for i, ns in enumerate(sorted(second)):
            a_lat.plot(*_xy(second[ns]), color=colors[i % len(colors)], lw=1.6,
                       marker="." if len(second[ns]) < 80 else None, label=ns)
        a_lat.set_ylabel(unit if lat or second else "latency (ms)")
        a_lat.set_ylim(bottom=0)
        if not second:
            a_lat.text(0.5, 0.5, "no latency or loss samples", transform=a_lat.transAxes,
                       ha="center", va="center", color="gray")
        elif not lat:
            a_lat.set_title("no latency samples recorded: loss of the commanded load shown",
                            fontsize=9, loc="left", color="dimgray")

        # instances per VNF (lines nudged apart so equal counts stay visible)
        inst = _pts(run, "instances")
        n = len(inst)
        for i, key in enumerate(sorted(inst)):
            t, v = _xy(inst[key])
            off = (i - (n - 1) / 2) * min(0.06, 0.3 / max(n, 1))
            a_inst.plot(t, [x + off for x in v], drawstyle="steps-post", lw=2,
                        color=colors[(i + 1) % len(colors)], label=key)
        a_inst.set_ylabel("instances per VNF")
        a_inst.yaxis.set_major_locator(MaxNLocator(integer=True))
        top = max([v for pts in inst.values() for _, v in pts] or [1])
        a_inst.set_ylim(-0.3, top + 0.6)
        if not inst:
            a_inst.text(0.5, 0.5, "no instance counts", transform=a_inst.transAxes,
                        ha="center", va="center", color="gray")
        a_inst.set_xlabel("time since run start (s)")
        a_inst.set_xlim(0, xmax)

        # markers
        for ax in (a_tp, a_lat, a_inst):
            for f in faults:
                ax.axvline(f["t"], color=FAULT, lw=1.4, zorder=1)
                end = ends.get(f.get("id"))
                if end is not None and end > f["t"]:
                    ax.axvspan(f["t"], end, color=FAULT, alpha=0.07, lw=0, zorder=0)
            for h in heals:
                ax.axvline(h["t"], color=RECOVERY, lw=1.4, ls="--", zorder=1)
            for e in outs:
                ax.axvline(e["t"], color=SCALING, lw=1.4, zorder=1)
            for e in ins:
                ax.axvline(e["t"], color=SCALING, lw=1.4, ls=":", zorder=1)

        for ax in (a_tp, a_lat, a_inst):
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
        markers = [Line2D([], [], color=FAULT, lw=1.4, label=f"fault ({len(faults)})"),
                   Patch(color=FAULT, alpha=0.15, label="fault active"),
                   Line2D([], [], color=RECOVERY, lw=1.4, ls="--",
                          label=f"healed / recovered ({len(heals)})"),
                   Line2D([], [], color=SCALING, lw=1.4, label=f"scale out ({len(outs)})"),
                   Line2D([], [], color=SCALING, lw=1.4, ls=":", label=f"scale in ({len(ins)})")]
        fig.legend(handles=markers, loc="outside lower center", ncols=5, frameon=False)

        title = f"{cfg.get('scenario', '?')} — seed {cfg.get('seed', '?')} — run {run.dir.name}"
        fig.suptitle(title, fontsize=13, fontweight="bold")
        fig.canvas.draw()   # lay out once, so fault labels can be placed without overlaps
        nrows = _label_faults(fig, a_tp, faults, xmax) if len(faults) <= MAX_FAULT_LABELS else 0
        if overloaded:
            a_tp.set_title(f"WARNING: emulation host overloaded (CPU idle down to "
                           f"{health['min_idle_pct'] or 0:.0f} %"
                           f"{', load sender behind' if health['senders_behind'] else ''}):"
                           f" timings are not trustworthy",
                           color=FAULT, fontweight="bold", fontsize=11,
                           pad=8 + nrows * ROW_PT)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    return path


# ---- comparisons across runs ------------------------------------------------------------------
def _items(runs) -> list[tuple[str | None, dict]]:
    """(label or None, summary) for Runs, summaries, (label, run) pairs or a {label: run} dict."""
    pairs = list(runs.items()) if isinstance(runs, dict) else \
        [r if isinstance(r, tuple) else (None, r) for r in runs]
    out = []
    for label, r in pairs:
        out.append((label, summarize(r) if isinstance(r, Run) else r))
    return out


def _labels(items: list[tuple[str | None, dict]]) -> list[str]:
    """Given labels, else what tells the runs apart: scenario, differing parameters, seed."""
    sums = [s for _, s in items]
    scen = {s.get("scenario") for s in sums}
    keys = sorted({k for s in sums for k in (s.get("params") or {})})
    diff = [k for k in keys if len({str((s.get("params") or {}).get(k)) for s in sums}) > 1]
    out = []
    for label, s in items:
        if label:
            out.append(str(label))
            continue
        parts = [str(s.get("scenario"))] if len(scen) > 1 or len(items) == 1 else []
        parts += [f"{k}={(s.get('params') or {}).get(k)}" for k in diff]
        parts.append(f"seed {s.get('seed')}")
        out.append(", ".join(parts))
    seen: dict[str, int] = {}
    for i, lb in enumerate(out):   # identical labels get the run id
        seen[lb] = seen.get(lb, 0) + 1
    return [f"{lb} ({s.get('run')})" if seen[lb] > 1 else lb for lb, (_, s) in zip(out, items)]


def plot_recovery_cdf(runs, path) -> Path:
    """CDF of recovery times (heal, else data-path restoration) in seconds, one line per run."""
    path = Path(path)
    items = _items(runs)
    labels = _labels(items)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
        drawn = 0
        for (label, s), name in zip(items, labels):
            vals = sorted(f["recovery_s"] for f in s.get("faults", [])
                          if f.get("recovery_s") is not None)
            if not vals:
                continue
            n = len(vals)
            xs = [vals[0]] + vals
            ys = [0.0] + [(i + 1) / n for i in range(n)]
            ax.step(xs, ys, where="post", lw=2, label=f"{name} (n={n})")
            ax.plot(vals, [(i + 1) / n for i in range(n)], "o", ms=4,
                    color=ax.lines[-1].get_color())
            drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no recovered faults in these runs", transform=ax.transAxes,
                    ha="center", va="center", color="gray")
        ax.set_xlabel("recovery time after the fault (s)")
        ax.set_ylabel("fraction of faults recovered")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(left=0)
        if drawn:
            ax.legend(loc="lower right")
        scen = sorted({str(s.get("scenario")) for _, s in items})
        ax.set_title("Recovery time CDF — " + ", ".join(scen), fontweight="bold")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    return path


def plot_compare(runs, path) -> Path:
    """Per run, the data-path outage (ms), time to detect and recovery time (s) of its faults:
    boxplots (points and a median line for fewer than ``MIN_BOX`` faults)."""
    path = Path(path)
    items = _items(runs)
    labels = ["\n".join(textwrap.wrap(lb, 22)) for lb in _labels(items)]
    panels = [("outage_ms", "data-path outage (ms)"), ("detect_s", "time to detect (s)"),
              ("recovery_s", "recovery time (s)")]
    rng = random.Random(0)
    width = max(11, 1.3 * len(items) * len(panels) * 0.9)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(min(width, 24), 5.5),
                                 layout="constrained")
        for ax, (field, unit) in zip(axes, panels):
            data = [[f[field] for f in s.get("faults", []) if f.get(field) is not None]
                    for _, s in items]
            pos = list(range(1, len(items) + 1))
            if any(data):
                box = [(p, d) for p, d in zip(pos, data) if len(d) >= MIN_BOX]
                if box:   # a box for runs with enough faults; every value shown as a point
                    ax.boxplot([d for _, d in box], positions=[p for p, _ in box], widths=0.55,
                               showfliers=False, medianprops={"color": "black", "lw": 2})
                for p, d in zip(pos, data):
                    ax.plot([p + rng.uniform(-0.12, 0.12) for _ in d], d, "o", ms=4,
                            alpha=0.6, color=SCALING)
                    if d and len(d) < MIN_BOX:
                        m = sorted(d)[len(d) // 2] if len(d) % 2 else \
                            (sorted(d)[len(d) // 2 - 1] + sorted(d)[len(d) // 2]) / 2
                        ax.plot([p - 0.25, p + 0.25], [m, m], color="black", lw=2)
                ax.set_ylim(bottom=0)
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center",
                        va="center", color="gray")
            ticks = [f"{lb}\nn={len(d)}" for lb, d in zip(labels, data)]
            ax.set_xticks(pos, ticks, rotation=30 if len(items) > 3 else 0,
                          ha="right" if len(items) > 3 else "center", fontsize=9)
            ax.set_xlim(0.4, len(items) + 0.6)
            ax.set_ylabel(unit)
            ax.set_title(unit.split(" (")[0].capitalize())
        scen = sorted({str(s.get("scenario")) for _, s in items})
        fig.suptitle(f"Comparison of {len(items)} run(s) — " + ", ".join(scen),
                     fontweight="bold")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
    return path


def _as_number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def plot_sweep(rows: list[dict], by: list[str], measures: list[tuple[str, str]], out_dir,
               title: str = "") -> list[Path]:
    """One figure per headline measure and swept parameter, ``<measure>-vs-<param>.png``:
    the mean over seeds with its 95 % confidence interval as error bars (``sweep.aggregate``
    rows), one series per combination of the other swept parameters (e.g. a healing
    policy). Numeric parameter values get a numeric axis, others one position each."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    params = list(by) or ["(none)"]
    for field, name in measures:
        for p in params:
            others = [k for k in by if k != p]
            xs = list(dict.fromkeys(str(r.get(p, "")) for r in rows))
            numeric = all(_as_number(x) is not None for x in xs)
            pos = {x: (_as_number(x) if numeric else i) for i, x in enumerate(xs)}
            series: dict[str, list[tuple[float, float, float]]] = {}
            for r in rows:
                m = r.get(f"{field}_mean")
                if m is None:
                    continue
                label = ", ".join(f"{k}={r.get(k)}" for k in others) or name
                series.setdefault(label, []).append(
                    (pos[str(r.get(p, ""))], m, r.get(f"{field}_ci95") or 0.0))
            with plt.rc_context(STYLE):
                fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
                n = max(1, len(series))
                for k, (label, pts) in enumerate(sorted(series.items())):
                    pts.sort()
                    # side by side at categorical positions, so error bars do not overlap
                    dx = 0.0 if numeric else (k - (n - 1) / 2) * min(0.25, 0.8 / n)
                    ax.errorbar([x + dx for x, _m, _h in pts], [m for _x, m, _h in pts],
                                yerr=[h for _x, _m, h in pts], marker="o", capsize=4,
                                color=PALETTE[k % len(PALETTE)], label=label,
                                ls="-" if numeric else "none")
                if not numeric:
                    ax.set_xticks(range(len(xs)), xs)
                    ax.set_xlim(-0.6, len(xs) - 0.4)
                if all(m >= 0 for pts in series.values() for _x, m, _h in pts):
                    ax.set_ylim(bottom=0)
                ax.set_xlabel(p)
                ax.set_ylabel(f"{name} (mean ± 95 % CI)")
                ax.set_title(f"{title}: {name} against {p}" if title else
                             f"{name} against {p}")
                if series:
                    ax.legend()
                else:
                    ax.text(0.5, 0.5, "no values", ha="center", transform=ax.transAxes)
                path = out_dir / f"{field}-vs-{p}.png"
                fig.savefig(path)
                plt.close(fig)
            paths.append(path)
    return paths
