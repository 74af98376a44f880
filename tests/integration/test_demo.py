"""The README's main job end to end: `testbed demo` measures a real outage and writes it."""
from __future__ import annotations

import json
import subprocess
import sys


def test_demo_measures_the_outage_and_writes_results(tmp_path):
    """The demo brings up fat-tree k=4, cuts a link under a VNF chain, and writes a summary
    whose outage is bounded (a reroute may lose packets or only delay them: the largest gap
    in arrivals is above zero), with traffic flowing again after the restore."""
    r = subprocess.run([sys.executable, "-m", "testbed.cli", "demo", "--results",
                        str(tmp_path), "--seed", "3"], capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr
    assert "restoration: cut link" in r.stdout
    summaries = list(tmp_path.glob("demo/*/summary.json"))
    assert len(summaries) == 1
    s = json.loads(summaries[0].read_text())
    assert s["seed"] == 3
    (m,) = s["measurements"]
    assert 0 <= m["outage_ms"] < 1000 and 0 < m["max_gap_ms"] < 1000   # loss or a delay
    assert m["after_restore_received"] >= 450
    assert s["vnf_packets"]["vnf1"] >= m["received"]
    assert (summaries[0].parent / "summary.md").read_text().count("| restoration |") == 1
