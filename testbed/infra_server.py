"""The emulated NFVI served to other processes: JSON over HTTP on loopback.

``POST /rpc/METHOD`` with the method's keyword arguments as a JSON object answers
``{"result": ...}`` or, for an error the testbed raised on purpose, status 400 with
``{"error": "...", "type": "..."}``. Events are fetched with ``POST /rpc/events
{"since": N}``. ``mano.remote.RemoteDriver`` is the client: it lets an NFVO in its own
process (which can be killed and restarted) drive the data center.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mano.nfvi import Flavour, Image, InfraEvent
from testbed.errors import TestbedError

log = logging.getLogger(__name__)

METHODS = ("compute_nodes", "endpoints", "endpoint_switches", "switch_distance",
           "create_instance", "delete_instance", "restart_instance", "kill_instance",
           "list_instances", "instance_metrics", "put_graph", "delete_graph", "list_graphs",
           "graph_stats", "probe")


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class InfraServer:
    def __init__(self, driver, host: str = "127.0.0.1", port: int = 0):
        self.driver = driver
        self.events: list[dict] = []
        self._ev_lock = threading.Lock()
        driver.subscribe(self._on_event)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 (http.server's name)
                status, body = server.handle(self.path, self._body())
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b"{}"

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="infra-rpc",
                                       daemon=True)

    def start(self) -> InfraServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _on_event(self, ev: InfraEvent) -> None:
        with self._ev_lock:
            self.events.append(dataclasses.asdict(ev))

    def handle(self, path: str, raw: bytes) -> tuple[int, dict]:
        if not path.startswith("/rpc/"):
            return 404, {"error": f"no route {path}"}
        method = path[len("/rpc/"):]
        try:
            kwargs = json.loads(raw or b"{}")
        except ValueError as exc:
            return 400, {"error": f"body is not JSON: {exc}", "type": "ValueError"}
        if method == "events":
            since = int(kwargs.get("since", 0))
            with self._ev_lock:
                return 200, {"result": self.events[since:], "next": len(self.events)}
        if method not in METHODS:
            return 404, {"error": f"unknown method {method!r}; known: {', '.join(METHODS)}"}
        if "flavour" in kwargs:
            kwargs["flavour"] = Flavour(**kwargs["flavour"])
        if "image" in kwargs:
            kwargs["image"] = Image(**kwargs["image"])
        try:
            return 200, {"result": _jsonable(getattr(self.driver, method)(**kwargs))}
        except TestbedError as exc:
            return 400, {"error": str(exc), "type": type(exc).__name__}
        except TypeError as exc:
            return 400, {"error": f"{method}: {exc}", "type": "TypeError"}
        except Exception as exc:  # a bug: answer and log it
            log.exception("infra RPC %s failed", method)
            return 500, {"error": f"internal error in {method}: {exc!r}", "type": "internal"}
