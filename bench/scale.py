"""Scale-out: from the decision to the new instance carrying its share, with packets.

    sudo .venv/bin/python bench/scale.py [--reps 10]

Runs ``scenarios/autoscale_flash_crowd.py`` on the emulated NFVI once per repetition (seed
1, 2, ...; each run one flash crowd, so one scale-out), shortened to the step and the
scale-out. Per run it prints the engine's reaction split (``testbed.experiment.results``,
defined in results/README.md): ``detect`` (load step -> threshold crossing observed),
``decide`` (crossing -> scale-out decided), ``execute`` (operation start -> COMPLETED),
``served`` (step -> the first ``packets_rate`` sample of the new instance, measured at the
instance by the NFVO's monitor, that is at least half the VNF's mean rate per instance) and
what this bench reports, ``decision->served`` = served - (decided - step). The monitor
samples every 0.5 s, so ``served`` is known to that resolution (a sample marks the end of
the interval it measured). Last line: ``scale-out median s: X`` (decision->served).

Only one emulation runs per machine: the bench waits for another process's run to end.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "autoscale_flash_crowd.py"


def run_once(seed: int, results: Path, duration: float) -> list[dict]:
    """One run (waiting for a free emulation slot); its scale-out rows."""
    from exclusive import run_exclusive  # bench/ is the script's folder: on sys.path

    from testbed.experiment.results import load_run, summarize

    run_dir = run_exclusive(SCENARIO, seed=seed, duration=duration,
                            overrides={"at": 4.0, "hold": duration}, results=results)
    summary = summarize(load_run(run_dir))
    rows = []
    for s in summary["scaling"]["steps"]:
        if s["direction"] != "up" or s["action_t"] is None:
            continue
        served = s["served_s"]
        s["from_decision"] = (served - (s["action_t"] - s["t"])) if served is not None else None
        s["overloaded"] = summary["emulation"].get("overloaded")
        rows.append(s)
    return rows


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--duration", type=float, default=10.0, help="s of each run")
    ap.add_argument("--results", default=None, help="keep the runs here (default: temporary)")
    args = ap.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        results = Path(args.results) if args.results else Path(tmp)
        for i in range(args.reps):
            got = run_once(i + 1, results, args.duration)
            if not got:
                print(f"scale-out rep {i + 1:2d}: no scale-out answered the load step",
                      flush=True)
            for r in got:
                rows.append(r)
                print(f"scale-out rep {i + 1:2d}: detect {_fmt(r['detect_s'])} s, decide "
                      f"{_fmt(r['decide_s'])} s, execute {_fmt(r['execute_s'])} s, served "
                      f"{_fmt(r['served_s'])} s after the step, decision->served "
                      f"{_fmt(r['from_decision'])} s"
                      f"{' (HOST OVERLOADED)' if r['overloaded'] else ''}", flush=True)
    vals = [r["from_decision"] for r in rows if r["from_decision"] is not None]
    for key in ("detect_s", "decide_s", "execute_s", "served_s"):
        xs = [r[key] for r in rows if r[key] is not None]
        print(f"median {key[:-2]}: {_fmt(statistics.median(xs) if xs else None)} s")
    med = statistics.median(vals) if vals else None
    print(f"scale-out median s: {_fmt(med)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
