"""The controller's northbound API: JSON over HTTP on loopback, served by FastAPI (uvicorn,
in a thread of the controller process) and Prometheus metrics at ``/metrics``.

Routes are listed in ``app.py``. Errors are JSON ``{"error": "..."}`` with 400 for bad input,
404 for unknown names or routes, 405 for a method a route does not have, 409 for conflicts,
500 for a bug. ``Northbound`` holds the handlers (plain methods on the os-ken app's state);
``create_api`` maps them to routes. (os-ken 4 no longer ships Ryu's ``os_ken.app.wsgi``
routing, so the project's HTTP stack, FastAPI, serves here too.)
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Annotated

from fastapi import Body, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from testbed.controller.documents import check_attachment
from testbed.controller.specs import Attachment, ForwardingGraphSpec
from testbed.errors import ControllerError, ForwardingGraphError

LOG = logging.getLogger("testbed.controller.northbound")
NAME = r"^[A-Za-z0-9_.\-]{1,64}$"
# Seconds a graph install or removal waits for its flows to be carried out before it
# answers anyway (the switches then get them when they reconnect).
ANSWER_TIMEOUT_S = 10.0
Name = Annotated[str, Path(pattern=NAME)]
Payload = Annotated[dict, Body(default_factory=dict)]


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_api(nb: Northbound, metrics=None) -> FastAPI:
    """The FastAPI application of ``nb``'s handlers (``metrics``: a ``ControllerMetrics``
    whose registry ``/metrics`` serves). Handlers are plain ``def``s: FastAPI runs them in
    its worker threads, where they may wait for switch replies."""
    api = FastAPI(title="testbed controller northbound", version="1")

    api.get("/v1/health")(nb.health)
    api.get("/v1/topology")(nb.topology)

    @api.put("/v1/attachments/{name}")
    def put_attachment(name: Name, payload: Payload):
        return nb.put_attachment(name, payload)

    @api.delete("/v1/attachments/{name}", status_code=204)
    def delete_attachment(name: Name):
        nb.delete_attachment(name)

    api.get("/v1/graphs")(nb.list_graphs)

    @api.put("/v1/graphs/{name}")
    def put_graph(name: Name, payload: Payload):
        return nb.put_graph(name, payload)

    @api.get("/v1/graphs/{name}")
    def get_graph(name: Name):
        return nb.get_graph(name)

    @api.delete("/v1/graphs/{name}", status_code=204)
    def delete_graph(name: Name):
        nb.delete_graph(name)

    @api.get("/v1/graphs/{name}/stats")
    def graph_stats(name: Name):
        return nb.graph_stats(name)

    api.get("/v1/stats/ports")(nb.port_stats)

    @api.get("/v1/switches/{name}/state")
    def switch_state(name: Name):
        return nb.switch_state(name)

    if metrics is not None:
        @api.get("/metrics")
        def prometheus_metrics():
            """The controller's metrics (``testbed.controller.metrics``), text format."""
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @api.exception_handler(HTTPError)
    async def http_error(_request: Request, exc: HTTPError):
        return _error(exc.status, str(exc))

    @api.exception_handler(ForwardingGraphError)
    async def bad_graph(_request: Request, exc: ForwardingGraphError):
        return _error(400, str(exc))

    @api.exception_handler(ControllerError)
    async def conflict(_request: Request, exc: ControllerError):
        return _error(409, str(exc))

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}"
                          for e in exc.errors())
        status = 404 if all(e.get("loc", ("",))[0] == "path" for e in exc.errors()) else 400
        return _error(status, f"{request.method} {request.url.path}: {where}")

    @api.exception_handler(StarletteHTTPException)
    async def no_route(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, f"no route {request.method} {request.url.path}"
                      if exc.status_code in (404, 405) else str(exc.detail))

    @api.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        LOG.exception("northbound %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error: {exc!r}")

    return api


