"""``testbed fidelity``: one scenario on the emulated and the simulated NFVI, compared.

``run_fidelity(scenario, seeds=N)`` runs the scenario for seeds ``first_seed ..
first_seed+N-1`` on each NFVI (``testbed.experiment.engine.run_scenario``: the same engine,
MANO and measures), reads each run's ``summary.json`` scalars and writes, in ``out``:

- ``fidelity.csv``: one row per measure and NFVI (n, mean, 95 % CI, median, values) and the
  relative differences;
- ``fidelity.md``: the same as a table, the target check and the runs' folders;
- ``fidelity.png``: per measure, each NFVI's mean with its 95 % CI and the seeds' values.

Statistics (defined once here, and in ``results/README.md``, "Fidelity"):

- mean and 95 % confidence interval of n values: ``mean ± t_{0.975, n-1} · s / sqrt(n)``
  with ``s`` the sample standard deviation (n − 1 in the denominator) and ``t`` the
  Student t quantile (Student 1908; e.g. NIST/SEMATECH e-Handbook of Statistical Methods,
  1.3.5.2 "Confidence limits for the mean"); no interval for fewer than 2 values;
- relative difference of the simulated value to the emulated one:
  ``100 · (sim − emu) / |emu|`` percent; 0 when both are 0, undefined (None) when only
  the emulated one is 0 or either is missing.
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import math
import os
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from scipy.stats import t as student_t

from testbed.errors import TestbedError
from testbed.experiment.engine import run_scenario
from testbed.experiment.plots import STYLE

NFVIS = ("emulated", "simulated")
# (name in the table, summary.json scalar, unit); the scalars are defined in results/README.md
MEASURES = (
    ("outage", "outage_ms_median", "ms"),
    ("lost packets", "lost_total", "packets"),
    ("detect time", "detect_s_median", "s"),
    ("heal time", "heal_s_median", "s"),
    ("scale-out reaction", "reaction_s_median", "s"),
    ("throughput", "throughput_pps_mean", "packets/s"),
    ("latency", "latency_ms_median", "ms"),
)
# the target: simulated medians within TARGET_PCT of the emulated ones for these
TARGET_MEASURES = ("outage", "heal time", "scale-out reaction")
TARGET_PCT = 10.0
COLOURS = {"emulated": "#ff7f0e", "simulated": "#9467bd"}


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """The mean of ``values`` and the half-width of its ``level`` confidence interval,
    ``t_{(1+level)/2, n-1} · s / sqrt(n)`` (Student's t; ``s`` the sample standard deviation,
    n − 1 in its denominator). ``(None, None)`` for no value, ``(mean, None)`` for one.
    Raises ``ValueError`` for a level outside (0, 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level {level!r}: expected a number in (0, 1)")
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return None, None
    mean = statistics.fmean(vals)
    if n < 2:
        return mean, None
    s = statistics.stdev(vals)
    return mean, float(student_t.ppf((1.0 + level) / 2.0, n - 1)) * s / math.sqrt(n)


def relative_difference(sim: float | None, emu: float | None) -> float | None:
    """``100 · (sim − emu) / |emu|`` percent; 0.0 when both are 0; None when either is
    missing or only ``emu`` is 0 (the difference has no scale)."""
    if sim is None or emu is None:
        return None
    if emu == 0:
        return 0.0 if sim == 0 else None
    return 100.0 * (sim - emu) / abs(emu)


@dataclass
class Side:
    """One measure on one NFVI: the values of the seeds that measured it."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return mean_ci(self.values)[0]

    @property
    def ci(self) -> float | None:
        return mean_ci(self.values)[1]

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


def compare(summaries: dict[str, list[dict]]) -> list[dict]:
    """Per measure of ``MEASURES``: ``{"measure", "unit", "key", "emulated": Side,
    "simulated": Side, "rel_mean_pct", "rel_median_pct"}`` from each NFVI's run summaries
    (``summary.json`` documents; a run where a measure is None does not count for it)."""
    rows = []
    for name, key, unit in MEASURES:
        sides = {k: Side([s["scalars"][key] for s in summaries.get(k, [])
                          if s.get("scalars", {}).get(key) is not None]) for k in NFVIS}
        rows.append({"measure": name, "unit": unit, "key": key, **sides,
                     "rel_mean_pct": relative_difference(sides["simulated"].mean,
                                                         sides["emulated"].mean),
                     "rel_median_pct": relative_difference(sides["simulated"].median,
                                                           sides["emulated"].median)})
    return rows


def max_difference(rows: list[dict]) -> tuple[float | None, str | None]:
    """The largest |relative difference of the means| over the measures, and its measure."""
    defined = [(abs(r["rel_mean_pct"]), r["measure"]) for r in rows
               if r["rel_mean_pct"] is not None]
    return max(defined) if defined else (None, None)


def _num(v, nd: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{nd}g}" if abs(v) < 1e4 else f"{v:.0f}"


def _pct(v) -> str:
    return "–" if v is None else f"{v:+.1f} %"


def write_csv(rows: list[dict], path: Path) -> None:
    """One row per measure and NFVI: measure, unit, nfvi, n, mean, ci95 (half-width),
    median, values (seeds' values, ';'-separated), rel_mean_pct, rel_median_pct."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["measure", "unit", "nfvi", "n", "mean", "ci95", "median", "values",
                    "rel_mean_pct", "rel_median_pct"])
        for r in rows:
            for k in NFVIS:
                sd = r[k]
                w.writerow([r["measure"], r["unit"], k, sd.n, sd.mean, sd.ci, sd.median,
                            ";".join(f"{v:g}" for v in sd.values), r["rel_mean_pct"],
                            r["rel_median_pct"]])


