"""The SOL005 NBI under a real `testbed up` (emulation, NFVI server, NFVO process): a client
speaking only HTTP onboards the shipped descriptors, then instantiates, scales, heals and
terminates an NS by following Location headers, with real instances in Mininet; the CLI
reads the same state through the NBI."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx

from mano.remote import RemoteDriver

ROOT = Path(__file__).resolve().parents[2]
VNFD = ROOT / "descriptors" / "vnfd"
NSD = ROOT / "descriptors" / "nsd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(state, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "testbed.cli", *args, "--state", str(state)],
                          check=False, capture_output=True, text=True, timeout=timeout)


class _Callback(BaseHTTPRequestHandler):
    """A subscriber's notification endpoint: GET 204, POSTed notifications recorded."""

    got: ClassVar[list] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def do_POST(self):
        self.got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()


def _follow(c: httpx.Client, r: httpx.Response, timeout: float = 120.0) -> dict:
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + timeout
    while True:
        op = c.get(r.headers["Location"]).json()
        if op["operationState"] not in ("PROCESSING", "ROLLING_BACK"):
            return op
        assert time.monotonic() < deadline, op
        time.sleep(0.2)


def test_sol005_lifecycle_over_http_under_testbed_up(tmp_path):
    """`testbed up --nbi-port P` prints the NBI's URL and where the admin secret is; without
    a token the NBI says 401; with `testbed token`'s the chain3 NS goes through instantiate,
    scale out, heal and terminate (each 202 -> COMPLETED), the NFVI holding exactly the
    instances the NsInstance lists, and /metrics shows the NS, the instances' CPU counters
    and the operation durations; `testbed ns list` and `op list` agree, while a second
    tenant's client sees no NS; a subscriber filtering INSTANTIATE and TERMINATE gets the
    NS identifier and those operations' START/RESULT notifications, in order; `testbed
    down` removes it all."""
    state, port = tmp_path / "state", _free_port()
    up = subprocess.Popen([sys.executable, "-m", "testbed.cli", "up", "--state", str(state),
                           "--nbi-port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = up.stdout.readline()
        assert "testbed up" in first, up.stderr.read() if up.poll() is not None else first
        second = up.stdout.readline()
        m = re.search(r"(http://\S+)", second)
        assert m and m.group(1) == f"http://127.0.0.1:{port}", second
        third = up.stdout.readline()
        assert str(state / "clients" / "admin.secret") in third, third
        drv = RemoteDriver(json.loads((state / "infra.json").read_text())["url"])
        assert httpx.get(f"{m.group(1)}/nslcm/v1/ns_instances").status_code == 401
        r = _cli(state, "token")
        assert r.returncode == 0, r.stderr
        c = httpx.Client(base_url=m.group(1), timeout=120, headers={
            "Version": "2.0.0", "Authorization": f"Bearer {r.stdout.strip()}"})
        for name in ("fw", "fwd", "fwd2"):
            pkg = c.post("/vnfpkgm/v1/vnf_packages", json={}).json()
            r = c.put(f"/vnfpkgm/v1/vnf_packages/{pkg['id']}/package_content",
                      content=(VNFD / f"{name}.yaml").read_bytes())
            assert r.status_code == 204, r.text
        rx = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
        threading.Thread(target=rx.serve_forever, daemon=True).start()
        r = c.post("/nslcm/v1/subscriptions", json={
            "callbackUri": f"http://127.0.0.1:{rx.server_address[1]}/cb",
            "filter": {"operationTypes": ["INSTANTIATE", "TERMINATE"]}})
        assert r.status_code == 201, r.text
        info = c.post("/nsd/v1/ns_descriptors", json={}).json()
        r = c.put(f"/nsd/v1/ns_descriptors/{info['id']}/nsd_content",
                  content=(NSD / "chain3.yaml").read_bytes())
        assert r.status_code == 204, r.text
        r = c.post("/nslcm/v1/ns_instances", json={"nsdId": "chain3", "nsName": "web",
                                                    "nsDescription": "three VNFs"})
        assert r.status_code == 201, r.text
        ns_url = r.headers["Location"]
        op = _follow(c, c.post(f"{ns_url}/instantiate", json={"nsFlavourId": "default"}))
        assert op["operationState"] == "COMPLETED", op

        def vnfcs():
            ns = c.get(ns_url).json()
            return sorted(v["id"] for vnf in ns.get("vnfInstance", [])
                          for v in vnf["instantiatedVnfInfo"]["vnfcResourceInfo"])
        assert vnfcs() == ["fw_1", "fwd2_1", "fwd_1"]
        assert sorted(i.instance_id for i in drv.list_instances()) == vnfcs()

        op = _follow(c, c.post(f"{ns_url}/scale", json={"scaleType": "SCALE_VNF",
                                                        "scaleVnfData": [{
                                                            "vnfInstanceId": "fwd",
                                                            "scaleVnfType": "SCALE_OUT"}]}))
        assert op["operationState"] == "COMPLETED", op
        assert "fwd_2" in vnfcs()
        assert sorted(i.instance_id for i in drv.list_instances()) == vnfcs()
        metrics = c.get("/metrics").text
        assert 'nfv_ns_instances{state="INSTANTIATED"} 1.0' in metrics
        cpu = re.search(r'nfv_instance_cpu_seconds_total\{[^}]*vnfc="fw_1"[^}]*\} (\S+)', metrics)
        assert cpu and float(cpu.group(1)) >= 0.0, metrics
        assert re.search(r'nfv_ns_lcm_operation_duration_seconds_count\{operation="SCALE",'
                         r'outcome="completed"\} 1.0', metrics), metrics
        op = _follow(c, c.post(f"{ns_url}/heal", json={"healVnfData": [{
            "vnfInstanceId": "fw", "additionalParams": {"mode": "restart"}}]}))
        assert op["operationState"] == "COMPLETED", op

        r = _cli(state, "ns", "list")
        assert r.returncode == 0 and "web" in r.stdout and "INSTANTIATED" in r.stdout, r
        r = _cli(state, "op", "list")
        assert r.returncode == 0 and r.stdout.count("COMPLETED") == 3, r.stdout + r.stderr
        r = _cli(state, "client", "add", "bob", "--project", "b")
        assert r.returncode == 0, r.stderr
        r = _cli(state, "ns", "list", "--client", "bob")
        assert r.returncode == 0 and "(none)" in r.stdout, r.stdout + r.stderr

        op = _follow(c, c.post(f"{ns_url}/terminate", json={}))
        assert op["operationState"] == "COMPLETED", op
        assert drv.list_instances() == [] and drv.list_graphs() == []
        assert c.delete(ns_url).status_code == 204
        assert c.get(ns_url).status_code == 404
        deadline = time.monotonic() + 10
        while len(_Callback.got) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        rx.shutdown()
        rx.server_close()
        op = "NsLcmOperationOccurrenceNotification"
        assert [(n["notificationType"], n.get("notificationStatus"), n.get("operation"))
                for n in _Callback.got] == [
            ("NsIdentifierCreationNotification", None, None), (op, "START", "INSTANTIATE"),
            (op, "RESULT", "INSTANTIATE"), (op, "START", "TERMINATE"),
            (op, "RESULT", "TERMINATE"), ("NsIdentifierDeletionNotification", None, None)]
        c.close()
        drv.close()
    finally:
        r = _cli(state, "down", timeout=180)
        up.wait(60)
    assert r.returncode == 0 and up.returncode == 0, up.stderr.read()