class Northbound:
    """The northbound's handlers over the os-ken app ``app`` (its Fabric, lock, datapaths).
    Each raises ``HTTPError``, ``ForwardingGraphError`` or ``ControllerError``."""

    def __init__(self, app):
        self.app = app

    # ---- handlers -------------------------------------------------------------------
    def health(self):
        a = self.app
        return {"switches": len(a.names), "connected": len(a.datapaths),
                "ready": len(a.ready)}

    def topology(self):
        f = self.app.fabric
        with self.app.lock:
            return {"switches": self.app.names,
                    "links": [dict(lk) for lk in f.link_states()],
                    "attachments": [dataclasses.asdict(x) for x in f.attachments().values()]}

    def put_attachment(self, name, payload):
        if payload.get("name", name) != name:
            raise HTTPError(400, f"attachment name in the path ({name}) and body differ")
        payload["name"] = name
        try:
            doc = check_attachment(payload)
        except ControllerError as exc:
            raise HTTPError(400, str(exc)) from None
        att = Attachment(doc.name, doc.switch, doc.port, doc.mac, doc.ip)
        if att.switch not in self.app.names:
            raise HTTPError(400, f"attachment {name}: unknown switch {att.switch!r}")
        with self.app.lock:
            self.app.apply(self.app.fabric.add_attachment(att), f"attachment {name}")
            self.app.save_state()
        return {"name": name}

    def delete_attachment(self, name):
        with self.app.lock:
            if name not in self.app.fabric.attachments():
                raise HTTPError(404, f"no attachment {name!r}")
            self.app.apply(self.app.fabric.remove_attachment(name),
                           f"attachment {name} removed")
            self.app.save_state()

    def _graph_view(self, name):
        f = self.app.fabric
        return {"spec": f.graph_spec(name).to_dict(), "paths": f.graph_paths(name),
                "pairs": f.graph_pairs(name), "status": f.graph_status(name)}

    def list_graphs(self):
        with self.app.lock:
            return {n: self._graph_view(n) for n in self.app.fabric.graphs()}

    def put_graph(self, name, payload):
        if payload.get("name", name) != name:
            raise HTTPError(400, f"graph name in the path ({name}) and body differ")
        payload["name"] = name
        spec = ForwardingGraphSpec.from_dict(payload)
        with self.app.lock:
            rollout = self.app.apply(self.app.fabric.add_graph(spec), f"graph {name}")
            self.app.save_state()
            view = self._graph_view(name)
        # answer once the switches forward on the new flows (the old paths' deletion,
        # after a drain, is not waited for)
        rollout.live.wait(ANSWER_TIMEOUT_S)
        return view

    def get_graph(self, name):
        with self.app.lock:
            self._known(name)
            return self._graph_view(name)

    def delete_graph(self, name):
        with self.app.lock:
            self._known(name)
            rollout = self.app.apply(self.app.fabric.remove_graph(name),
                                     f"graph {name} removed")
            self.app.save_state()
        rollout.wait(ANSWER_TIMEOUT_S)   # answer once the switches hold none of its flows

    def _known(self, name):
        if not self.app.fabric.has_graph(name):
            raise HTTPError(404, f"no forwarding graph {name!r}; graphs: "
                                 f"{', '.join(sorted(self.app.fabric.graphs())) or 'none'}")

    def graph_stats(self, name):
        f = self.app.fabric
        with self.app.lock:
            self._known(name)
            cookie, mask = f.graph_cookie(name), f.COOKIE_MASK
        flows = []
        for dpid, dp in list(self.app.datapaths.items()):
            p = dp.ofproto_parser
            req = p.OFPFlowStatsRequest(dp, 0, dp.ofproto.OFPTT_ALL, dp.ofproto.OFPP_ANY,
                                        dp.ofproto.OFPG_ANY, cookie, mask, p.OFPMatch())
            for st in self.app.request(dp, req):
                flows.append({"switch": self.app.by_dpid[dpid], "cookie": st.cookie,
                              "priority": st.priority, "match": _match_dict(st.match),
                              "packets": st.packet_count, "bytes": st.byte_count})
        groups = []
        for dpid, dp in list(self.app.datapaths.items()):
            req = dp.ofproto_parser.OFPGroupStatsRequest(dp, 0, dp.ofproto.OFPG_ALL)
            for st in self.app.request(dp, req):
                groups.append({"switch": self.app.by_dpid[dpid], "dpid": dpid,
                               "group_id": st.group_id,
                               "buckets": [{"packets": b.packet_count, "bytes": b.byte_count}
                                           for b in st.bucket_stats]})
        with self.app.lock:
            return {"graph": name, "flows": flows,
                    **f.graph_counters(name, flows, groups)}

    def port_stats(self):
        out = {}
        for dpid, dp in list(self.app.datapaths.items()):
            p = dp.ofproto_parser
            req = p.OFPPortStatsRequest(dp, 0, dp.ofproto.OFPP_ANY)
            out[self.app.by_dpid[dpid]] = {
                str(st.port_no): {"rx_packets": st.rx_packets, "tx_packets": st.tx_packets,
                                  "rx_bytes": st.rx_bytes, "tx_bytes": st.tx_bytes,
                                  "rx_dropped": st.rx_dropped, "tx_dropped": st.tx_dropped}
                for st in self.app.request(dp, req) if st.port_no < 0xFFFFFF00}
        return out

    def switch_state(self, name):
        if name not in self.app.names:
            raise HTTPError(404, f"no switch {name!r}")
        dp = self.app.datapaths.get(self.app.names[name])
        if dp is None:
            raise HTTPError(409, f"switch {name} is not connected")
        p, ofp = dp.ofproto_parser, dp.ofproto
        flows = self.app.request(dp, p.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                                           ofp.OFPG_ANY, 0, 0, p.OFPMatch()))
        groups = self.app.request(dp, p.OFPGroupDescStatsRequest(dp, 0))
        return {"flows": [{"cookie": st.cookie, "priority": st.priority,
                           "match": _match_dict(st.match), "packets": st.packet_count}
                          for st in flows],
                "groups": [{"group_id": g.group_id, "type": g.type,
                            "buckets": len(g.buckets)} for g in groups]}


def _match_dict(match) -> dict:
    out = {}
    for k, v in match.items():
        out[k] = v if isinstance(v, (int, str)) else str(v)
    return out