def markdown(scenario: str, rows: list[dict], seeds: list[int], runs: dict[str, list[str]],
             calibration: str | None) -> str:
    """fidelity.md: the table of means ± 95 % CI, medians and relative differences, the
    target check on the medians, and the runs it read."""
    intro = (f"Seeds {', '.join(map(str, seeds))} on each NFVI; calibration of the simulated "
             f"NFVI: `{calibration or 'the shipped default'}`. Mean ± half-width of the 95 % "
             f"confidence interval (Student's t), median, and the relative difference "
             f"100·(sim − emu)/|emu| of the means and of the medians.")
    head = ("| measure | unit | emulated mean ± CI | simulated mean ± CI | emulated median | "
            "simulated median | rel. diff. means | rel. diff. medians |")
    out = [f"# Fidelity of `{scenario}`: emulated vs simulated NFVI", "", intro, "", head,
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e, s = r["emulated"], r["simulated"]
        out.append(f"| {r['measure']} | {r['unit']} | {_num(e.mean)} ± {_num(e.ci, 2)} "
                   f"(n={e.n}) | {_num(s.mean)} ± {_num(s.ci, 2)} (n={s.n}) | "
                   f"{_num(e.median)} | {_num(s.median)} | {_pct(r['rel_mean_pct'])} | "
                   f"{_pct(r['rel_median_pct'])} |")
    out += ["", f"Target: medians of {', '.join(TARGET_MEASURES)} within {TARGET_PCT:g} %:", ""]
    for r in rows:
        if r["measure"] in TARGET_MEASURES:
            d = r["rel_median_pct"]
            verdict = ("not measured by this scenario" if d is None
                       else "within" if abs(d) <= TARGET_PCT else "NOT within")
            out.append(f"- {r['measure']}: {_pct(d)} ({verdict})")
    out += ["", "Runs:", ""]
    for k in NFVIS:
        out.append(f"- {k}: " + (", ".join(f"`{p}`" for p in runs.get(k, [])) or "none"))
    return "\n".join(out) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Per measure, each NFVI's mean with its 95 % CI as an error bar and the seeds' values
    as points."""
    shown = [r for r in rows if r["emulated"].n or r["simulated"].n]
    with plt.rc_context(STYLE):
        cols = min(4, max(1, len(shown)))
        nrows = max(1, math.ceil(len(shown) / cols))
        fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.0 * nrows),
                                 squeeze=False)
        for ax in axes.flat[len(shown):]:
            ax.set_visible(False)
        for ax, r in zip(axes.flat, shown):
            for i, k in enumerate(NFVIS):
                sd = r[k]
                if not sd.n:
                    continue
                ax.errorbar([i], [sd.mean], yerr=[[sd.ci or 0.0], [sd.ci or 0.0]], fmt="o",
                            color=COLOURS[k], capsize=6, markersize=7)
                ax.plot([i + 0.15] * sd.n, sd.values, "x", color=COLOURS[k], alpha=0.7)
            ax.set_xticks(range(len(NFVIS)), NFVIS)
            ax.set_xlim(-0.5, len(NFVIS) - 0.5)
            ax.set_title(f"{r['measure']} ({_pct(r['rel_mean_pct'])})")
            ax.set_ylabel(r["unit"])
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def check_emulated_possible(what: str = "testbed fidelity runs the scenario on the "
                                        "emulated NFVI too, which") -> None:
    """Raise ``TestbedError`` unless the emulated NFVI can run here (root, Open vSwitch,
    Mininet); ``what`` starts the message (who needs them)."""
    if os.geteuid() != 0:
        raise TestbedError(f"{what} needs root (Mininet and Open vSwitch do); run it with sudo")
    if shutil.which("ovs-vsctl") is None or shutil.which("mn") is None:
        raise TestbedError(f"{what} needs Open vSwitch (ovs-vsctl) and Mininet (mn); they are "
                           f"not installed here (scripts/install.sh installs them)")
    if importlib.util.find_spec("mininet") is None:
        raise TestbedError(f"{what} needs the mininet Python module (Debian's "
                           f"python3-mininet; scripts/install.sh installs it)")


def wait_for_emulation_slot(progress=print, timeout_s: float = 1200.0) -> None:
    """The machine holds one emulation at a time: wait (up to ``timeout_s``) while another
    process's run is active, then return; raise ``TestbedError`` if it stays active. The
    emulator's run registry is imported here, by name, because only the emulated NFVI may
    import Mininet (``testbed.nfvi``'s rule)."""
    registry = importlib.import_module("testbed.emulator.registry")
    deadline = time.monotonic() + timeout_s
    told = False
    while others := [r for r in registry.live_runs() if r.owner_pid != os.getpid()]:
        if time.monotonic() > deadline:
            raise TestbedError(f"another testbed run (run {others[0].run_id}, pid "
                               f"{others[0].owner_pid}) stayed active for {timeout_s:.0f} s; "
                               f"try again when it has ended")
        if not told:
            progress(f"waiting for another testbed run to end (run {others[0].run_id}, pid "
                     f"{others[0].owner_pid}): one emulation at a time")
            told = True
        time.sleep(2.0)


BUSY = "another testbed run is active"   # the emulator's refusal (testbed/emulator/net.py)
SLOT_TRIES = 5


def _run_one(scenario, seed, kind, duration, overrides, results_dir, calibration, progress):
    """One run; an emulated one waits for the machine's emulation slot, and is tried again
    (up to SLOT_TRIES times) when another process took the slot between the wait and the
    start (the emulator refuses a second emulation before it makes anything)."""
    for attempt in range(1, SLOT_TRIES + 1):
        if kind == "emulated":
            wait_for_emulation_slot(progress)
        try:
            return run_scenario(scenario, seed=seed, duration=duration, overrides=overrides,
                                results_dir=results_dir, nfvi=kind, calibration=calibration)
        except TestbedError as exc:
            if kind != "emulated" or BUSY not in str(exc) or attempt == SLOT_TRIES:
                raise
            progress(f"another run took the emulation slot first; trying again "
                     f"({attempt}/{SLOT_TRIES - 1})")
    raise AssertionError("unreachable")


def run_fidelity(scenario: str | Path, *, seeds: int, first_seed: int = 1,
                 out: str | Path | None = None, results_dir: str | Path = "results",
                 calibration: str | Path | None = None, duration: float | None = None,
                 overrides: dict | None = None, progress=print) -> tuple[Path, str]:
    """Run ``scenario`` for ``seeds`` seeds on each NFVI (emulated first), write
    fidelity.md/.csv/.png into ``out`` (default ``results_dir/<scenario>/fidelity``) and
    return (the folder, the last line ``fidelity SCENARIO: max relative difference X %
    (MEASURE)``). Raises ``TestbedError`` when the emulated NFVI cannot run here, for
    seeds < 2 (no interval), or when every run of one NFVI failed."""
    if seeds < 2:
        raise TestbedError(f"--seeds {seeds}: a confidence interval needs at least 2 seeds")
    check_emulated_possible()
    name = Path(scenario).stem
    out = Path(out) if out is not None else Path(results_dir) / name / "fidelity"
    seed_list = list(range(first_seed, first_seed + seeds))
    summaries: dict[str, list[dict]] = {k: [] for k in NFVIS}
    runs: dict[str, list[str]] = {k: [] for k in NFVIS}
    failed = []
    for kind in NFVIS:
        for seed in seed_list:
            progress(f"fidelity {name}: {kind} seed {seed} ...")
            try:
                run_dir = _run_one(scenario, seed, kind, duration, overrides, results_dir,
                                   calibration if kind == "simulated" else None, progress)
            except TestbedError as exc:
                failed.append(f"{kind} seed {seed}: {exc}")
                progress(f"fidelity {name}: {kind} seed {seed} failed: {exc}")
                continue
            summaries[kind].append(json.loads((run_dir / "summary.json").read_text()))
            runs[kind].append(str(run_dir))
        if not summaries[kind]:
            raise TestbedError(f"fidelity {name}: every {kind} run failed:\n  "
                               + "\n  ".join(failed))
    rows = compare(summaries)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "fidelity.csv")
    text = markdown(name, rows, seed_list, runs, None if calibration is None
                    else str(calibration))
    if failed:
        text += "\nFailed runs (left out):\n\n" + "".join(f"- {f}\n" for f in failed)
    (out / "fidelity.md").write_text(text)
    plot(rows, out / "fidelity.png", f"{name}: emulated vs simulated, {seeds} seeds, "
                                     f"mean ± 95 % CI")
    worst, measure = max_difference(rows)
    last = (f"fidelity {name}: max relative difference "
            f"{'n/a' if worst is None else f'{worst:.1f}'} % ({measure or 'no measure'})")
    return out, last
