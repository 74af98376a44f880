"""Tenants and tokens of the NBI (mano.nbi.auth): OAuth 2.0 client credentials, 401
without a valid token, tokens that expire, hashed secrets, and two tenants that neither see
nor touch each other's resources."""
from __future__ import annotations

import pytest
from nbi_helpers import Env, onboard, wait_op

from mano.nbi.auth import Auth

NSI = "/nslcm/v1/ns_instances"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def env(tmp_path):
    from mano.nbi.records import Records

    clock = Clock()
    records = Records(tmp_path / "auth.db")
    auth = Auth(records, ttl=60, clock=clock)
    e = Env(tmp_path, auth=auth)
    e.clock, e.auth = clock, auth
    e.admin_secret = auth.add_client("admin", "admin")
    yield e
    e.close()
    records.close()


def _token(c, client, secret, basic=True) -> dict:
    if basic:
        r = c.post("/oauth2/token", data={"grant_type": "client_credentials"},
                   auth=(client, secret))
    else:
        r = c.post("/oauth2/token", data={"grant_type": "client_credentials",
                                          "client_id": client, "client_secret": secret})
    return r


def _bearer(c, client, secret) -> dict:
    r = _token(c, client, secret)
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer", r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_requests_without_a_valid_token_are_401_and_tokens_expire(env):
    """No token, an unknown one, or one past its lifetime: 401 ProblemDetails with
    WWW-Authenticate; a fresh token works; api_versions needs none."""
    c = env.client
    r = c.get(NSI)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401 and "POST /oauth2/token" in r.json()["detail"]
    r = c.get(NSI, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    h = _bearer(c, "admin", env.admin_secret)
    assert c.get(NSI, headers=h).status_code == 200
    env.clock.t += 61
    r = c.get(NSI, headers=h)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert c.get("/nslcm/v1/api_versions").status_code == 200


def test_token_endpoint_checks_grant_and_credentials_and_stores_only_hashes(env):
    """Form or Basic credentials give a token; a wrong secret is invalid_client (401), a
    wrong grant unsupported_grant_type (400); no secret or token is stored in clear."""
    c = env.client
    assert _token(c, "admin", env.admin_secret, basic=False).status_code == 200
    token = _token(c, "admin", env.admin_secret).json()["access_token"]
    r = _token(c, "admin", "wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = c.post("/oauth2/token", data={"grant_type": "password"},
               auth=("admin", env.admin_secret))
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    stored = str(env.auth.records.list("client")) + str(env.auth.records.list("token"))
    assert env.admin_secret not in stored and token not in stored and "$argon2" in stored


def test_two_tenants_neither_see_nor_touch_each_others_resources(env):
    """Admin adds client bob in project b; bob's lists are empty, admin's NSD, NS, package
    and occurrence are 404 to him (read, task, delete), and he may not manage clients (403);
    bob's own NS is invisible to admin."""
    c = env.client
    ha = _bearer(c, "admin", env.admin_secret)
    r = c.post("/admin/v1/clients", json={"clientId": "bob", "project": "b"}, headers=ha)
    assert r.status_code == 201, r.text
    hb = _bearer(c, "bob", r.json()["clientSecret"])
    iid = onboard(c, headers=ha)
    ns = c.post(NSI, json={"nsdId": "chain3", "nsName": "web", "nsDescription": ""},
                headers=ha).json()["id"]
    op = wait_op(c, c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"},
                           headers=ha).headers["Location"], headers=ha)
    assert op["operationState"] == "COMPLETED"
    pkg = c.get("/vnfpkgm/v1/vnf_packages", headers=ha).json()[0]["id"]
    for path in (NSI, "/nslcm/v1/ns_lcm_op_occs", "/nsd/v1/ns_descriptors",
                 "/vnfpkgm/v1/vnf_packages"):
        assert c.get(path, headers=hb).json() == [], path
    for method, path in (("GET", f"{NSI}/{ns}"), ("DELETE", f"{NSI}/{ns}"),
                         ("GET", f"/nslcm/v1/ns_lcm_op_occs/{op['id']}"),
                         ("POST", f"/nslcm/v1/ns_lcm_op_occs/{op['id']}/fail"),
                         ("GET", f"/nsd/v1/ns_descriptors/{iid}"),
                         ("DELETE", f"/nsd/v1/ns_descriptors/{iid}"),
                         ("DELETE", f"/vnfpkgm/v1/vnf_packages/{pkg}")):
        assert c.request(method, path, headers=hb).status_code == 404, (method, path)
    r = c.post(f"{NSI}/{ns}/terminate", json={}, headers=hb)
    assert r.status_code == 404
    assert c.get("/admin/v1/clients", headers=hb).status_code == 403
    # bob cannot use admin's NSD either: it is not in his catalogue
    r = c.post(NSI, json={"nsdId": "chain3", "nsName": "mine", "nsDescription": ""},
               headers=hb)
    assert r.status_code == 404
    assert [n["id"] for n in c.get(NSI, headers=ha).json()] == [ns]
    assert env.nfvo.store.get_ns_instance(ns)["state"] == "INSTANTIATED"
