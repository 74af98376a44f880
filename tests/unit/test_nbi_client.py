"""The CLI's SOL005 client (mano.nbi.client) against the real NBI app in-process: tokens,
onboarding from files, name resolution, paged lists, tasks and waiting, error mapping."""
from __future__ import annotations

import pytest
from nbi_helpers import DESCRIPTORS, Env

from mano.nbi.auth import Auth
from mano.nbi.client import NbiClient, NbiError


@pytest.fixture
def nbi(tmp_path):
    env = Env(tmp_path, page_size=2)
    auth = Auth(env.records)
    env.app.state.auth = auth
    secret = auth.add_client("admin", "admin")
    token = NbiClient.token("http://nbi.test", "admin", secret, http=env.client)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    c = NbiClient("http://nbi.test", token["access_token"], http=env.client)
    yield c, env
    env.close()


def test_onboard_instantiate_by_name_and_follow_pages(nbi):
    """Files onboard as packages and an NSD; NS are found by name or id; an instantiation
    task is followed to COMPLETED; a list longer than a page is read whole."""
    c, _ = nbi
    for v in ("fw", "fwd", "fwd2"):
        assert c.onboard_vnfd(DESCRIPTORS / "vnfd" / f"{v}.yaml")["vnfdId"] == v
    assert c.onboard_nsd(DESCRIPTORS / "nsd" / "chain3.yaml")["nsdId"] == "chain3"
    assert len(c.list("/vnfpkgm/v1/vnf_packages")) == 3        # two pages of two
    ids = [c.request("POST", "/nslcm/v1/ns_instances", json={
        "nsdId": "chain3", "nsName": n, "nsDescription": ""}).json()["id"]
        for n in ("web", "it's")]
    assert c.ns_by_name_or_id("it's")["id"] == ids[1]         # quoted in the filter
    assert c.ns_by_name_or_id(ids[0])["nsInstanceName"] == "web"
    op = c.wait(c.task(ids[0], "instantiate", {"nsFlavourId": "default"}), poll=0.01)
    assert op["operationState"] == "COMPLETED"
    assert c.ns_by_name_or_id("web")["nsState"] == "INSTANTIATED"


def test_refusals_become_nbi_errors_and_failed_onboarding_leaves_nothing(nbi, tmp_path):
    """A 404 and a 409 come back as NbiError with the status and ProblemDetails detail; an
    invalid VNFD file is refused and its empty package deleted; a bad secret gets no
    token."""
    c, env = nbi
    with pytest.raises(NbiError) as e:
        c.ns_by_name_or_id("nothing")
    assert e.value.status == 404
    bad = tmp_path / "bad.yaml"
    bad.write_text("vnfd: {id: x}\n")
    with pytest.raises(NbiError) as e:
        c.onboard_vnfd(bad)
    assert e.value.status == 422 and "vdu" in e.value.detail
    assert c.list("/vnfpkgm/v1/vnf_packages") == []
    with pytest.raises(NbiError) as e:
        NbiClient.token("http://nbi.test", "admin", "wrong", http=env.client)
    assert e.value.status == 401
