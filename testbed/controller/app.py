"""The os-ken application: a thin shim between OpenFlow events and ``logic.Fabric``.

Run as ``python -m testbed.controller.app CONFIG.json`` (``ControllerProcess`` does it).
Handlers decode events and call the plain-Python ``Fabric``, which returns flow and group
specs; ``ofmsg`` turns those into OpenFlow 1.3 messages. The northbound API (HTTP + JSON on
loopback) is served from the same process by FastAPI on uvicorn (``northbound.py``):

    GET    /v1/health                  switches connected and programmed
    GET    /v1/topology                switches, links (with state), attachments
    PUT    /v1/attachments/NAME        {switch, port, mac, ip}    DELETE likewise
    GET    /v1/graphs                  every forwarding graph with paths and status
    PUT    /v1/graphs/NAME             {match, hops, protection}  install or replace
    GET    /v1/graphs/NAME             one graph          DELETE /v1/graphs/NAME removes it
    GET    /v1/graphs/NAME/stats       the graph's flow counters, read from the switches
    GET    /v1/stats/ports             per-port counters of every switch
    GET    /v1/switches/NAME/state     the flows and groups the switch really holds
    GET    /metrics                    Prometheus metrics (``metrics.py``)

An unhandled error in an event handler stops the controller loudly (exit 3) rather than
dropping events (Faucet's fail-fast habit); the testbed sees the process gone.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import time
import traceback

LOG = logging.getLogger("testbed.controller")
CONFIG_ENV = "TESTBED_CONTROLLER_CONFIG"


def fail_fast(handler=None, *, locked=True):
    """Stop the controller on an unhandled error. ``locked`` handlers hold the Fabric lock;
    reply handlers must not (a northbound thread waits for them)."""
    if handler is None:
        return functools.partial(fail_fast, locked=locked)

    @functools.wraps(handler)
    def wrapper(self, ev):
        try:
            if not locked:
                return handler(self, ev)
            with self.lock:
                return handler(self, ev)
        except Exception:
            LOG.critical("unhandled error in %s; stopping the controller:\n%s",
                         handler.__name__, traceback.format_exc())
            logging.shutdown()
            os._exit(3)
    return wrapper


def _build_app():
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import (
        CONFIG_DISPATCHER,
        DEAD_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from os_ken.ofproto import ofproto_v1_3

    from testbed.controller import ofmsg
    from testbed.controller.logic import Fabric
    from testbed.apiserver import ApiServer
    from testbed.controller.metrics import ControllerMetrics
    from testbed.controller.northbound import Northbound, create_api
    from testbed.controller.specs import Attachment, ForwardingGraphSpec, Link

    class TestbedController(app_manager.OSKenApp):
        OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            with open(os.environ[CONFIG_ENV]) as f:
                self.config = json.load(f)
            w = self.config["wiring"]
            self.names = dict(w["switches"])                       # name -> dpid
            self.by_dpid = {dpid: name for name, dpid in self.names.items()}
            self.fabric = Fabric(self.names,
                                 [Link(**lk) for lk in w["links"]],
                                 [Attachment(**a) for a in w["attachments"]])
            self.state_path = self.config.get("state_path")
            self._restore_state()
            self.datapaths: dict[int, object] = {}
            self.ready: set[int] = set()
            self.pending: dict[int, tuple[object, list]] = {}   # xid -> (event, replies)
            self.barriers: dict[int, tuple[int, object, bool]] = {}  # xid -> (dpid, event, initial)
            # os-ken 4 runs its event loop on native threads: the northbound API serves
            # from its own threads, and the lock keeps the Fabric to one caller at a time.
            self.lock = threading.RLock()
            self.metrics = ControllerMetrics(lambda: (len(self.datapaths), len(self.ready),
                                                      len(self.fabric.graphs())))
            self.northbound = Northbound(self)
            self.api = ApiServer(create_api(self.northbound, self.metrics),
                                 int(self.config["api_port"]), name="northbound").start()
            LOG.info("controller up: %d switches, OpenFlow port %s, API port %s",
                     len(self.names), self.config["of_port"], self.config["api_port"])

        # ---- state that survives a controller restart ------------------------------------
        def _restore_state(self) -> None:
            """Attachments and graphs saved by a previous controller process of this run:
            restored before any switch connects, so a restart does not cut traffic."""
            if not self.state_path or not os.path.exists(self.state_path):
                return
            with open(self.state_path) as f:
                st = json.load(f)
            known = set(self.fabric.attachments())
            for a in st.get("attachments", []):
                if a["name"] not in known:
                    self.fabric.add_attachment(Attachment(**a))
            for g in st.get("graphs", []):
                try:
                    self.fabric.add_graph(ForwardingGraphSpec.from_dict(g))
                except Exception as exc:  # a saved graph that no longer fits: say so, go on
                    LOG.error("saved graph %s not restored: %s", g.get("name"), exc)
            LOG.info("restored %d graphs and %d attachments from %s",
                     len(st.get("graphs", [])), len(st.get("attachments", [])), self.state_path)

        def save_state(self) -> None:
            if not self.state_path:
                return
            import dataclasses
            st = {"attachments": [dataclasses.asdict(a)
                                  for a in self.fabric.attachments().values()],
                  "graphs": [g.to_dict() for g in self.fabric.graphs().values()]}
            tmp = self.state_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, self.state_path)

        # ---- applying what the logic decided --------------------------------------
        def apply(self, changes, reason: str = "") -> int:
            n = 0
            for op, spec in changes.ordered():
                dp = self.datapaths.get(spec.dpid)
                if dp is None:
                    continue  # the switch gets its whole state when it (re)connects
                msg = ofmsg.message_for(dp, op, spec)
                dp.send_msg(msg)
                self.metrics.sent(msg)
                n += 1
            if n:
                LOG.info("sent %d flow/group changes (%s)", n, reason)
            return n

        def sync_switch(self, dp) -> None:
            for msg in ofmsg.delete_all(dp):
                dp.send_msg(msg)
                self.metrics.sent(msg)
            flows, groups = self.fabric.state_for(dp.id)
            for g in groups:
                dp.send_msg(msg := ofmsg.group_mod(dp, g, "add"))
                self.metrics.sent(msg)
            for f in list(self.fabric.base_flows(dp.id)) + list(flows):
                dp.send_msg(msg := ofmsg.flow_add(dp, f))
                self.metrics.sent(msg)
            self.send_barrier(dp, initial=True)
            LOG.info("switch %s (dpid %d) programmed: %d flows, %d groups",
                     self.by_dpid.get(dp.id), dp.id, len(flows), len(groups))

        def send_barrier(self, dp, initial: bool = False):
            req = dp.ofproto_parser.OFPBarrierRequest(dp)
            dp.set_xid(req)
            ev = threading.Event()
            self.barriers[req.xid] = (dp.id, ev, initial)
            dp.send_msg(req)
            return ev

        def barrier_all(self, timeout: float = 5.0) -> None:
            """Wait until every connected switch has processed what was sent to it."""
            events = [self.send_barrier(dp) for dp in list(self.datapaths.values())]
            for ev in events:
                ev.wait(timeout)

        def request(self, dp, req, timeout: float = 5.0) -> list:
            """Send a multipart request and wait (green thread) for all its replies."""
            dp.set_xid(req)
            ev = threading.Event()
            self.pending[req.xid] = (ev, [])
            dp.send_msg(req)
            ev.wait(timeout)
            _ev, replies = self.pending.pop(req.xid, (None, []))
            return replies

        def _reply(self, ev) -> None:
            msg = ev.msg
            entry = self.pending.get(msg.xid)
            if entry is None:
                return
            event, replies = entry
            replies.extend(msg.body if isinstance(msg.body, list) else [msg.body])
            if not (msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE):
                if event is not None:
                    event.set()

        # ---- OpenFlow events ----------------------------------------------------------
        @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
        @fail_fast
        def switch_features(self, ev):
            dp = ev.msg.datapath
            if dp.id not in self.by_dpid:
                LOG.warning("unknown switch dpid %d connected; ignoring it", dp.id)
                return
            self.datapaths[dp.id] = dp
            self.sync_switch(dp)

        @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
        @fail_fast(locked=False)
        def barrier_reply(self, ev):
            entry = self.barriers.pop(ev.msg.xid, None)
            if entry is None:
                return
            dpid, event, initial = entry
            if initial:
                self.ready.add(dpid)
            event.set()

        @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
        @fail_fast
        def state_change(self, ev):
            dp = ev.datapath
            if dp.id is not None and self.datapaths.get(dp.id) is dp:
                # A lost control connection is not a data-plane failure: OVS keeps
                # forwarding in secure mode. The switch is re-synced when it reconnects.
                del self.datapaths[dp.id]
                self.ready.discard(dp.id)
                LOG.warning("switch %s disconnected", self.by_dpid.get(dp.id))

        @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
        @fail_fast
        def port_status(self, ev):
            t0 = time.monotonic()
            msg = ev.msg
            dp, desc = msg.datapath, msg.desc
            ofp = dp.ofproto
            if msg.reason == ofp.OFPPR_DELETE:
                up = False
            else:
                up = not (desc.state & ofp.OFPPS_LINK_DOWN or desc.config & ofp.OFPPC_PORT_DOWN)
            changes = self.fabric.port_status(dp.id, desc.port_no, up)
            n = self.apply(changes, f"port {self.by_dpid.get(dp.id)}:{desc.port_no} "
                                    f"{'up' if up else 'down'}")
            self.metrics.port_event(msg.reason, up, t0, time.monotonic(), n)
            LOG.info("port status %s:%d %s handled in %.1f ms (%d changes)",
                     self.by_dpid.get(dp.id), desc.port_no, "up" if up else "down",
                     (time.monotonic() - t0) * 1000, n)

        @set_ev_cls([ofp_event.EventOFPPortStatsReply, ofp_event.EventOFPFlowStatsReply,
                     ofp_event.EventOFPGroupDescStatsReply,
                     ofp_event.EventOFPGroupStatsReply], MAIN_DISPATCHER)
        @fail_fast(locked=False)
        def stats_reply(self, ev):
            self._reply(ev)

        @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
        def error_msg(self, ev):
            msg = ev.msg
            LOG.error("switch %s reported OpenFlow error type=%d code=%d",
                      self.by_dpid.get(msg.datapath.id), msg.type, msg.code)

        def close(self):
            self.api.shutdown()

    return TestbedController


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m testbed.controller.app CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        cfg = json.load(f)
    os.environ[CONFIG_ENV] = os.path.abspath(argv[0])
    logging.basicConfig(level=getattr(logging, cfg.get("log_level", "INFO")),
                        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("os_ken").setLevel(logging.WARNING)
    from os_ken import cfg as oscfg
    from os_ken.base.app_manager import AppManager
    from os_ken.controller import controller  # noqa: F401  (registers the ofp options)

    oscfg.CONF(args=["--ofp-listen-host", "127.0.0.1",
                     "--ofp-tcp-listen-port", str(cfg["of_port"])], project="os_ken")
    app = _build_app()
    sys.modules[__name__].TestbedController = app
    AppManager.run_apps([__name__, "os_ken.controller.ofp_handler"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
