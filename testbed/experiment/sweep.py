"""Aggregating a sweep: runs grouped by parameter values, means with 95 % confidence intervals."""
from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

try:
    from scipy import stats as _stats
except ImportError:   # scipy is optional: a t-table does the same for the sizes sweeps have
    _stats = None

# two-sided 95 % Student t critical values, df = 1..30; beyond that the normal 1.96
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_critical(df: int) -> float:
    """The two-sided 95 % Student t critical value for ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("a confidence interval needs at least two values")
    if _stats is not None:
        return float(_stats.t.ppf(0.975, df))
    return _T95[df - 1] if df <= len(_T95) else 1.96


def ci95(values) -> tuple[float | None, float | None]:
    """Mean and the half-width of its 95 % confidence interval (None when undefined)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None, None
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return mean, None
    return mean, t_critical(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))


def _value(summary: dict, key: str):
    params = summary.get("params") or {}
    return params[key] if key in params else summary.get(key)


def _numeric(summary: dict) -> dict[str, float | None]:
    """A summary's numeric fields: its ``scalars`` if it has them, else its top-level numbers."""
    src = summary.get("scalars")
    if not isinstance(src, dict):
        src = {k: v for k, v in summary.items() if k not in ("seed", "duration")}
    out = {}
    for k, v in src.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) or v is None:
            out[k] = v
    return out


def _sort_key(key: tuple):
    return tuple((0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool)
                 else (1, 0, str(v)) for v in key)


def aggregate(summaries: list[dict], by: list[str]) -> list[dict]:
    """One row per combination of the ``by`` parameters: the number of runs and, per numeric
    summary field, ``<field>_mean``, ``<field>_ci95`` (half-width) and ``<field>_n``."""
    groups: dict[tuple, list[dict]] = {}
    for s in summaries:
        groups.setdefault(tuple(_value(s, k) for k in by), []).append(s)
    fields: list[str] = []
    for s in summaries:
        for f in _numeric(s):
            if f not in fields:
                fields.append(f)
    rows = []
    for key in sorted(groups, key=_sort_key):
        runs = groups[key]
        row = dict(zip(by, key))
        row["runs"] = len(runs)
        row["seeds"] = sorted({s.get("seed") for s in runs if s.get("seed") is not None},
                              key=str)
        for f in fields:
            vals = [_numeric(s).get(f) for s in runs]
            vals = [v for v in vals if v is not None]
            mean, half = ci95(vals)
            row[f"{f}_mean"] = None if mean is None else round(mean, 6)
            row[f"{f}_ci95"] = None if half is None else round(half, 6)
            row[f"{f}_n"] = len(vals)
        rows.append(row)
    return rows


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return " ".join(map(str, v))
    return str(v)


def write_table(rows: list[dict], path_csv, path_md) -> tuple[Path, Path]:
    """Write aggregated rows as CSV (every column) and Markdown (``mean ± ci`` per field,
    fields with no value anywhere left out)."""
    path_csv, path_md = Path(path_csv), Path(path_md)
    cols: list[str] = []
    for r in rows:
        for c in r:
            if c not in cols:
                cols.append(c)
    with open(path_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in cols])

    fields = [c[:-5] for c in cols if c.endswith("_mean")
              and any(r.get(c) is not None for r in rows)]
    keys = [c for c in cols if not any(c == f"{f}{s}" for f in
                                       [x[:-5] for x in cols if x.endswith("_mean")]
                                       for s in ("_mean", "_ci95", "_n"))]
    head = keys + [f"{f} (mean ± 95% CI)" for f in fields]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [_cell(r.get(k)) for k in keys]
        for f in fields:
            m, h = r.get(f"{f}_mean"), r.get(f"{f}_ci95")
            cells.append("–" if m is None else f"{m:.4g}" + (f" ± {h:.2g}" if h is not None
                                                             else " (n=1)"))
        lines.append("| " + " | ".join(cells) + " |")
    path_md.write_text("\n".join(lines) + "\n")
    return path_csv, path_md


# The headline measures of a sweep (summary scalars, see ``results.summarize``) and their
# short names: the narrow table shows the first ``BRIEF_MEASURES`` of them that have a value,
# and each one with a value gets a plot against every swept parameter.
HEADLINE = (("outage_ms_median", "outage ms"), ("heal_s_median", "heal s"),
            ("reaction_s_median", "reaction s"), ("lost_total", "lost"),
            ("availability_min", "availability"), ("sla_violation_s", "SLA viol. s"))
BRIEF_MEASURES = 4


def headline(rows: list[dict]) -> list[tuple[str, str]]:
    """The headline measures (field, short name) that have a mean in some row."""
    return [(f, name) for f, name in HEADLINE
            if any(r.get(f"{f}_mean") is not None for r in rows)]


def _mean_ci(m, h) -> str:
    if m is None:
        return "–"
    return f"{m:.3g}" + (f" ± {h:.2g}" if h is not None else "")


def write_brief(rows: list[dict], by: list[str], path_md) -> Path:
    """A Markdown table narrow enough for a terminal (about 100 columns for two swept
    parameters): the swept parameters, the number of runs and up to ``BRIEF_MEASURES``
    headline measures as ``mean ± 95 % CI half-width`` (every field is in the CSV)."""
    path_md = Path(path_md)
    measures = headline(rows)[:BRIEF_MEASURES]
    head = list(by) + ["runs"] + [name for _f, name in measures]
    body = [[_cell(r.get(k)) for k in by] + [str(r["runs"])]
            + [_mean_ci(r.get(f"{f}_mean"), r.get(f"{f}_ci95")) for f, _n in measures]
            for r in rows]
    width = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, width)) + " |",
             "|" + "|".join("-" * (w + 2) for w in width) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(b, width)) + " |" for b in body]
    path_md.write_text("\n".join(lines) + "\n")
    return path_md
