"""Every shipped scenario runs on the simulated NFVI (no root) and its summary is plausible;
one seed gives byte-identical events and summary, across processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.experiment.engine import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.py"))


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_passes_on_the_simulated_nfvi(path, tmp_path):
    """The scenario's own checks pass, it ends healthy, leaves nothing, keeps its probes'
    records and plots, and the modelled clock never drifts."""
    run = run_scenario(path, seed=1, results_dir=tmp_path, nfvi="simulated")
    s = _summary(run)
    assert s["passed"], s["checks"]
    assert s["healthy_at_end"] and s["leftovers"] == [] and s["nfvi"] == "simulated"
    assert s["engine"]["max_drift_ms"] == 0
    assert s["probes"] and all((run / p["records"]).stat().st_size % 24 == 0
                               for p in s["probes"].values())
    assert (run / "timeline.png").exists() and (run / "metrics.csv").exists()
    name = path.stem
    faults = s["faults"]
    if name == "chain_heal_link":
        f = faults[0]
        assert f["fault"] == "link_down" and 0 < f["outage_ms"] < 2000 and f["lost"] > 0
    if name == "autoscale_flash_crowd":
        assert s["scaling"]["scale_outs"] >= 1 and s["scaling"]["scale_ins"] >= 1
        assert s["scalars"]["served_s_median"] is not None
    if name == "compute_node_failure":
        f = faults[0]
        assert f["fault"] == "compute_down" and f["heal_s"] is not None
        assert 0 < f["outage_ms"] < 5000
    if name == "fault_catalogue":
        declared = {f.kind for f in load_scenario(path).faults}
        assert {f["fault"] for f in faults} == declared and len(declared) >= 6
    if name in ("chaos_soak", "multi_tenant"):
        assert s["scalars"]["unrecovered_faults"] == 0 and len(faults) >= 3


def _cli_run(tmp: Path, hashseed: str, seed: int = 3) -> Path:
    env = {**os.environ, "PYTHONHASHSEED": hashseed, "MPLBACKEND": "Agg"}
    subprocess.run([sys.executable, "-m", "testbed.cli", "run",
                    str(ROOT / "scenarios/chaos_soak.py"), "--seed", str(seed), "--nfvi",
                    "simulated", "--results", str(tmp)], check=True, env=env,
                   capture_output=True, timeout=300)
    (run,) = (tmp / "chaos_soak").iterdir()
    return run


def test_one_seed_gives_identical_events_and_summary(tmp_path):
    """chaos_soak (random faults from the seed) run twice in two processes with different
    hash seeds: events.jsonl, metrics.csv and the probe records are byte-identical, and so
    is summary.json but for the run id; another seed gives other events (the randomness
    is real, so the sameness is not vacuous)."""
    a = _cli_run(tmp_path / "a", "1")
    b = _cli_run(tmp_path / "b", "2")
    assert (a / "events.jsonl").read_bytes() == (b / "events.jsonl").read_bytes()
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    assert (a / "probes/web.fg1.bin").read_bytes() == (b / "probes/web.fg1.bin").read_bytes()
    sa, sb = _summary(a), _summary(b)
    assert sa.pop("run") != "" and sb.pop("run") != ""
    assert sa == sb
    assert len(sa["faults"]) >= 3      # the seed drew faults: something could differ
    c = _cli_run(tmp_path / "c", "1", seed=4)
    assert (c / "events.jsonl").read_bytes() != (a / "events.jsonl").read_bytes()
    assert _summary(c)["faults"] != sa["faults"]


BLOCKED = """
import sys
for name in ("mininet", "os_ken", "eventlet"):
    sys.modules[name] = None          # any import of them now fails
from testbed.cli import main
code = 0
for argv in ARGVS:
    code = code or main(argv)
leaked = [m for m in sys.modules if m.split(".")[0] in ("mininet", "os_ken", "eventlet")
          and sys.modules[m] is not None]
