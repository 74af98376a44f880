"""Concrete fault targets from the seed (pure logic, the engine's ``targets.resolve``)."""
from __future__ import annotations

import pytest

from testbed.errors import TestbedError
from testbed.experiment.scenario import FaultSpec, Scenario
from testbed.experiment.targets import ServiceView, resolve, target_rng


def _services() -> list[ServiceView]:
    web = ServiceView("web", {"web.fg1": [["e1", "a1"], ["a1", "c1", "a3", "e3"],
                                          ["e3", "a3", "c2", "a4", "e4"]]},
                      {"web.fg1": {"e1", "a1", "e3", "e4"}}, ["fw", "fwd"],
                      {"fw": ["cn1"], "fwd": ["cn3"]})
    db = ServiceView("db", {"db.fg1": [["e2", "a1", "c1", "a5", "e5"]]},
                     {"db.fg1": {"e2", "e5"}}, ["fw", "busy"], {"fw": ["cn2"], "busy": ["cn5"]})
    return [web, db]


def _soak(seed: int) -> list[FaultSpec]:
    sc = Scenario("soak", seed, 300.0)
    sc.random_faults("link_down", ["auto"], mtbf_s=20, mttr_s=3)
    sc.random_faults("switch_down", ["auto"], mtbf_s=60, mttr_s=3)
    sc.random_faults("vnf_crash", ["fw", "auto"], mtbf_s=30, mttr_s=3)
    sc.random_faults("compute_down", ["auto"], mtbf_s=60, mttr_s=3)
    sc.fault(at=5, kind="vnf_hang", target="busy")
    return sc.timeline()


def test_same_seed_same_concrete_timeline_other_seed_another():
    """Random faults with auto targets resolve to the same concrete targets for one seed,
    and to other ones for another seed (the randomness could differ, and does)."""
    a = resolve(_soak(3), _services(), target_rng(3))
    b = resolve(_soak(3), _services(), target_rng(3))
    c = resolve(_soak(4), _services(), target_rng(4))
    assert a == b
    assert [f["target"] for f in a] != [f["target"] for f in c]
    assert all(f["target"] != "auto" for f in a)
    assert len({f["id"] for f in a}) == len(a)


def test_auto_targets_follow_the_rules():
    """A link on an NS's paths, a switch with no hop on it, a compute node with an instance
    of the NS, and ns/vnf for VNF faults; each fault lists the NSs it affects."""
    svcs = _services()
    faults = resolve(_soak(5), svcs, target_rng(5))
    links = {lk for s in svcs for lk in s.links()}
    for f in faults:
        if f["kind"] == "link_down":
            a, b = f["target"].split("-")
            assert tuple(sorted((a, b))) in links and f["ns"]
        elif f["kind"] == "switch_down":
            assert any(f["target"] in s.switches() - set().union(*s.hop_switches.values())
                       for s in svcs)
        elif f["kind"] == "compute_down":
            assert f["target"] in {"cn1", "cn2", "cn3", "cn5"}
        elif f["kind"] in ("vnf_crash", "vnf_hang"):
            ns, vnf = f["target"].split("/")
            assert f["ns"] == [ns] and vnf in {s.ns: s for s in svcs}[ns].vnfs
    hang = next(f for f in faults if f["kind"] == "vnf_hang")
    assert hang["target"] == "db/busy"          # only db has busy


def test_a_link_shared_by_two_services_affects_both():
    """The link a1-c1 is on both NSs' paths: a cut of it lists both."""
    (f,) = resolve([FaultSpec(1.0, "link_down", "c1-a1")], _services(), target_rng(1))
    assert f["ns"] == ["db", "web"]


@pytest.mark.parametrize("spec, words", [
    (FaultSpec(1.0, "vnf_crash", "nat"), "no network service has such a target"),
    (FaultSpec(1.0, "vnf_crash", "web/busy"), "no VNF 'busy'"),
    (FaultSpec(1.0, "link_down", "e1"), "'a-b'"),
    (FaultSpec(1.0, "link_down", "auto", ns="nope"), "no network service 'nope'"),
])
def test_targets_that_cannot_be_resolved_are_refused_by_name(spec, words):
    """An impossible target is refused naming the fault, the target and what is wrong."""
    with pytest.raises(TestbedError) as e:
        resolve([spec], _services(), target_rng(1))
    assert f"fault {spec.kind} at 1.0 s" in str(e.value) and words in str(e.value)
