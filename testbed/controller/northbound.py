"""The controller's northbound API: a small WSGI application (JSON over HTTP on loopback).

Routes are listed in ``app.py``. Errors are JSON ``{"error": "..."}`` with 400 for bad input,
404 for unknown names, 409 for conflicts, 504 when switches do not answer.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re

from testbed.errors import ControllerError, ForwardingGraphError

LOG = logging.getLogger("testbed.controller.northbound")
NAME = r"([A-Za-z0-9_.\-]{1,64})"


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
               404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
               500: "Internal Server Error", 504: "Gateway Timeout"}


class Northbound:
    def __init__(self, app):
        self.app = app
        self.routes = [
            ("GET", r"/v1/health", self.health),
            ("GET", r"/v1/topology", self.topology),
            ("PUT", rf"/v1/attachments/{NAME}", self.put_attachment),
            ("DELETE", rf"/v1/attachments/{NAME}", self.delete_attachment),
            ("GET", r"/v1/graphs", self.list_graphs),
            ("PUT", rf"/v1/graphs/{NAME}", self.put_graph),
            ("GET", rf"/v1/graphs/{NAME}", self.get_graph),
            ("DELETE", rf"/v1/graphs/{NAME}", self.delete_graph),
            ("GET", rf"/v1/graphs/{NAME}/stats", self.graph_stats),
            ("GET", r"/v1/stats/ports", self.port_stats),
            ("GET", rf"/v1/switches/{NAME}/state", self.switch_state),
        ]

    # ---- WSGI ---------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        status, body = 200, None
        try:
            handler, args, allowed = None, (), False
            for m, pattern, h in self.routes:
                mt = re.fullmatch(pattern, path)
                if mt:
                    allowed = True
                    if m == method:
                        handler, args = h, mt.groups()
                        break
            if handler is None:
                raise HTTPError(405 if allowed else 404, f"no route {method} {path}")
            payload = None
            if method in ("PUT", "POST"):
                payload = self._read_json(environ)
            body = handler(*args, payload) if payload is not None else handler(*args)
        except HTTPError as exc:
            status, body = exc.status, {"error": str(exc)}
        except ForwardingGraphError as exc:
            status, body = 400, {"error": str(exc)}
        except ControllerError as exc:
            status, body = 409, {"error": str(exc)}
        except Exception as exc:  # a bug: answer, and log it loudly
            LOG.exception("northbound %s %s failed", method, path)
            status, body = 500, {"error": f"internal error: {exc!r}"}
        data = b"" if body is None else json.dumps(body).encode()
        start_response(f"{status} {STATUS_TEXT.get(status, '')}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _read_json(environ):
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(n) if n else b""
            return json.loads(raw or b"{}")
        except ValueError as exc:
            raise HTTPError(400, f"body is not valid JSON: {exc}") from None

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
        from testbed.controller.specs import Attachment
        if payload.get("name", name) != name:
            raise HTTPError(400, f"attachment name in the path ({name}) and body differ")
        payload["name"] = name
        try:
            att = Attachment(**payload)
        except TypeError as exc:
            raise HTTPError(400, f"bad attachment: {exc}") from None
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
        return {"spec": f.graphs()[name].to_dict(), "paths": f.graph_paths(name),
                "status": f.graph_status(name)}

    def list_graphs(self):
        with self.app.lock:
            return {n: self._graph_view(n) for n in self.app.fabric.graphs()}

    def put_graph(self, name, payload):
        from testbed.controller.specs import ForwardingGraphSpec
        if payload.get("name", name) != name:
            raise HTTPError(400, f"graph name in the path ({name}) and body differ")
        payload["name"] = name
        spec = ForwardingGraphSpec.from_dict(payload)
        with self.app.lock:
            self.app.apply(self.app.fabric.add_graph(spec), f"graph {name}")
            self.app.save_state()
            view = self._graph_view(name)
        self.app.barrier_all()  # answer once the switches hold the flows
        return view

    def get_graph(self, name):
        with self.app.lock:
            self._known(name)
            return self._graph_view(name)

    def delete_graph(self, name):
        with self.app.lock:
            self._known(name)
            self.app.apply(self.app.fabric.remove_graph(name), f"graph {name} removed")
            self.app.save_state()
        self.app.barrier_all()
        return None

    def _known(self, name):
        if name not in self.app.fabric.graphs():
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
