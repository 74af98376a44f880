"""A client of the testbed's NFVI server (``testbed.infra_server``): an ``NfviDriver`` that
lives in another process, so the NFVO can be killed and restarted while the data center
runs on. HTTP + JSON over httpx (one pooled connection per client); no testbed import."""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable

import httpx

from mano.errors import InfrastructureError
from mano.nfvi import ComputeNodeInfo, Flavour, Image, InfraEvent, InstanceInfo, InstanceMetrics


class RemoteDriver:
    def __init__(self, url: str, *, timeout: float = 60.0, poll_interval: float = 0.1):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._subscribers: list[Callable[[InfraEvent], None]] = []
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._next_event = 0
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def _call(self, method: str, **kwargs):
        for k, v in list(kwargs.items()):
            if dataclasses.is_dataclass(v):
                kwargs[k] = dataclasses.asdict(v)
        try:
            resp = self._http.post(f"/rpc/{method}", json=kwargs)
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"NFVI at {self.url} did not answer {method}: {exc}") \
                from None
        if resp.status_code >= 400:
            try:
                msg = resp.json().get("error", resp.reason_phrase)
            except ValueError:
                msg = resp.reason_phrase
            raise InfrastructureError(f"NFVI refused {method}: {msg}")
        try:
            return resp.json()
        except ValueError:
            raise InfrastructureError(f"NFVI at {self.url} answered {method} with non-JSON "
                                      f"({resp.text[:80]!r})") from None

    def _result(self, method: str, **kwargs):
        return self._call(method, **kwargs)["result"]

    def compute_nodes(self) -> list[ComputeNodeInfo]:
        return [ComputeNodeInfo(**n) for n in self._result("compute_nodes")]

    def endpoints(self) -> dict[str, str]:
        return self._result("endpoints")

    def endpoint_switches(self) -> dict[str, str]:
        return self._result("endpoint_switches")

    def switch_distance(self, a: str, b: str) -> float:
        return float(self._result("switch_distance", a=a, b=b))

    def create_instance(self, instance_id: str, compute_node: str, flavour: Flavour,
                        image: Image) -> InstanceInfo:
        return InstanceInfo(**self._result("create_instance", instance_id=instance_id,
                                           compute_node=compute_node, flavour=flavour,
                                           image=image))

    def delete_instance(self, instance_id: str) -> None:
        self._result("delete_instance", instance_id=instance_id)

    def restart_instance(self, instance_id: str) -> InstanceInfo:
        return InstanceInfo(**self._result("restart_instance", instance_id=instance_id))

    def kill_instance(self, instance_id: str) -> None:
        self._result("kill_instance", instance_id=instance_id)

    def list_instances(self) -> list[InstanceInfo]:
        return [InstanceInfo(**i) for i in self._result("list_instances")]

    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        found = self._result("find_instance", instance_id=instance_id)
        return None if found is None else InstanceInfo(**found)

    def instance_metrics(self, instance_id: str) -> InstanceMetrics:
        return InstanceMetrics(**self._result("instance_metrics", instance_id=instance_id))

    def put_graph(self, graph: dict) -> dict:
        return self._result("put_graph", graph=graph)

    def delete_graph(self, name: str) -> None:
        self._result("delete_graph", name=name)

    def list_graphs(self) -> list[str]:
        return self._result("list_graphs")

    def graph_stats(self, name: str) -> dict:
        return self._result("graph_stats", name=name)

    def probe(self, src: str, dst: str, *, port: int, rate: int = 1000,
              duration: float = 1.0, src_port: int | None = None) -> dict:
        return self._result("probe", src=src, dst=dst, port=port, rate=rate,
                            duration=duration, src_port=src_port)

    def unsubscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    def subscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        if self._poller is None:
            # events from before this client existed are history, not news
            self._next_event = self._call("events", since=1 << 62)["next"]
        self._subscribers.append(callback)
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="nfvi-events", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                body = self._call("events", since=self._next_event)
            except InfrastructureError:
                continue
            self._next_event = body["next"]
            for ev in body["result"]:
                for cb in list(self._subscribers):
                    cb(InfraEvent(**ev))

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(5)
        self._http.close()

    @classmethod
    def wait_ready(cls, url: str, timeout: float = 30.0) -> RemoteDriver:
        drv = cls(url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                drv.compute_nodes()
                return drv
            except InfrastructureError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
