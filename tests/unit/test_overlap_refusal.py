"""Overlapping classifiers are refused where a user meets them: the NFVO at instantiate
(before any instance is made; a 409 through the NBI), an NSD at onboarding, the simulated NFVI's controller logic
on install; an explicit VNFFG precedence lets them coexist and reaches the NFVI as the
graph's priority."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from nbi_helpers import Env, onboard, wait_op
from test_nfvo import FakeDriver  # tests/unit is on sys.path (rootdir-relative)
from test_sim_nfvi import nfvi, run_op  # noqa: F401  (the simulated NFVI fixture)

from mano.descriptors.nsd import parse_nsd
from mano.errors import ConflictError, DescriptorError, InfrastructureError
from mano.nfvi import Flavour, Image
from mano.nfvo import NFVO

ROOT = Path(__file__).resolve().parents[2] / "descriptors"


def nsd_file(tmp: Path, nsd_id: str, classifier: dict, vnf: str, **fg) -> Path:
    doc = {"nsd": {"id": nsd_id, "vnfs": [{"vnfd": vnf}],
                   "vnffg": [{"id": "fg1", "classifier": classifier, "ingress": "h1",
                              "egress": "h16", "path": [vnf], **fg}]}}
    path = tmp / f"{nsd_id}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def nfvo(tmp_path):
    drv = FakeDriver()
    n = NFVO(drv, tmp_path / "db.sqlite")
    vnfds = sorted((ROOT / "vnfd").glob("*.yaml"))
    n.onboard_nsd(nsd_file(tmp_path, "bysrc", {"ipv4_src": "10.0.0.1"}, "fw"), vnfds)
    n.onboard_nsd(nsd_file(tmp_path, "bydst", {"ipv4_dst": "10.0.0.16"}, "fwd"))
    n.onboard_nsd(nsd_file(tmp_path, "bydst_first", {"ipv4_dst": "10.0.0.16"}, "fwd",
                           precedence=200))
    n.onboard_nsd(nsd_file(tmp_path, "other_port", {"ip_proto": 17, "ipv4_dst": "10.0.0.16",
                                                    "udp_dst": 7000}, "fwd2"))
    yield n
    n.close()


def test_issue_example_is_refused_naming_both_graphs_and_nss(nfvo):
    """NS a classifies {ipv4_src h1}, NS b {ipv4_dst h16} from h1 at one precedence:
    instantiating b is refused with a ConflictError naming both graphs and NSs and a
    packet both would take; no instance of b was created, no graph of b installed."""
    assert nfvo.instantiate("bysrc", "a")["state"] == "COMPLETED"
    drv = nfvo.driver
    before = set(drv.instances)
    with pytest.raises(ConflictError) as e:
        nfvo.instantiate("bydst", "b")
    msg = str(e.value)
    assert "graph b.fg1 (NSD bydst) overlaps graph a.fg1 of NS a (NSD bysrc)" in msg
    assert "at ingress h1: a packet with ipv4_src 10.0.0.1, ipv4_dst 10.0.0.16" in msg
    assert "precedence" in msg
    assert set(drv.instances) == before and "b.fg1" not in drv.graphs


def test_precedence_lets_overlapping_graphs_coexist(nfvo):
    """With precedence 200 the overlapping NS is accepted and its graph reaches the NFVI
    with priority 200 (the other keeps the default); disjoint classifiers need none."""
    nfvo.instantiate("bysrc", "a")
    assert nfvo.instantiate("bydst_first", "b")["state"] == "COMPLETED"
    graphs = nfvo.driver.graphs
    assert graphs["b.fg1"]["priority"] == 200 and "priority" not in graphs["a.fg1"]
    with pytest.raises(ConflictError, match="overlaps graph a.fg1"):
        nfvo.instantiate("bydst", "c")            # precedence 100 again, like a's


def test_terminated_ns_no_longer_blocks(nfvo):
    """Once the overlapping NS is terminated the other can be instantiated."""
    nfvo.instantiate("bysrc", "a")
    nfvo.terminate("a")
    assert nfvo.instantiate("bydst", "b")["state"] == "COMPLETED"


def test_sap_moves_the_ingress_and_so_the_overlap(nfvo):
    """Bound by sap to another ingress host, the same NSD no longer overlaps."""
    nfvo.instantiate("bysrc", "a")
    assert nfvo.instantiate("bydst", "b", sap={"h1": "h2"})["state"] == "COMPLETED"


def test_an_overlap_is_found_however_each_ns_binds_its_ingress(nfvo):
    """The check reads only the NSs that can share an ingress (bound by sap, or by the
    NSD's own name): one bound by sap onto an ingress is found by a new NS bound there by
    sap, one entering by name by a new NS entering by name; NSs at other ingresses are
    not in the way."""
    nfvo.instantiate("bysrc", "a", sap={"h1": "h2"})             # a enters at h2
    with pytest.raises(ConflictError, match="overlaps graph a.fg1"):
        nfvo.instantiate("bydst", "b", sap={"h1": "h2"})
    assert nfvo.instantiate("bydst", "c")["state"] == "COMPLETED"   # at h1: apart from a
    with pytest.raises(ConflictError, match="overlaps graph c.fg1"):
        nfvo.instantiate("bysrc", "d")


def test_nsd_with_overlapping_graphs_is_refused_at_onboarding():
    """Two VNFFGs of one NSD overlapping at one ingress at one precedence: the NSD is
    refused naming the second graph's field path and the first graph."""
    fg = {"ingress": "h1", "egress": "h16", "path": ["fw"]}
    doc = {"nsd": {"id": "two", "vnfs": [{"vnfd": "fw"}], "vnffg": [
        {"id": "fg1", "classifier": {"ipv4_src": "10.0.0.1"}, **fg},
        {"id": "fg2", "classifier": {"ipv4_dst": "10.0.0.16"}, **fg}]}}
    with pytest.raises(DescriptorError, match=r"two\.yaml: nsd\.vnffg\[1\]: classifier "
                                              r"overlaps nsd\.vnffg\[0\] \('fg1'\) at ingress h1"):
        parse_nsd(doc, "two.yaml")
    doc["nsd"]["vnffg"][1]["precedence"] = 150
    assert parse_nsd(doc, "two.yaml").vnffg[1].precedence == 150


def test_simulated_nfvi_refuses_overlap_like_the_controller(nfvi):  # noqa: F811
    """The simulated NFVI runs the controller's logic: an overlapping graph at one priority
    is refused (InfrastructureError naming both), one with another priority accepted."""
    d = nfvi.driver
    node = sorted(d.topology.computes)[1]
    flavour = Flavour(0.5, 128, 1)
    run_op(nfvi, d.create_instance, "v_1", node, flavour, Image("forwarder", {}))
    run_op(nfvi, d.create_instance, "v_2", node, flavour, Image("forwarder", {}))
    run_op(nfvi, d.put_graph, {"name": "a.fg1", "match": {"ipv4_src": "10.0.0.1"},
                               "hops": ["h1", "v_1", "h16"]})
    b = {"name": "b.fg1", "match": {"ipv4_dst": "10.0.0.16"}, "hops": ["h1", "v_2", "h16"]}
    with pytest.raises(InfrastructureError, match="'b.fg1' overlaps forwarding graph 'a.fg1'"):
        run_op(nfvi, d.put_graph, b)
    assert d.list_graphs() == ["a.fg1"]
    run_op(nfvi, d.put_graph, {**b, "priority": 200})
    assert d.list_graphs() == ["a.fg1", "b.fg1"]


def test_nbi_answers_an_overlap_with_409_naming_both(tmp_path):
    """Through the SOL005 NBI: instantiating a second NS of chain3 at the same ingress is
    a 409 ProblemDetails whose detail names both graphs; no operation occurrence starts."""
    env = Env(tmp_path)
    try:
        c = env.client
        onboard(c)
        ids = []
        for name in ("web", "shop"):
            r = c.post("/nslcm/v1/ns_instances", json={"nsdId": "chain3", "nsName": name,
                                                       "nsDescription": "a chain"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = c.post(f"/nslcm/v1/ns_instances/{ids[0]}/instantiate",
                   json={"nsFlavourId": "default"})
        assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
        r = c.post(f"/nslcm/v1/ns_instances/{ids[1]}/instantiate",
                   json={"nsFlavourId": "default"})
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert f"graph {ids[1]}.fg1 (NSD chain3) overlaps graph {ids[0]}.fg1" in detail
        assert "precedence" in detail
        assert len(c.get("/nslcm/v1/ns_lcm_op_occs").json()) == 1
    finally:
        env.close()
