"""Self-healing end to end, with packets: VNF crash, VNF hang and compute-node failure.

    sudo .venv/bin/python bench/heal.py [--reps 10] [--kinds vnf_crash vnf_hang compute_down]

Runs ``scenarios/heal_bench.py`` on the emulated NFVI (fat-tree k=4, the 3-VNF chain under
constant load, liveness and data-path healers). Crashes and hangs: one run per kind with
``--reps`` faults of the ``fwd`` VNF, ``--gap`` s apart. Compute-node failures: one run per
repetition (a failed node's instances move, so each run draws its node afresh from its
seed). Per fault it prints the engine's reaction split (``testbed.experiment.results``;
defined in results/README.md): ``detect`` (fault -> first observation), ``decide``
(observation -> heal decided), ``execute`` (heal operation start -> COMPLETED), the
largest data-path ``outage`` and ``restored`` = end of the fault's last probe gap - fault
time (the service carries packets again; a fault with no gap counts its ``heal_s``).
Last line: ``heal median s: crash X, hang Y, node Z``.

Only one emulation runs per machine: the bench waits for another process's run to end.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "heal_bench.py"
SHORT = {"vnf_crash": "crash", "vnf_hang": "hang", "compute_down": "node"}


def run_once(kind: str, reps: int, gap: float, seed: int, results: Path) -> list[dict]:
    """Run the scenario once (waiting for a free emulation slot); its per-fault rows."""
    from exclusive import run_exclusive  # bench/ is the script's folder: on sys.path

    from testbed.experiment.results import load_run, summarize

    first = 4.0
    duration = first + reps * gap
    run_dir = run_exclusive(SCENARIO, seed=seed, duration=duration, results=results,
                            overrides={"kind": kind, "reps": reps, "gap": gap, "first": first})
    summary = summarize(load_run(run_dir))
    health = summary["emulation"]
    rows = []
    for f in summary["faults"]:
        restored = f["restored_s"] if f["restored_s"] is not None else f["heal_s"]
        rows.append({**f, "restored": restored, "overloaded": health.get("overloaded"),
                     "min_idle_pct": health.get("min_idle_pct")})
    return rows


def _med(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _fmt(v, nd=3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--gap", type=float, default=4.0, help="s between faults of one run")
    ap.add_argument("--kinds", nargs="+", default=list(SHORT), choices=list(SHORT))
    ap.add_argument("--results", default=None, help="keep the runs here (default: temporary)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-heal-") as tmp:
        results = Path(args.results) if args.results else Path(tmp)
        medians: dict[str, float | None] = {}
        for kind in args.kinds:
            if kind == "compute_down":
                rows = [r for i in range(args.reps)
                        for r in run_once(kind, 1, args.gap, i + 1, results)]
            else:
                rows = run_once(kind, args.reps, args.gap, 1, results)
            for i, r in enumerate(rows):
                print(f"{kind:12s} rep {i + 1:2d}: detect {_fmt(r['detect_s'])} s, decide "
                      f"{_fmt(r['decide_s'])} s, execute {_fmt(r['execute_s'])} s, outage "
                      f"{_fmt(r['outage_ms'], 1)} ms, restored {_fmt(r['restored'])} s "
                      f"({r['heal_mode'] or 'no heal'}, target {r['target']}, lost "
                      f"{r['lost']}{', HOST OVERLOADED' if r['overloaded'] else ''})",
                      flush=True)
            print(f"{kind:12s} median: detect {_fmt(_med(rows, 'detect_s'))} s, decide "
                  f"{_fmt(_med(rows, 'decide_s'))} s, execute {_fmt(_med(rows, 'execute_s'))} "
                  f"s, outage {_fmt(_med(rows, 'outage_ms'), 1)} ms, restored "
                  f"{_fmt(_med(rows, 'restored'))} s over {len(rows)} faults", flush=True)
            medians[SHORT[kind]] = _med(rows, "restored")
    print("heal median s: " + ", ".join(f"{k} {_fmt(v)}" for k, v in medians.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