assert not leaked, leaked
sys.exit(code)
"""


def test_cli_runs_the_simulated_nfvi_where_mininet_cannot_be_imported(tmp_path):
    """With mininet and os_ken unimportable, the CLI checks a topology, runs a scenario on
    the simulated NFVI, redraws its report and sweeps it: only the emulated NFVI needs them."""
    res = tmp_path / "r"
    scen = str(ROOT / "scenarios/chain_heal_link.py")
    argvs = [["topology", "check", str(ROOT / "topologies/fat_tree4.yaml")],
             ["run", scen, "--nfvi", "simulated", "--duration", "8", "--results", str(res)],
             ["sweep", scen, "--nfvi", "simulated", "--seeds", "1", "--duration", "8",
              "--results", str(res)]]
    code = f"ARGVS = {argvs!r}\n" + BLOCKED
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "MPLBACKEND": "Agg"}, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    run = next(p for p in (res / "chain_heal_link").iterdir() if p.name != "sweep")
    rep = subprocess.run([sys.executable, "-c", f"ARGVS = {[['report', str(run)]]!r}\n"
                          + BLOCKED], capture_output=True, text=True, timeout=300,
                         check=False)
    assert rep.returncode == 0 and "redrawn" in rep.stdout, rep.stderr[-2000:]
    assert (res / "chain_heal_link" / "sweep" / "sweep.md").exists()


def test_runs_of_one_seed_in_one_second_get_their_own_folders(tmp_path):
    """Two quick runs of a scenario with one seed (as a simulated sweep makes) write two
    folders, and the second starts from an empty NFVO database: both pass."""
    scen = ROOT / "scenarios/chain_heal_link.py"
    a = run_scenario(scen, seed=1, duration=3, results_dir=tmp_path, nfvi="simulated")
    b = run_scenario(scen, seed=1, duration=3, results_dir=tmp_path, nfvi="simulated")
    assert a != b and _summary(a)["passed"] and _summary(b)["passed"]


NFVO_DIES_MID_HEAL = '''
DURATION = 14


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "constant", "rate": 300})
    s.fault(at=4.0, kind="vnf_crash", target="fwd2")      # healed by recreate (0.36 s)
    s.fault(at=RESTART_AT, kind="nfvo_restart")
    s.policy("liveness")
    s.expect(healthy_at_end=True)
'''


def _heal_window(tmp_path: Path) -> tuple[float, float]:
    """When the crashed VNF's heal starts and ends with no NFVO restart near it."""
    scen = tmp_path / "nfvo_late.py"
    scen.write_text(NFVO_DIES_MID_HEAL.replace("RESTART_AT", "12.0"))
    run = run_scenario(scen, seed=1, results_dir=tmp_path / "probe", nfvi="simulated")
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    start = next(e["t"] for e in events if e["kind"] == "heal_start")
    done = next(e["t"] for e in events if e["kind"] == "heal_done")
    return start, done


@pytest.mark.parametrize("where", ["before", "during", "after"])
def test_nfvo_restart_during_a_heal_is_settled_and_the_ns_recovers(tmp_path, where):
    """The NFVO dies before, while or just after it heals a crashed VNF: an operation it
    interrupted ends `action_interrupted` and, once the new NFVO has reconciled, is
    settled by retry (`op_settled`, COMPLETED, then `heal_done` settled by retry); the NS
    is healed and healthy at the end, and no operation is left FAILED_TEMP holding it."""
    start, done = _heal_window(tmp_path)
    at = {"before": start - 0.6, "during": (start + done) / 2, "after": done + 0.3}[where]
    scen = tmp_path / "nfvo_mid_heal.py"
    scen.write_text(NFVO_DIES_MID_HEAL.replace("RESTART_AT", repr(round(at, 4))))
    run = run_scenario(scen, seed=1, results_dir=tmp_path, nfvi="simulated")
    s = _summary(run)
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert s["healthy_at_end"], s["ns_states"]
    assert "heal_done" in kinds
    for e in events:
        if e["kind"] == "op_settled":
            assert e["state"] == "COMPLETED" and e["tasks"][0] == "retry", e
    assert kinds.count("action_interrupted") == kinds.count("op_settled")
    assert "action_failed" not in kinds
    assert s["scalars"]["unrecovered_faults"] == 0
    if where == "during":
        assert "action_interrupted" in kinds
        assert any(e.get("settled_by") == "retry" for e in events if e["kind"] == "heal_done")


