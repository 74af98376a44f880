"""The emulated NFVI served to other processes: JSON over HTTP on loopback (FastAPI on
uvicorn, in a thread of the process that owns the emulation).

``POST /rpc/METHOD`` with the method's keyword arguments as a JSON object answers
``{"result": ...}`` or, for an error the testbed raised on purpose, status 400 with
``{"error": "...", "type": "..."}``. Events are fetched with ``POST /rpc/events
{"since": N}``. ``mano.remote.RemoteDriver`` is the client: it lets an NFVO in its own
process (which can be killed and restarted) drive the data center.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Annotated

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mano.errors import MANOError
from mano.nfvi import Flavour, Image, InfraEvent
from testbed.apiserver import ApiServer
from testbed.errors import TestbedError

log = logging.getLogger(__name__)

METHODS = ("compute_nodes", "endpoints", "endpoint_switches", "switch_distance",
           "create_instance", "delete_instance", "restart_instance", "kill_instance",
           "list_instances", "find_instance", "instance_metrics", "put_graph", "delete_graph", "list_graphs",
           "graph_stats", "probe")
Kwargs = Annotated[dict, Body(default_factory=dict)]


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class InfraServer:
    """``driver`` (an ``NfviDriver``) served on 127.0.0.1:``port`` (0: any free one)."""

    def __init__(self, driver, host: str = "127.0.0.1", port: int = 0):
        self.driver = driver
        self.events: list[dict] = []
        self._ev_lock = threading.Lock()
        driver.subscribe(self._on_event)
        self.server = ApiServer(self._api(), port, host, name="infra-rpc")
        self.port = self.server.port

    def _api(self) -> FastAPI:
        api = FastAPI(title="testbed NFVI RPC", version="1")

        @api.post("/rpc/{method}")
        def rpc(method: str, kwargs: Kwargs):
            status, body = self.handle(method, kwargs)
            return JSONResponse(body, status_code=status)

        @api.exception_handler(RequestValidationError)
        async def bad_body(request: Request, exc: RequestValidationError):
            why = "; ".join(str(e.get("msg")) for e in exc.errors())
            return JSONResponse({"error": f"{request.url.path}: the body must be a JSON "
                                          f"object of keyword arguments ({why})",
                                 "type": "ValueError"}, status_code=400)

        @api.exception_handler(StarletteHTTPException)
        async def no_route(request: Request, exc: StarletteHTTPException):
            return JSONResponse({"error": f"no route {request.method} {request.url.path}"},
                                status_code=exc.status_code)
        return api

    def start(self) -> InfraServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def _on_event(self, ev: InfraEvent) -> None:
        with self._ev_lock:
            self.events.append(dataclasses.asdict(ev))

    def handle(self, method: str, kwargs: dict) -> tuple[int, dict]:
        """Call ``method`` of the driver with ``kwargs``: (HTTP status, JSON body)."""
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
        except (TestbedError, MANOError) as exc:   # refused on purpose (the drivers translate)
            return 400, {"error": str(exc), "type": type(exc).__name__}
        except TypeError as exc:
            return 400, {"error": f"{method}: {exc}", "type": "TypeError"}
        except Exception as exc:  # a bug: answer and log it
            log.exception("infra RPC %s failed", method)
            return 500, {"error": f"internal error in {method}: {exc!r}", "type": "internal"}
