"""testbed fidelity and testbed calibrate on the real emulated NFVI, through the CLI (root,
Open vSwitch and Mininet; the conftest skips with the reason where they are missing)."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

from testbed.nfvi.simulated.calibration import FIELDS, load_calibration

ROOT = Path(__file__).resolve().parents[2]


def _testbed(*args, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_fidelity_two_seeds_writes_table_csv_plot_and_last_line(tmp_path):
    """A short link-cut scenario over 2 seeds on both NFVIs writes fidelity.md, .csv and
    .png with 2 runs a side, and the last printed line names the largest difference."""
    out = tmp_path / "fid"
    r = _testbed("fidelity", "scenarios/chain_heal_link.py", "--seeds", "2",
                 "--duration", "6", "--set", "cut_at=2", "--set", "down_for=2",
                 "--results", str(tmp_path / "results"), "--out", str(out), timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"fidelity chain_heal_link: max relative difference "
                        r"\d+(\.\d)? % \([a-z -]+\)", last), last
    md = (out / "fidelity.md").read_text()
    assert "| outage | ms |" in md and "(n=2)" in md
    with open(out / "fidelity.csv") as f:
        rows = {(r["measure"], r["nfvi"]): r for r in csv.DictReader(f)}
    for nfvi in ("emulated", "simulated"):
        assert rows[("throughput", nfvi)]["n"] == "2", md
        assert float(rows[("throughput", nfvi)]["mean"]) > 0
    # the model always loses the cut's packets; a real reroute may only delay them (no gap)
    assert rows[("outage", "simulated")]["n"] == "2"
    assert (out / "fidelity.png").read_bytes()[:4] == b"\x89PNG"


def test_calibrate_quick_writes_a_file_the_simulated_nfvi_reads(tmp_path):
    """testbed calibrate --quick measures the emulated NFVI and writes a calibration file
    that loads, records its command, machine and repetitions, and has measured (not
    carried-over) timings; a simulated run accepts it."""
    path = tmp_path / "cal.json"
    r = _testbed("calibrate", "--quick", "--out", str(path), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cal = load_calibration(path)
    doc = json.loads(path.read_text())
    assert doc["command"].startswith("testbed calibrate --quick")
    assert doc["repetitions"] == 2 and doc["machine"]["cpus"] >= 1
    for name in ("instance_create_s", "graph_program_s", "reroute_s", "ff_switchover_s",
                 "instance_down_detect_s", "instance_restart_s"):
        assert "testbed calibrate" in doc["values"][name]["source"], name
    assert 0 < cal.instance_create_s < 10 and 0 < cal.reroute_s < 2
    assert all(cal.program_base_cost_us[p] > 0 for p in ("forwarder", "firewall"))
    assert set(FIELDS) <= set(doc["values"])
    run = _testbed("run", "scenarios/chain_heal_link.py", "--nfvi", "simulated",
                   "--duration", "4", "--calibration", str(path),
                   "--results", str(tmp_path / "results"), timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
