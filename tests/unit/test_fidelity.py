"""testbed fidelity's statistics (Student-t intervals, relative differences), its table,
CSV and plot, its refusal without root, and the --calibration option reaching the
simulated NFVI (and refused for the emulated one)."""
from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest

from testbed import cli, fidelity
from testbed.errors import TestbedError
from testbed.experiment.engine import run_scenario
from testbed.nfvi.simulated.calibration import DEFAULT_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_mean_ci_uses_students_t():
    """Three values 1, 2, 3: mean 2, s = 1, half-width t(0.975, 2) · 1/sqrt(3) with the
    table value t(0.975, 2) = 4.303 (NIST e-Handbook, table of Student's t)."""
    mean, half = fidelity.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)


def test_mean_ci_tends_to_the_normal_interval_and_handles_few_values():
    """Many values: t(0.975, n-1) tends to 1.96; one value: no interval; none: nothing;
    identical values: a zero-width interval; a level outside (0, 1) is refused."""
    vals = [float(i % 2) for i in range(10000)]          # s ~ 0.5
    mean, half = fidelity.mean_ci(vals)
    assert mean == pytest.approx(0.5)
    assert half == pytest.approx(1.96 * 0.5 / 100, rel=1e-2)
    assert fidelity.mean_ci([4.0]) == (4.0, None)
    assert fidelity.mean_ci([]) == (None, None)
    assert fidelity.mean_ci([3.0, 3.0, 3.0]) == (3.0, 0.0)
    with pytest.raises(ValueError, match="confidence level"):
        fidelity.mean_ci([1.0, 2.0], level=95)


def test_relative_difference_definition():
    """100 (sim - emu) / |emu|; 0 when both are 0; None without a scale or a value."""
    assert fidelity.relative_difference(110.0, 100.0) == pytest.approx(10.0)
    assert fidelity.relative_difference(90.0, 100.0) == pytest.approx(-10.0)
    assert fidelity.relative_difference(-1.5, -1.0) == pytest.approx(-50.0)
    assert fidelity.relative_difference(0.0, 0.0) == 0.0
    assert fidelity.relative_difference(1.0, 0.0) is None
    assert fidelity.relative_difference(None, 1.0) is None
    assert fidelity.relative_difference(1.0, None) is None


def _summary(**scalars) -> dict:
    base = {key: None for _n, key, _u in fidelity.MEASURES}
    return {"scalars": {**base, **scalars}}


def test_compare_and_outputs(tmp_path):
    """compare() pairs each NFVI's seeds per measure (a None is left out), the largest
    |relative difference of means| names its measure, and the CSV, markdown and plot are
    written with those numbers."""
    summaries = {
        "emulated": [_summary(outage_ms_median=20.0, heal_s_median=1.0),
                     _summary(outage_ms_median=30.0, heal_s_median=None)],
        "simulated": [_summary(outage_ms_median=27.5, heal_s_median=1.05),
                      _summary(outage_ms_median=22.5, heal_s_median=None)],
    }
    rows = {r["measure"]: r for r in fidelity.compare(summaries)}
    assert rows["outage"]["emulated"].values == [20.0, 30.0]
    assert rows["outage"]["rel_mean_pct"] == pytest.approx(0.0)
    assert rows["heal time"]["emulated"].n == 1
    assert rows["heal time"]["rel_mean_pct"] == pytest.approx(5.0)
    assert rows["latency"]["rel_mean_pct"] is None
    worst, measure = fidelity.max_difference(list(rows.values()))
    assert (round(worst, 6), measure) == (5.0, "heal time")

    rowlist = list(rows.values())
    fidelity.write_csv(rowlist, tmp_path / "f.csv")
    with open(tmp_path / "f.csv") as f:
        recs = list(csv.DictReader(f))
    assert len(recs) == 2 * len(fidelity.MEASURES)
    out = next(r for r in recs if r["measure"] == "outage" and r["nfvi"] == "simulated")
    assert float(out["mean"]) == 25.0 and out["values"] == "27.5;22.5"
    assert float(out["ci95"]) == pytest.approx(12.706 * 2.5, abs=1e-2)  # s / sqrt(2) = 2.5
    md = fidelity.markdown("x", rowlist, [1, 2], {"emulated": ["a"], "simulated": ["b"]}, None)
    assert "| heal time | s |" in md and "+5.0 %" in md
    assert "- heal time: +5.0 % (within)" in md
    assert "- scale-out reaction: – (not measured by this scenario)" in md
    fidelity.plot(rowlist, tmp_path / "f.png", "x")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_fidelity_refuses_without_root(monkeypatch, capsys):
    """Without root, `testbed fidelity` says the emulated NFVI needs root and runs
    nothing (exit 2)."""
    monkeypatch.setattr(fidelity.os, "geteuid", lambda: 1000)
    rc = cli.main(["fidelity", "scenarios/chain_heal_link.py", "--seeds", "2"])
    assert rc == 2
    assert re.search(r"emulated NFVI too, which needs root", capsys.readouterr().err)


def test_fidelity_needs_two_seeds():
    """One seed gives no interval: refused before anything runs."""
    with pytest.raises(TestbedError, match="at least 2 seeds"):
        fidelity.run_fidelity(ROOT / "scenarios/chain_heal_link.py", seeds=1)


def test_calibration_option_reaches_the_simulated_nfvi(tmp_path):
    """A calibration file with a 100 ms reroute makes the simulated link-cut outage about
    105 ms (port status 5 ms + reroute), against about 17 ms with the default file."""
    doc = json.loads(DEFAULT_PATH.read_text())
    doc["values"]["reroute_s"]["value"] = 0.1
    doc["values"]["port_status_s"]["value"] = 0.005
    cal = tmp_path / "slow.json"
    cal.write_text(json.dumps(doc))
    run = run_scenario(ROOT / "scenarios/chain_heal_link.py", seed=1, duration=8,
                       results_dir=tmp_path, nfvi="simulated", calibration=cal)
    s = json.loads((run / "summary.json").read_text())
    assert s["scalars"]["outage_ms_median"] == pytest.approx(105.0, abs=3.0)
    assert json.loads((run / "config.json").read_text())["calibration"] == str(cal)


def test_calibration_option_refused_for_the_emulated_nfvi(tmp_path):
    """--calibration on the emulated NFVI is an error naming the option, not ignored."""
    with pytest.raises(TestbedError, match=r"--calibration .*simulated NFVI only"):
        run_scenario(ROOT / "scenarios/chain_heal_link.py", seed=1, results_dir=tmp_path,
                     nfvi="emulated", calibration=DEFAULT_PATH)


def test_bad_calibration_file_fails_the_run_naming_the_field(tmp_path):
    """A calibration file with a bad value stops a simulated run with the file and field."""
    doc = json.loads(DEFAULT_PATH.read_text())
    doc["values"]["instance_create_s"]["value"] = "fast"
    cal = tmp_path / "bad.json"
    cal.write_text(json.dumps(doc))
    with pytest.raises(TestbedError, match=r"bad\.json: values\.instance_create_s\.value"):
        run_scenario(ROOT / "scenarios/chain_heal_link.py", seed=1, duration=3,
                     results_dir=tmp_path, nfvi="simulated", calibration=cal)
