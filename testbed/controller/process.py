"""Start, talk to and stop the controller process (the os-ken app of ``app.py``).

The controller runs in its own process so that eventlet's monkeypatching never leaks into
Mininet or SimPy. The testbed talks to it over its northbound API (HTTP + JSON on loopback).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from testbed.errors import ControllerError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NorthboundClient:
    """A thin client of the controller's northbound API (httpx, one connection pool).
    Every failure raises ``ControllerError`` naming the request and the reason."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def _http(self):
        # made (and httpx imported, 50 ms) at the first request: the emulator starts the
        # controller process first
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import httpx
                    self._client = httpx.Client(base_url=self.base_url,
                                                timeout=self.timeout)
        return self._client

    def request(self, method: str, path: str, body: object = None) -> object:
        import httpx
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ControllerError(f"controller at {self.base_url} did not answer "
                                  f"{method} {path}: {exc}") from None
        if resp.status_code >= 400:
            try:
                msg = resp.json().get("error", "")
            except ValueError:
                msg = resp.reason_phrase
            raise ControllerError(f"controller refused {method} {path}: {msg}")
        return resp.json() if resp.content else None

    def metrics(self) -> str:
        """The controller's Prometheus metrics (text format)."""
        import httpx
        try:
            return self._http.get("/metrics").raise_for_status().text
        except httpx.HTTPError as exc:
            raise ControllerError(f"controller at {self.base_url}: /metrics: {exc}") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # conveniences --------------------------------------------------------------------
    def health(self) -> dict:
        return self.request("GET", "/v1/health")

    def topology(self) -> dict:
        return self.request("GET", "/v1/topology")

    def put_attachment(self, att: dict) -> None:
        self.request("PUT", f"/v1/attachments/{att['name']}", att)

    def delete_attachment(self, name: str) -> None:
        self.request("DELETE", f"/v1/attachments/{name}")

    def put_graph(self, graph: dict) -> dict:
        return self.request("PUT", f"/v1/graphs/{graph['name']}", graph)

    def delete_graph(self, name: str) -> None:
        self.request("DELETE", f"/v1/graphs/{name}")

    def graphs(self) -> dict:
        return self.request("GET", "/v1/graphs")

    def graph(self, name: str) -> dict:
        return self.request("GET", f"/v1/graphs/{name}")

    def graph_stats(self, name: str) -> dict:
        return self.request("GET", f"/v1/graphs/{name}/stats")

    def port_stats(self) -> dict:
        return self.request("GET", "/v1/stats/ports")

    def switch_state(self, switch: str) -> dict:
        """What the switch really holds (flow and group dumps from the switch)."""
        return self.request("GET", f"/v1/switches/{switch}/state")

    def wait_switches(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last: dict = {}
        while time.monotonic() < deadline:
            last = self.health()
            if last.get("ready", 0) >= n:
                return
            time.sleep(0.02)
        raise ControllerError(f"only {last.get('ready', 0)} of {n} switches connected to the "
                              f"controller within {timeout:.0f} s")


class ControllerProcess:
    """The controller as a child process, logging into ``run_dir/controller.log``."""

    def __init__(self, run_dir: Path, wiring: dict, *, of_port: int | None = None,
                 api_port: int | None = None, log_level: str = "INFO",
                 vlan_range: tuple[int, int] | None = None):
        self.run_dir = Path(run_dir)
        # the VLAN ids each link may give out (Fabric's vlan_range); None: 1..4094
        self.vlan_range = vlan_range
        self.wiring = wiring
        self.of_port = of_port or free_port()
        self.api_port = api_port or free_port()
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.log_path = self.run_dir / "controller.log"
        self.client = NorthboundClient(f"http://127.0.0.1:{self.api_port}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 20.0) -> None:
        """Start the process and wait until its API answers (``wait_ready``)."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process and return at once (it imports and listens in about 0.6 s
        here; the emulator builds the network meanwhile). ``wait_ready`` waits for it."""
        cfg = self.run_dir / "controller.json"
        config = {"wiring": self.wiring, "of_port": self.of_port, "api_port": self.api_port,
                  "log_level": self.log_level,
                  "state_path": str(self.run_dir / "controller-state.json")}
        if self.vlan_range is not None:
            config["vlan_range"] = list(self.vlan_range)
        # The OpenFlow port listens from now on, in this process, and the controller
        # inherits the socket: a switch made before the controller has booted connects at
        # once (the kernel queues it) instead of retrying a second later (OVS's first
        # back-off), and the switches' hellos wait in the queue until it accepts them.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.of_port))
            listener.listen(socket.SOMAXCONN)
        except OSError as exc:
            listener.close()
            raise ControllerError(
                f"cannot listen on 127.0.0.1:{self.of_port} for the switches: "
                f"{exc.strerror or exc}; another process holds the port (a controller "
                f"left by a killed run: `testbed clean` ends it)") from None
        config["of_listen_fd"] = listener.fileno()
        try:
            cfg.write_text(json.dumps(config))
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "testbed.controller", str(cfg)],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    start_new_session=True, pass_fds=(listener.fileno(),))
        finally:
            listener.close()   # the controller's only: switches find none when it is gone

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the API answers. Raises ``ControllerError`` with the log's end if the
        process exits or does not answer within ``timeout`` seconds (then it is stopped)."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ControllerError(f"controller exited at start (code {self.proc.returncode})"
                                      f"; its log {self.log_path} ends:\n{self.log_tail()}")
            try:
                self.client.health()
                return
            except ControllerError:
                time.sleep(0.02)
        self.stop()
        raise ControllerError(f"controller did not answer within {timeout:.0f} s; log "
                              f"{self.log_path}:\n{self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