SLOW_FAULT = '''
DURATION = 8


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "constant", "rate": 300})
    s.fault(at=2.0, kind="link_down", target="auto", duration=0.5)
    s.expect(healthy_at_end=True)
'''


def test_a_fault_whose_application_outlasts_it_is_undone_at_once(tmp_path, monkeypatch):
    """Applying a fault can take longer than the fault lasts (on the emulated NFVI a
    primitive waits for a restarting controller; a 1,800 s soak died here with SimPy's
    'Negative delay'). The fault is undone as soon as it is applied, its `fault_end`
    says how late (`late_ms`, on the run's clock), and the run goes on and ends healthy."""
    from testbed.experiment.engine import ScenarioRun

    original = ScenarioRun._apply

    def slow_apply(self, f, instance):
        self.nfvi.driver.wait(1.5)           # modelled time passes while it is applied
        return original(self, f, instance)

    monkeypatch.setattr(ScenarioRun, "_apply", slow_apply)
    scen = tmp_path / "slow_fault.py"
    scen.write_text(SLOW_FAULT)
    run = run_scenario(scen, seed=1, results_dir=tmp_path, nfvi="simulated")
    s = _summary(run)
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    applied = next(e for e in events if e["kind"] == "fault_applied")
    end = next(e for e in events if e["kind"] == "fault_end")
    assert end["t"] == pytest.approx(applied["t"]) and end["planned_t"] == 2.5
    assert end["late_ms"] == pytest.approx(1000.0, abs=1)
    assert s["healthy_at_end"] and s["scalars"]["unrecovered_faults"] == 0


def test_an_ns_left_degraded_is_healed_back(tmp_path, monkeypatch):
    """A crash is healed while the controller refuses every graph for a while: the heal
    fails and leaves the NS DEGRADED, missing its graph (the 1,800 s soak, where a failed
    settling did the same: 27 s without any healing until the next NFVO restart). The
    engine heals the NS back (`ns_heal_done`, INSTANTIATED) once graphs are accepted
    again; the run ends healthy and later faults are healed."""
    from mano.errors import InfrastructureError
    from testbed.nfvi.simulated.driver import SimulatedDriver

    original = SimulatedDriver.put_graph

    def refusing(self, graph):
        # modelled time, which the run's times trail by the instantiation (0.1-0.8 s
        # with the calibrations so far): from the crash (4.0 s into the run) on
        if 4.0 <= self.now() <= 7.0:
            raise InfrastructureError(f"controller refused graph {graph['name']}")
        return original(self, graph)

    monkeypatch.setattr(SimulatedDriver, "put_graph", refusing)
    scen = tmp_path / "degraded.py"
    scen.write_text(NFVO_DIES_MID_HEAL.replace("DURATION = 14", "DURATION = 12")
                    .replace('    s.fault(at=RESTART_AT, kind="nfvo_restart")\n',
                             '    s.fault(at=9.0, kind="vnf_crash", target="fw")\n'))
    run = run_scenario(scen, seed=1, results_dir=tmp_path, nfvi="simulated")
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert "action_failed" in kinds
    done = [e for e in events if e["kind"] == "ns_heal_done"]
    assert done and done[-1]["state"] == "INSTANTIATED" and 4.0 <= done[-1]["t"] <= 9.0
    s = _summary(run)
    assert s["healthy_at_end"], s["ns_states"]
    assert any(e["kind"] == "heal_done" and e["t"] > 9.0 for e in events)
