"""Scenario files: they load, their parameters are typed and checked, and the same seed
gives the same fault timeline (different seeds a different one)."""
from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import TestbedError
from testbed.experiment.engine import load_scenario

SCEN = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("path", sorted(SCEN.glob("*.py")), ids=lambda p: p.stem)
def test_every_scenario_loads_with_a_topology_a_service_and_checks(path):
    """Each shipped scenario declares a topology, at least one NS, load and checks."""
    sc = load_scenario(path, seed=1)
    assert sc.topology_path and sc.services and sc.loads and sc.checks
    assert sc.duration > 0


def test_same_seed_same_timeline_other_seed_other_timeline():
    """The chaos soak's random faults come from the seed alone."""
    a = load_scenario(SCEN / "chaos_soak.py", seed=7, duration=120).timeline()
    b = load_scenario(SCEN / "chaos_soak.py", seed=7, duration=120).timeline()
    c = load_scenario(SCEN / "chaos_soak.py", seed=8, duration=120).timeline()
    assert a == b and a != c and len(a) >= 3
    assert all(0 <= f.at < 120 and f.duration > 0 for f in a)


def test_set_overrides_are_typed_and_unknown_ones_refused():
    """--set values take the default's type; a misspelt parameter is an error naming the
    known ones; a value of the wrong type is refused."""
    sc = load_scenario(SCEN / "chain_heal_link.py", overrides={"cut_at": "3.5"})
    assert sc.faults[0].at == 3.5
    with pytest.raises(TestbedError, match="cutat: no such parameter; the scenario has"):
        load_scenario(SCEN / "chain_heal_link.py", overrides={"cutat": "3"})
    with pytest.raises(TestbedError, match="expected float"):
        load_scenario(SCEN / "chain_heal_link.py", overrides={"cut_at": "soon"})
