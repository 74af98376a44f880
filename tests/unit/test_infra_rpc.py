"""The NFVI's RPC over real loopback HTTP: ``InfraServer`` (FastAPI on uvicorn) serving a
driver, ``RemoteDriver`` (httpx) calling it; refusals say which call and why."""
from __future__ import annotations

import httpx
import pytest
from test_nfvo import FakeDriver  # tests/unit is on sys.path (rootdir-relative, no __init__)

from mano.errors import InfrastructureError
from mano.nfvi import ComputeNodeInfo, InstanceInfo
from mano.remote import RemoteDriver
from testbed.infra_server import InfraServer


class Driver(FakeDriver):
    """The unit tests' fake NFVI with ``put_graph``'s parameter named as in the interface."""

    def put_graph(self, graph):
        return super().put_graph(graph)


@pytest.fixture
def rpc():
    drv = Driver()
    srv = InfraServer(drv).start()
    client = RemoteDriver(f"http://127.0.0.1:{srv.port}", timeout=10)
    yield drv, srv, client
    client.close()
    srv.stop()


def test_calls_cross_the_rpc_with_their_arguments_and_results(rpc):
    """Results come back as the interface's dataclasses and values; arguments arrive."""
    drv, _srv, client = rpc
    assert client.compute_nodes() == drv.compute_nodes()
    assert isinstance(client.compute_nodes()[0], ComputeNodeInfo)
    assert client.switch_distance("e1", "e2") == 2.0
    assert client.endpoints()["h3"] == "10.0.0.3"
    assert client.list_instances() == []
    assert client.find_instance("fw_1") is None


def test_find_instance_crosses_the_rpc_as_an_instance_or_none(rpc):
    """find_instance comes back as the InstanceInfo the driver holds, or None for an
    unknown id."""
    drv, _srv, client = rpc
    drv.instances["fw_1"] = InstanceInfo("fw_1", "n1", "e1", "10.1.0.1", "02:00:00:00:00:01")
    assert client.find_instance("fw_1") == drv.instances["fw_1"]
    assert client.find_instance("fw_2") is None


def test_refusals_are_400_with_the_reason_and_unknown_names_404(rpc):
    """A driver refusal (MANOError) or wrong arguments are 400 naming the call; an unknown
    method or route is 404 listing what exists; a body that is no JSON object is 400."""
    drv, srv, client = rpc
    drv.fail_put = True
    with pytest.raises(InfrastructureError, match="NFVI refused put_graph: .*refused graph g"):
        client.put_graph({"name": "g", "hops": []})
    with pytest.raises(InfrastructureError, match="refused restart_instance: restart_instance"):
        client.restart_instance("x")      # the fake's parameter is not named instance_id
    base = f"http://127.0.0.1:{srv.port}"
    r = httpx.post(f"{base}/rpc/reboot_datacenter", json={})
    assert r.status_code == 404 and "known: compute_nodes" in r.json()["error"]
    r = httpx.post(f"{base}/rpc/endpoints", content=b"[1, 2]",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON object of keyword arguments" in r.json()["error"]
    r = httpx.get(f"{base}/elsewhere")
    assert r.status_code == 404 and r.json()["error"] == "no route GET /elsewhere"
    r = httpx.post(f"{base}/rpc/events", json={"since": 0})
    assert r.status_code == 200 and r.json() == {"result": [], "next": 0}
