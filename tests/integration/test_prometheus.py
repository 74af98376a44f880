"""A real Prometheus server (Debian's ``prometheus``) scrapes a running testbed: the NFVO's
NBI ``/metrics`` under `testbed up`, and the controller's. The server runs as a child
process with its own configuration, data folder and port, and is ended by its pid."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from testbed.controller.process import free_port

ROOT = Path(__file__).resolve().parents[2]
VNFD = ROOT / "descriptors" / "vnfd"
NSD = ROOT / "descriptors" / "nsd"
PROMETHEUS = shutil.which("prometheus")
SCRAPE_S = 1


def _cli(state, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "testbed.cli", *args, "--state", str(state)],
                          check=False, capture_output=True, text=True, timeout=timeout)


class Prometheus:
    """A Prometheus server scraping ``targets`` ({job: "host:port"}) every second."""

    def __init__(self, folder: Path, targets: dict[str, str]):
        self.folder = folder
        folder.mkdir(parents=True)
        jobs = "".join(f"  - job_name: {job}\n    static_configs:\n"
                       f"      - targets: ['{addr}']\n" for job, addr in targets.items())
        (folder / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {SCRAPE_S}s\n  evaluation_interval: {SCRAPE_S}s\n"
            f"scrape_configs:\n{jobs}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(folder / "prometheus.log", "wb") as logf:
            proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.proc, self.pid = proc, proc.pid
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                if self.http.get("/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Prometheus not ready within {timeout:.0f} s: {self.log()}")

    def log(self) -> str:
        return (self.folder / "prometheus.log").read_text(errors="replace")[-2000:]

    def query(self, expr: str) -> list[dict]:
        """The instant vector of ``expr`` (Prometheus HTTP API ``/api/v1/query``)."""
        r = self.http.get("/api/v1/query", params={"query": expr})
        assert r.status_code == 200 and r.json()["status"] == "success", r.text
        return r.json()["data"]["result"]

    def value(self, expr: str) -> float | None:
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def wait_value(self, expr: str, want: float, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.value(expr)) != want:
            assert time.monotonic() < deadline, f"{expr} = {got}, expected {want}"
            time.sleep(0.25)

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus server "
                    "(apt-get install prometheus; scripts/install.sh installs it)")
def test_prometheus_server_scrapes_the_testbed_and_sees_an_instantiation(tmp_path):
    """Prometheus scrapes the NFVO and the controller of `testbed up` (both targets up, all
    switches ready); after an NS is instantiated through the NBI, its HTTP API answers that
    the INSTANTIATED NS count went from 0 to 1 over the run, with one completed INSTANTIATE
    in the duration histogram, its three VNFC instances up, one forwarding graph held by the
    controller and more flow_add mods counted than before; every query of the two Grafana
    dashboards evaluates on the server."""
    state, nbi_port = tmp_path / "state", free_port()
    up = subprocess.Popen([sys.executable, "-m", "testbed.cli", "up", "--state", str(state),
                           "--nbi-port", str(nbi_port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prom = None
    try:
        first = up.stdout.readline()
        if not first:                   # it exited: say why
            up.wait(30)
        assert "testbed up" in first, up.stderr.read() if up.poll() is not None else first
        m = re.search(r"(http://\S+)", up.stdout.readline())
        assert m, "no NBI URL printed"
        nbi = m.group(1)
        ctl = json.loads((state / "run" / "controller.json").read_text())
        switches = len(ctl["wiring"]["switches"])
        prom = Prometheus(tmp_path / "prometheus", {
            "nfvo": f"127.0.0.1:{nbi_port}", "controller": f"127.0.0.1:{ctl['api_port']}"})
        prom.wait_ready()
        t0 = time.time()
        prom.wait_value('up{job="nfvo"}', 1.0)
        prom.wait_value('up{job="controller"}', 1.0)
        prom.wait_value('nfv_ns_instances{state="INSTANTIATED"}', 0.0)
        prom.wait_value('testbed_controller_switches{state="ready"}', float(switches))
        prom.wait_value('testbed_controller_graphs', 0.0)
        flow_adds = prom.value('testbed_controller_flow_mods_total{type="flow_add"}')
        assert flow_adds >= switches, flow_adds     # every switch's table-miss flows at least

        token = _cli(state, "token")
        assert token.returncode == 0, token.stderr
        c = httpx.Client(base_url=nbi, timeout=120, headers={
            "Version": "2.0.0", "Authorization": f"Bearer {token.stdout.strip()}"})
        for name in ("fw", "fwd", "fwd2"):
            pkg = c.post("/vnfpkgm/v1/vnf_packages", json={}).json()
            r = c.put(f"/vnfpkgm/v1/vnf_packages/{pkg['id']}/package_content",
                      content=(VNFD / f"{name}.yaml").read_bytes())
            assert r.status_code == 204, r.text
        info = c.post("/nsd/v1/ns_descriptors", json={}).json()
        r = c.put(f"/nsd/v1/ns_descriptors/{info['id']}/nsd_content",
                  content=(NSD / "chain3.yaml").read_bytes())
        assert r.status_code == 204, r.text
        r = c.post("/nslcm/v1/ns_instances", json={"nsdId": "chain3", "nsName": "web",
                                                    "nsDescription": "three VNFs"})
        assert r.status_code == 201, r.text
        r = c.post(f"{r.headers['Location']}/instantiate", json={"nsFlavourId": "default"})
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 120
        while (op := c.get(r.headers["Location"]).json())["operationState"] == "PROCESSING":
            assert time.monotonic() < deadline, op
            time.sleep(0.2)
        assert op["operationState"] == "COMPLETED", op
        c.close()

        prom.wait_value('nfv_ns_instances{state="INSTANTIATED"}', 1.0)
        prom.wait_value('testbed_controller_graphs', 1.0)
        deadline = time.monotonic() + 30
        while prom.value('testbed_controller_flow_mods_total{type="flow_add"}') <= flow_adds:
            assert time.monotonic() < deadline, "no flow_add counted for the NS's graph"
            time.sleep(0.25)
        prom.wait_value('nfv_ns_lcm_operation_duration_seconds_count'
                        '{operation="INSTANTIATE",outcome="completed"}', 1.0)
        end = time.time()                   # evaluated at end, end - 1 s, ... back to t0
        r = prom.http.get("/api/v1/query_range", params={
            "query": 'nfv_ns_instances{state="INSTANTIATED"}',
            "start": end - int(end - t0), "end": end, "step": "1s"})
        assert r.status_code == 200, r.text
        series = r.json()["data"]["result"]
        assert len(series) == 1, series
        seen = [float(v) for _t, v in series[0]["values"]]
        assert seen[0] == 0.0 and seen[-1] == 1.0, (end, series)
        assert seen == sorted(seen), series     # 0 until the instantiation, then 1
        running = prom.query('nfv_instance_up{ns!=""}')
        assert sorted(s["metric"]["vnfc"] for s in running) == \
            ["fw_1", "fwd2_1", "fwd_1"], running
        for dash in ("grafana-nfvo.json", "grafana-controller.json"):
            for panel in json.loads((ROOT / "dashboards" / dash).read_text())["panels"]:
                for t in panel["targets"]:
                    prom.query(t["expr"])       # each dashboard query evaluates
        targets = prom.http.get("/api/v1/targets").json()["data"]["activeTargets"]
        assert {t["labels"]["job"]: t["health"] for t in targets} == \
            {"nfvo": "up", "controller": "up"}, targets
    finally:
        if prom is not None:
            prom.stop()
        r = _cli(state, "down", timeout=180)
        up.wait(60)
    assert r.returncode == 0 and up.returncode == 0, up.stderr.read()
