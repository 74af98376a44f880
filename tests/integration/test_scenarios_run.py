"""Every shipped scenario runs end to end in a short mode (real emulation, real packets)
and its summary is plausible; plots are written; nothing is left behind."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    # scenario: (duration s, extra --set, check on the summary)
    "chain_heal_link": (15, [], lambda s: 0 < s["faults"][0]["outage_ms"] < 2000),
    "autoscale_flash_crowd": (22, ["hold=10"], lambda s: s["scaling"]["scale_outs"] >= 1),
    "compute_node_failure": (15, [], lambda s: s["faults"][0]["heal_s"] is not None
                             and s["faults"][0]["detect_s"] is not None),
    "chaos_soak": (30, ["mtbf=8"], lambda s: s["healthy_at_end"] is True
                   and len(s["faults"]) >= 1),
    "fault_catalogue": (40, [], lambda s: {f["fault"] for f in s["faults"]} >= {
        "link_down", "vnf_hang", "controller_restart", "vnf_crash", "nfvo_restart",
        "switch_down"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scenario_runs_and_its_summary_is_plausible(name, tmp_path):
    """`testbed run` exits 0, writes config/timeline/events/metrics/summary/plots, the
    scenario's own checks pass, and the summary holds what the scenario is about."""
    duration, sets, plausible = CASES[name]
    argv = [sys.executable, "-m", "testbed.cli", "run", str(ROOT / "scenarios" / f"{name}.py"),
            "--duration", str(duration), "--seed", "3", "--results", str(tmp_path)]
    for s in sets:
        argv += ["--set", s]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (run,) = list((tmp_path / name).iterdir())
    for f in ("config.json", "timeline.json", "events.jsonl", "metrics.csv", "summary.json",
              "summary.md", "timeline.png", "recovery_cdf.png"):
        assert (run / f).stat().st_size > 0, f
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 3 and summary["passed"] and summary["leftovers"] == []
    assert plausible(summary), json.dumps(summary, indent=1)[:3000]
    assert (run / "timeline.png").stat().st_size > 20_000


def test_sweep_runs_a_grid_and_report_redraws_and_compares(tmp_path):
    """`testbed sweep` runs parameters x seeds with a progress bar and aggregates them with
    confidence intervals; `testbed report` re-draws the runs and compares them; the same
    seed gives the same fault timeline in both runs that share it."""
    r = subprocess.run([sys.executable, "-m", "testbed.cli", "sweep",
                        str(ROOT / "scenarios" / "chain_heal_link.py"), "--grid",
                        "rate=300,500", "--seeds", "1", "--seed", "5", "--duration", "10",
                        "--set", "cut_at=4", "--results", str(tmp_path)],
                       capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2/2" in r.stdout
    sweep_md = (tmp_path / "chain_heal_link" / "sweep" / "sweep.md").read_text()
    assert "300" in sweep_md and "500" in sweep_md
    runs = sorted(p for p in (tmp_path / "chain_heal_link").iterdir() if p.name != "sweep")
    assert len(runs) == 2
    t1, t2 = (json.loads((p / "timeline.json").read_text())["faults"] for p in runs)
    assert t1 == t2
    rep = subprocess.run([sys.executable, "-m", "testbed.cli", "report", *map(str, runs),
                          "--out", str(tmp_path / "report")], capture_output=True, text=True,
                         timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "report" / "compare.png").stat().st_size > 10_000
