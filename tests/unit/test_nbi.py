"""The SOL005 NBI (mano.nbi.app) over a real NFVO on the fake NFVI driver: NSD and VNF
package management, the NS lifecycle with asynchronous operation occurrences, SOL013 lists,
versions and ProblemDetails. (Under a real `testbed up`: tests/integration/test_nbi.py.)"""
from __future__ import annotations

import time

import io
import threading
import zipfile

import pytest
from nbi_helpers import DESCRIPTORS, Env, onboard, wait_op

NSI = "/nslcm/v1/ns_instances"
OPS = "/nslcm/v1/ns_lcm_op_occs"


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def _create(c, name="web", nsd="chain3"):
    r = c.post(NSI, json={"nsdId": nsd, "nsName": name, "nsDescription": "a chain"})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == r.json()["_links"]["self"]["href"]
    return r.json()["id"]


def _is_problem(r, status):
    body = r.json()
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["status"] == status and body["detail"] and body["title"] and body["type"]
    return body["detail"]


def test_ns_lifecycle_instantiate_scale_heal_terminate_delete(env):
    """Each LCM task answers 202 with the Location of an occurrence that ends COMPLETED, and
    the NsInstance shows the VNFs, their VNFCs and the state after each step."""
    c = env.client
    onboard(c)
    ns = _create(c)
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    assert r.status_code == 202 and r.headers["Location"].startswith(f"http://nbi.test{OPS}/")
    op = wait_op(c, r.headers["Location"])
    assert op["operationState"] == "COMPLETED" and op["lcmOperationType"] == "INSTANTIATE"
    assert op["nsInstanceId"] == ns and op["operationParams"] == {"nsFlavourId": "default"}
    body = c.get(f"{NSI}/{ns}").json()
    assert body["nsState"] == "INSTANTIATED"
    assert [v["vnfdId"] for v in body["vnfInstance"]] == ["fw", "fwd", "fwd2"]

    r = c.post(f"{NSI}/{ns}/scale", json={"scaleType": "SCALE_VNF", "scaleVnfData": [
        {"vnfInstanceId": f"{ns}.fwd", "scaleVnfType": "SCALE_OUT",
         "scaleByStepData": {"aspectId": "default", "numberOfSteps": 1}}]})
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
    fwd = c.get(f"{NSI}/{ns}").json()["vnfInstance"][1]["instantiatedVnfInfo"]
    assert [v["id"] for v in fwd["vnfcResourceInfo"]] == ["fwd_1", "fwd_2"]
    assert fwd["scaleStatus"][0]["scaleLevel"] == 1

    r = c.post(f"{NSI}/{ns}/heal", json={"healVnfData": [
        {"vnfInstanceId": "fw", "additionalParams": {"mode": "recreate"}}]})
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
    assert "fw_1" not in env.driver.instances and "fw_2" in env.driver.instances

    r = c.post(f"{NSI}/{ns}/terminate", json={})
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
    assert c.get(f"{NSI}/{ns}").json()["nsState"] == "NOT_INSTANTIATED"
    assert env.driver.instances == {} and env.driver.graphs == {}
    assert c.delete(f"{NSI}/{ns}").status_code == 204
    assert "no NS instance" in _is_problem(c.get(f"{NSI}/{ns}"), 404)


