"""Shared set-up of the NBI unit tests: the real FastAPI app over a real NFVO (SQLite in a
temporary folder) on the fake NFVI driver of ``test_nfvo``, and a few SOL005 client steps."""
from __future__ import annotations

import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from test_nfvo import FakeDriver  # tests/unit is on sys.path (rootdir-relative, no __init__)

from mano.nbi.app import create_app
from mano.nbi.records import Records
from mano.nfvo import NFVO

DESCRIPTORS = Path(__file__).resolve().parents[2] / "descriptors"
VNFDS = ("fw", "fwd", "fwd2")


class Env:
    """An NFVO, its NBI app and an httpx client on it (``ASGITransport``: no socket)."""

    def __init__(self, tmp: Path, *, auth=None, page_size: int = 100):
        self.driver = FakeDriver()
        self.nfvo = NFVO(self.driver, tmp / "nfvo.db", auto_rollback=False)
        self.records = Records(tmp / "nbi.db")
        self.app = create_app(self.nfvo, self.records, auth=auth, page_size=page_size,
                              public_url="http://nbi.test")
        # TestClient is an httpx.Client that calls the app in-process
        self.client = TestClient(self.app, base_url="http://nbi.test")

    def close(self) -> None:
        self.app.state.lcm.runner.join()
        self.app.state.notifier.close()
        self.client.close()
        self.nfvo.close()
        self.records.close()


def onboard(c: httpx.Client, nsd: str = "chain3", vnfds=VNFDS, headers=None) -> str:
    """Onboard ``vnfds`` as VNF packages and ``nsd`` as an NSD; the NsdInfo id."""
    for v in vnfds:
        r = c.post("/vnfpkgm/v1/vnf_packages", json={}, headers=headers)
        assert r.status_code == 201, r.text
        r2 = c.put(f"/vnfpkgm/v1/vnf_packages/{r.json()['id']}/package_content",
                   content=(DESCRIPTORS / "vnfd" / f"{v}.yaml").read_bytes(),
                   headers={"Content-Type": "text/plain", **(headers or {})})
        assert r2.status_code == 204, r2.text
    r = c.post("/nsd/v1/ns_descriptors", json={}, headers=headers)
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    r = c.put(f"/nsd/v1/ns_descriptors/{iid}/nsd_content",
              content=(DESCRIPTORS / "nsd" / f"{nsd}.yaml").read_bytes(),
              headers={"Content-Type": "text/plain", **(headers or {})})
    assert r.status_code == 204, r.text
    return iid


def wait_op(c: httpx.Client, location: str, headers=None, timeout: float = 10.0) -> dict:
    """Follow an operation occurrence until it leaves PROCESSING."""
    deadline = time.monotonic() + timeout
    while True:
        op = c.get(location, headers=headers).json()
        if op["operationState"] not in ("PROCESSING", "ROLLING_BACK"):
            return op
        assert time.monotonic() < deadline, op
        time.sleep(0.02)
