"""The NFVO's Prometheus metrics (mano.nbi.metrics) at /metrics after real NS operations on
the fake NFVI: NS states, LCM operation duration histograms, VIM capacity, instance and
graph counters, in the Prometheus text format."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from nbi_helpers import Env, onboard, wait_op
from prometheus_client.parser import text_string_to_metric_families

from mano.nfvi import InstanceMetrics

NSI = "/nslcm/v1/ns_instances"


def _samples(c) -> dict:
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    d = e.driver
    d.instance_metrics = lambda iid: InstanceMetrics(iid, 1.0, 2.5, 100, 6400, True)
    d.graph_stats = lambda name: {"flows": [{"packets": 7, "bytes": 700},
                                            {"packets": 5, "bytes": 500}]}
    yield e
    e.close()


def test_metrics_follow_the_ns_lifecycle(env):
    """After one completed and one failed instantiation: NS counts by state, one histogram
    observation per outcome, the vCPUs allocated, the instances'
    counters with their NS label, and the graph's summed flow counters."""
    c = env.client
    onboard(c)
    onboard(c, "nat_chain", vnfds=("nat",))   # another ingress: two chain3 NSs would overlap
    ok = c.post(NSI, json={"nsdId": "chain3", "nsName": "a", "nsDescription": ""}).json()["id"]
    bad = c.post(NSI, json={"nsdId": "nat_chain", "nsName": "b", "nsDescription": ""}
                 ).json()["id"]
    wait_op(c, c.post(f"{NSI}/{ok}/instantiate", json={"nsFlavourId": "default"})
            .headers["Location"])
    env.driver.fail_on = {f"fw_{i}" for i in range(1, 9)}
    wait_op(c, c.post(f"{NSI}/{bad}/instantiate", json={"nsFlavourId": "default"})
            .headers["Location"])
    s = _samples(c)
    assert s[("nfv_ns_instances", (("state", "INSTANTIATED"),))] == 1
    assert s[("nfv_ns_instances", (("state", "NOT_INSTANTIATED"),))] == 1
    h = "nfv_ns_lcm_operation_duration_seconds_count"
    assert s[(h, (("operation", "INSTANTIATE"), ("outcome", "completed")))] == 1
    assert s[(h, (("operation", "INSTANTIATE"), ("outcome", "failed_temp")))] == 1
    used = {k[1]: v for k, v in s.items() if k[0] == "nfv_vim_vcpus" and
            ("state", "used") in k[1]}
    # fw, fwd, fwd2 of the completed NS (0.5 each) and the fw allocation that the
    # FAILED_TEMP occurrence holds until it is rolled back
    assert sum(used.values()) == pytest.approx(4 * 0.5)
    assert s[("nfv_vim_memory_bytes", (("node", "n1"), ("state", "free")))] % 2 ** 20 == 0
    cpu = {dict(k[1])["vnfc"]: (dict(k[1])["ns"], v) for k, v in s.items()
           if k[0] == "nfv_instance_cpu_seconds_total"}
    assert cpu == {"fw_1": (ok, 2.5), "fwd_1": (ok, 2.5), "fwd2_1": (ok, 2.5)}
    assert s[("nfv_graph_flow_packets_total", (("graph", f"{ok}.fg1"),))] == 12
    assert s[("nfv_graph_flow_bytes_total", (("graph", f"{ok}.fg1"),))] == 1200


def test_the_grafana_dashboard_queries_only_metrics_the_nfvo_exports(env):
    """Every metric named in dashboards/grafana-nfvo.json is a sample name /metrics serves
    once an NS has run (so the dashboard cannot drift from the exporter)."""
    c = env.client
    onboard(c)
    ns = c.post(NSI, json={"nsdId": "chain3", "nsName": "a", "nsDescription": ""}).json()["id"]
    wait_op(c, c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
            .headers["Location"])
    served = {k[0] for k in _samples(c)}
    dash = json.loads((Path(__file__).resolve().parents[2] / "dashboards" /
                       "grafana-nfvo.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bnfv_[a-z_]+", e)}
    assert len(used) >= 8 and used <= served, used - served