def test_a_second_operation_while_one_runs_is_a_409(env):
    """While an instantiation is PROCESSING (the driver blocks), another task on the same NS
    and its deletion are refused with 409 ProblemDetails; the first then completes."""
    c = env.client
    onboard(c)
    ns = _create(c)
    env.driver.gate = threading.Event()
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    assert r.status_code == 202
    assert env.driver.entered.wait(5)
    assert c.get(r.headers["Location"]).json()["operationState"] == "PROCESSING"
    assert "exists already" in _is_problem(
        c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"}), 409)
    assert "INSTANTIATE" in _is_problem(c.delete(f"{NSI}/{ns}"), 409)
    env.driver.gate.set()
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
    _is_problem(c.delete(f"{NSI}/{ns}"), 409)   # INSTANTIATED: terminate first
    _is_problem(c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"}), 409)


def test_failed_operation_stays_failed_temp_then_rollback_retry_and_fail(env):
    """A failing step leaves the occurrence FAILED_TEMP with an error and task links; a
    rollback removes what it made (ROLLED_BACK); a retry after the cause is gone resumes the
    same occurrence, which completes; fail moves FAILED_TEMP to FAILED (200 with the
    occurrence)."""
    c = env.client
    onboard(c)
    ns = _create(c)
    env.driver.fail_on = {f"fwd2_{i}" for i in range(1, 9)}   # whatever id comes next
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    op = wait_op(c, r.headers["Location"])
    assert op["operationState"] == "FAILED_TEMP" and "boom" in op["error"]["detail"]
    assert {"retry", "rollback", "fail"} <= set(op["_links"])
    r2 = c.post(f"{OPS}/{op['id']}/rollback")
    assert r2.status_code == 202 and r2.headers["Location"].endswith(op["id"])
    assert wait_op(c, r2.headers["Location"])["operationState"] == "ROLLED_BACK"
    assert env.driver.instances == {}
    _is_problem(c.post(f"{OPS}/{op['id']}/retry"), 409)        # final now

    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    failed = wait_op(c, r.headers["Location"])
    env.driver.fail_on = set()
    r = c.post(f"{OPS}/{failed['id']}/retry")
    assert r.status_code == 202
    assert r.headers["Location"].endswith(failed["id"])
    deadline = time.monotonic() + 10
    while c.get(f"{OPS}/{failed['id']}").json()["operationState"] != "COMPLETED":
        assert time.monotonic() < deadline, c.get(f"{OPS}/{failed['id']}").json()
        time.sleep(0.05)

    r = c.post(f"{NSI}/{ns}/terminate", json={})
    wait_op(c, r.headers["Location"])
    env.driver.fail_on = {f"fw_{i}" for i in range(1, 9)}
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    op = wait_op(c, r.headers["Location"])
    r = c.post(f"{OPS}/{op['id']}/fail")
    assert r.status_code == 200 and r.json()["operationState"] == "FAILED"
    assert "cannot cancel" in _is_problem(c.post(f"{OPS}/{op['id']}/cancel"), 409)


def test_nsd_states_guard_instantiation_and_deletion(env):
    """A DISABLED NSD admits no new NS (409); an ENABLED one, or one IN_USE, cannot be
    deleted (409); a disabled unused one is deleted (204), and its VNF packages after it."""
    c = env.client
    iid = onboard(c)
    r = c.patch(f"/nsd/v1/ns_descriptors/{iid}", json={"nsdOperationalState": "DISABLED"})
    assert r.status_code == 200 and r.json() == {"nsdOperationalState": "DISABLED"}
    assert "DISABLED" in _is_problem(c.post(NSI, json={
        "nsdId": "chain3", "nsName": "x", "nsDescription": ""}), 409)
    c.patch(f"/nsd/v1/ns_descriptors/{iid}", json={"nsdOperationalState": "ENABLED"})
    assert "disable it first" in _is_problem(c.delete(f"/nsd/v1/ns_descriptors/{iid}"), 409)
    ns = _create(c)
    assert c.get(f"/nsd/v1/ns_descriptors/{iid}").json()["nsdUsageState"] == "IN_USE"
    c.patch(f"/nsd/v1/ns_descriptors/{iid}", json={"nsdOperationalState": "DISABLED"})
    assert "IN_USE" in _is_problem(c.delete(f"/nsd/v1/ns_descriptors/{iid}"), 409)
    pkgs = c.get("/vnfpkgm/v1/vnf_packages").json()
    assert "IN_USE" in _is_problem(c.delete(f"/vnfpkgm/v1/vnf_packages/{pkgs[0]['id']}"), 409)
    assert c.delete(f"{NSI}/{ns}").status_code == 204
    assert c.delete(f"/nsd/v1/ns_descriptors/{iid}").status_code == 204
    for p in pkgs:
        assert c.delete(f"/vnfpkgm/v1/vnf_packages/{p['id']}").status_code == 204
    assert env.nfvo.store.list_vnfds() == [] and env.nfvo.store.list_nsds() == []


def test_content_upload_of_yaml_and_zip_and_bad_content(env):
    """A zip naming its VNFD in TOSCA.meta onboards; a broken descriptor is a 422 naming
    the field, leaving the package CREATED; a second upload is a 409."""
    c = env.client
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("TOSCA-Metadata/TOSCA.meta", "Entry-Definitions: Definitions/fw.yaml\n")
        z.writestr("Definitions/fw.yaml", (DESCRIPTORS / "vnfd" / "fw.yaml").read_text())
    pid = c.post("/vnfpkgm/v1/vnf_packages", json={}).json()["id"]
    r = c.put(f"/vnfpkgm/v1/vnf_packages/{pid}/package_content", content=buf.getvalue(),
              headers={"Content-Type": "application/zip"})
    assert r.status_code == 204, r.text
    pkg = c.get(f"/vnfpkgm/v1/vnf_packages/{pid}").json()
    assert pkg["onboardingState"] == "ONBOARDED" and pkg["vnfdId"] == "fw"
    assert "uploaded only once" in _is_problem(
        c.put(f"/vnfpkgm/v1/vnf_packages/{pid}/package_content", content=b"x"), 409)
    pid2 = c.post("/vnfpkgm/v1/vnf_packages", json={}).json()["id"]
    bad = (DESCRIPTORS / "vnfd" / "fwd.yaml").read_text().replace("vcpu:", "vcpus:")
    assert "vcpu" in _is_problem(c.put(f"/vnfpkgm/v1/vnf_packages/{pid2}/package_content",
                                       content=bad.encode()), 422)
    assert c.get(f"/vnfpkgm/v1/vnf_packages/{pid2}").json()["onboardingState"] == "CREATED"
    iid = c.post("/nsd/v1/ns_descriptors", json={}).json()["id"]
    nsd = (DESCRIPTORS / "nsd" / "chain3.yaml").read_bytes()
    assert "fwd" in _is_problem(c.put(f"/nsd/v1/ns_descriptors/{iid}/nsd_content",
                                      content=nsd), 422)      # its VNFDs are missing


def test_lists_filter_select_and_page_with_link_headers(tmp_path):
    """Five NS instances on pages of two: following Link rel=next visits each once; a filter
    keeps the matching ones; vnfInstance is excluded by default and back with fields."""
    e = Env(tmp_path, page_size=2)
    try:
        c = e.client
        onboard(c)
        ids = [_create(c, f"ns{i}") for i in range(5)]
        seen, url = [], NSI
        while url:
            r = c.get(url)
            seen += [n["id"] for n in r.json()]
            url = r.links.get("next", {}).get("url")
        assert seen == ids
        r = c.get(NSI, params={"filter": "(in,nsInstanceName,ns1,ns3)"})
        assert [n["nsInstanceName"] for n in r.json()] == ["ns1", "ns3"]
        wait_op(c, c.post(f"{NSI}/{ids[0]}/instantiate",
                          json={"nsFlavourId": "default"}).headers["Location"])
        r = c.get(NSI, params={"filter": "(eq,nsState,INSTANTIATED)"})
        assert [n["id"] for n in r.json()] == [ids[0]] and "vnfInstance" not in r.json()[0]
        r = c.get(NSI, params={"filter": "(eq,vnfInstance/vnfdId,fw)", "fields": "vnfInstance"})
        assert len(r.json()[0]["vnfInstance"]) == 3
        r = c.get(OPS, params={"all_fields": ""})
        assert r.json()[0]["operationParams"] == {"nsFlavourId": "default"}
        _is_problem(c.get(NSI, params={"all_fields": "", "fields": "a"}), 400)
        _is_problem(c.get(NSI, params={"nextpage_opaque_marker": "zz"}), 400)
        assert "'state'" in _is_problem(c.get(NSI, params={"state": "x"}), 400)
        assert "2 times" in _is_problem(c.get(f"{NSI}?fields=a&fields=b"), 400)
    finally:
        e.close()


def test_versions_and_problem_details_on_every_error(env):
    """Responses carry Version; an unsupported major version or an Accept without JSON is a
    406; api_versions answers
    under both paths; a bad body is a 400, an unknown path a 404, a wrong method a 405,
    all as ProblemDetails."""
    c = env.client
    r = c.get(NSI)
    assert r.status_code == 200 and r.headers["Version"].startswith("2.")
    _is_problem(c.get(NSI, headers={"Version": "9.0.0"}), 406)
    assert "application/json" in _is_problem(c.get(NSI, headers={"Accept": "text/html"}), 406)
    assert c.get(NSI, headers={"Accept": "text/html, application/*;q=0.5"}).status_code == 200
    for p in ("/nslcm/api_versions", "/nslcm/v1/api_versions"):
        assert c.get(p).json()["uriPrefix"] == "/nslcm/v1"
    assert "nsName" in _is_problem(c.post(NSI, json={"nsdId": "x", "nsDescription": ""}), 400)
    _is_problem(c.post(NSI, content=b"{not json", headers={"Content-Type":
                                                           "application/json"}), 400)
    _is_problem(c.get("/nslcm/v1/nope"), 404)
    _is_problem(c.put(NSI, json={}), 405)
    assert "onboarded NSD" in _is_problem(c.post(NSI, json={
        "nsdId": "nothere", "nsName": "x", "nsDescription": ""}), 404)
    _is_problem(c.post(f"{NSI}/nothere/instantiate", json={"nsFlavourId": "default"}), 404)


def test_a_degraded_ns_is_instantiated_to_sol005_and_can_be_terminated(env):
    """A DEGRADED NS (left so by an interrupted terminate whose rollback failed) is
    INSTANTIATED in SOL005's terms: its NsInstance says so and offers terminate, a second
    instantiate is refused saying what to do, and terminate is accepted and completes, after
    which it can be instantiated again. (Terminate was refused as NOT_INSTANTIATED and
    instantiate as existing: the NS was stuck; tests/integration/test_nfvo_restart.py.)"""
    from mano.nfvo import DEGRADED
    c = env.client
    onboard(c)
    ns = _create(c)
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
    env.nfvo._put_state(ns, DEGRADED, ["fwd"])
    body = c.get(f"{NSI}/{ns}").json()
    assert body["nsState"] == "INSTANTIATED" and "terminate" in body["_links"]
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    assert "DEGRADED: heal it or terminate it" in _is_problem(r, 409)
    r = c.post(f"{NSI}/{ns}/terminate", json={})
    assert r.status_code == 202, r.text
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
    assert c.get(f"{NSI}/{ns}").json()["nsState"] == "NOT_INSTANTIATED"
    r = c.post(f"{NSI}/{ns}/instantiate", json={"nsFlavourId": "default"})
    assert wait_op(c, r.headers["Location"])["operationState"] == "COMPLETED"
