"""The os-ken application: a thin shim between OpenFlow events and ``logic.Fabric``.

Run as ``python -m testbed.controller CONFIG.json`` (``ControllerProcess`` does it).
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

A switch (re)connecting is learned before it is touched (``switch_connected``): its port
description, flows and groups are read; after a controller start no switch is reconciled
until every switch reported its ports (or ``settle_s`` passed), so paths are computed on
the links' real state; then each switch is sent only what differs from what it holds
(``reconcile.diff``), so an unchanged network sees no flow rewritten and loses no packet.
Graphs, attachments, the graphs' numbers and the ports believed down are saved for the
next controller process (``state_path``).

An unhandled error in an event handler stops the controller loudly (exit 3) rather than
dropping events (Faucet's fail-fast habit); the testbed sees the process gone.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass

LOG = logging.getLogger("testbed.controller")
CONFIG_ENV = "TESTBED_CONTROLLER_CONFIG"
# Seconds after the first switch connects that the controller waits for every switch's
# port description before it reconciles the ones it has (config key "settle_s").
SETTLE_S = 5.0
# Seconds the fabric must stay unchanged before the repairs of link failures are prepared
# (a burst of graph installs is not followed link by link; config key "repair_delay_s").
REPAIR_DELAY_S = 0.2


def fail_fast(handler=None, *, locked=True):
    """Stop the controller on an unhandled error. ``locked`` handlers hold the Fabric lock;
    reply handlers must not (a northbound thread waits for them)."""
    if handler is None:
        return functools.partial(fail_fast, locked=locked)

    @functools.wraps(handler)
    def wrapper(self, *args):
        try:
            if not locked:
                return handler(self, *args)
            with self.lock:
                return handler(self, *args)
        except Exception:
            LOG.critical("unhandled error in %s; stopping the controller:\n%s",
                         handler.__name__, traceback.format_exc())
            logging.shutdown()
            os._exit(3)
    return wrapper


@dataclass
class _Sync:
    """A switch's connection being learned: its replies so far (None: not yet in)."""

    dp: object
    ports: list | None = None
    flows: list | None = None
    groups: list | None = None

    def complete(self) -> bool:
        return None not in (self.ports, self.flows, self.groups)


def _port_up(ofp, desc) -> bool:
    """A port is up unless its link is down or it is configured down."""
    return not (desc.state & ofp.OFPPS_LINK_DOWN or desc.config & ofp.OFPPC_PORT_DOWN)


def _build_app():
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import (
        CONFIG_DISPATCHER,
        DEAD_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

    from testbed.apiserver import ApiServer
    from testbed.controller import ofmsg
    from testbed.controller.logic import VLAN_MAX, VLAN_MIN, Fabric
    from testbed.controller.metrics import ControllerMetrics
    from testbed.controller.northbound import Northbound, create_api
    from testbed.controller.reconcile import diff as reconcile_diff
    from testbed.controller.rollout import DRAIN_S, Rollouts
    from testbed.controller.specs import Attachment, Changes, ForwardingGraphSpec, Link
    from testbed.errors import ForwardingGraphError

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
                                 [Attachment(**a) for a in w["attachments"]],
                                 vlan_range=tuple(self.config.get("vlan_range",
                                                                  (VLAN_MIN, VLAN_MAX))))
            self.state_path = self.config.get("state_path")
            self._restore_state()
            self.datapaths: dict[int, object] = {}   # connected and reconciled
            self.ready: set[int] = set()
            # xid -> (threading.Event, or a function called with the replies; replies)
            # multipart requests awaiting replies, by (dpid, xid): xids count per switch
            self.pending: dict[tuple[int, int], tuple[object, list]] = {}
            # Connection learning (see switch_connected): dpid -> what was read so far
            self.syncs: dict[int, _Sync] = {}
            self.reported: set[int] = set()      # switches whose ports were learned
            self.learning = True                 # no switch reconciled before it ends
            self.settle_s = float(self.config.get("settle_s", SETTLE_S))
            self.learn_timer: threading.Timer | None = None
            # (dpid, xid) -> (event, initial): barrier requests awaiting their reply
            self.barriers: dict[tuple[int, int], tuple[threading.Event, bool]] = {}
            self.encoder = ofmsg.Encoder(ofproto_v1_3, ofproto_v1_3_parser)
            self.xid_lock = threading.Lock()   # datapath xid counters, shared by threads
            self.rollouts = Rollouts(self._write_batch, self._barrier_to,
                                     drain_s=float(self.config.get("drain_s", DRAIN_S)))
            self.repair_delay_s = float(self.config.get("repair_delay_s", REPAIR_DELAY_S))
            # os-ken 4 runs its event loop on native threads: the northbound API serves
            # from its own threads, and the lock keeps the Fabric to one caller at a time.
            self.lock = threading.RLock()
            self.metrics = ControllerMetrics(lambda: (len(self.datapaths), len(self.ready),
                                                      len(self.fabric.graphs())))
            self.northbound = Northbound(self)
            self.api = ApiServer(create_api(self.northbound, self.metrics),
                                 int(self.config["api_port"]), name="northbound").start()
            self.stopping = threading.Event()
            threading.Thread(target=self._prepare_repairs, name="repairs",
                             daemon=True).start()
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
            # The previous process's port beliefs, only as a prior so the graphs come back
            # computed as they were (same paths, same numbers): nothing is installed before
            # every switch's real port state is learned (switch_connected).
            self.fabric.set_port_states({(sw, int(port)): False
                                         for sw, port in st.get("down_ports", [])})
            ids = st.get("graph_ids", {})
            later = []
            for g in st.get("graphs", []):  # graphs with their old numbers first
                try:
                    self.fabric.restore_graph(ForwardingGraphSpec.from_dict(g),
                                              ids[g["name"]])
                except (KeyError, ForwardingGraphError) as exc:
                    LOG.warning("saved graph %s gets new ids: %s", g.get("name"), exc)
                    later.append(g)
            for g in later:
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
            graphs = self.fabric.graphs()
            st = {"attachments": [dataclasses.asdict(a)
                                  for a in self.fabric.attachments().values()],
                  "graphs": [g.to_dict() for g in graphs.values()],
                  "graph_ids": {n: self.fabric.graph_ids(n) for n in graphs},
                  "down_ports": [list(p) for p in self.fabric.down_ports()]}
            tmp = self.state_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(st, f)
            os.replace(tmp, self.state_path)

        # ---- applying what the logic decided --------------------------------------
        def apply(self, changes, reason: str = "", on_live=None):
            """Queue ``changes`` for the connected switches (``rollout.Rollouts``: stage by
            stage, one write per switch and stage (``ofmsg.Encoder``), bytes prepared ahead
            for a prepared link repair) and return the ``Rollout``; ``on_live(rollout)``
            is called once its new flows forward packets."""
            return self.rollouts.submit(self.encoder.encode(changes), reason, on_live)

        def _write_batch(self, batch) -> bool:
            """The rollouts' writer: ``batch`` to its switch if connected."""
            dp = self.datapaths.get(batch.dpid)
            if dp is None:
                return False   # the switch gets its whole state when it (re)connects
            with self.xid_lock:
                dp.send(batch.stamped(dp))
            self.metrics.mods_sent(batch.ops)
            return True

        def _barrier_to(self, dpid: int):
            """The rollouts' barrier: the reply's event, None if ``dpid`` is not connected."""
            dp = self.datapaths.get(dpid)
            return None if dp is None else self.send_barrier(dp)

        # ---- link failures prepared ahead ----------------------------------------------
        @fail_fast(locked=False)
        def _prepare_repairs(self) -> None:
            """Background thread: once the fabric has stayed unchanged for
            ``repair_delay_s`` (and the start-up learning is over), prepare each used
            link's repair (``Fabric.prepare_repair``, one link per lock hold, so events
            wait for one link at most) and encode its messages (outside the lock); a change
            of the fabric starts over. A port status then finds its reaction computed and
            encoded."""
            done_gen, seen_gen, since = None, None, time.monotonic()
            while not self.stopping.wait(0.05):
                gen = self.fabric.generation
                if gen != seen_gen:
                    seen_gen, since = gen, time.monotonic()
                if (gen == done_gen or self.learning
                        or time.monotonic() - since < self.repair_delay_s):
                    continue
                t0, count, prepared = time.monotonic(), 0, []
                while True:
                    with self.lock:
                        if self.fabric.generation != gen:
                            break
                        todo = self.fabric.unprepared_links()
                        if not todo:
                            break
                        changes = self.fabric.prepare_repair(todo[0])
                    self.encoder.prepare(changes)
                    prepared.append(id(changes))
                    count += 1
                self.encoder.forget(keep=set(prepared))
                if self.fabric.generation == gen:
                    done_gen = gen
                    LOG.info("repairs prepared: %d links in %.2f s (generation %d)", count,
                             time.monotonic() - t0, gen)

        # ---- a switch (re)connecting: learn, then reconcile -------------------------
        def switch_connected(self, dp) -> None:
            """Read the switch's ports, flows and groups; nothing is sent to it (it is not
            in ``datapaths``) until ``reconcile`` has them all. While the controller is
            still learning (since its start, until every switch of the wiring reported its
            ports or ``settle_s`` after the first one connected) no switch is reconciled:
            paths are computed only once every link's state is known, and meanwhile the
            switches forward with the flows they hold (fail-secure)."""
            self.datapaths.pop(dp.id, None)  # a new connection replaces an old one
            self.ready.discard(dp.id)
            sync = _Sync(dp)
            self.syncs[dp.id] = sync
            p, ofp = dp.ofproto_parser, dp.ofproto
            self.ask(dp, p.OFPPortDescStatsRequest(dp, 0),
                     functools.partial(self._learned, sync, "ports"))
            self.ask(dp, p.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                               ofp.OFPG_ANY, 0, 0, p.OFPMatch()),
                     functools.partial(self._learned, sync, "flows"))
            self.ask(dp, p.OFPGroupDescStatsRequest(dp, 0),
                     functools.partial(self._learned, sync, "groups"))
            if self.learning and self.learn_timer is None:
                self.learn_timer = threading.Timer(self.settle_s, self._settle_timeout)
                self.learn_timer.daemon = True
                self.learn_timer.start()

        @fail_fast
        def _learned(self, sync: _Sync, what: str, replies: list) -> None:
            """One of a connecting switch's replies is complete (event-loop thread, so a
            port description is applied in order with the port-status events)."""
            dpid = sync.dp.id
            if self.syncs.get(dpid) is not sync:
                return  # that connection is gone or was replaced
            setattr(sync, what, replies)
            if what == "ports":
                ofp = sync.dp.ofproto
                ports = {d.port_no: _port_up(ofp, d) for d in replies
                         if d.port_no <= ofp.OFPP_MAX}
                self.reported.add(dpid)
                down = sorted(n for n, up in ports.items() if not up)
                LOG.info("switch %s ports learned: %d, down: %s", self.by_dpid[dpid],
                         len(ports), down or "none")
                before = self.fabric.down_ports()
                self.apply(self.fabric.switch_ports(dpid, ports),
                           f"switch {self.by_dpid[dpid]} port description")
                # the saved state holds the ports believed down, not the others: a switch
                # whose ports are as believed (every one at a bring-up) changes nothing
                # (fat-tree k=8's bring-up saved it 80 times: 3% of the process's CPU)
                if self.fabric.down_ports() != before:
                    self.save_state()
            if self.learning and self.reported >= set(self.by_dpid):
                self._end_learning("every switch reported its ports")
            elif not self.learning and sync.complete():
                self.reconcile([sync])

        @fail_fast
        def _settle_timeout(self) -> None:
            if self.learning:
                missing = sorted(self.by_dpid[d] for d in set(self.by_dpid) - self.reported)
                self._end_learning(f"{self.settle_s:.1f} s passed; no ports from "
                                   f"{', '.join(missing)} (believed as before)")

        def _end_learning(self, why: str) -> None:
            self.learning = False
            if self.learn_timer is not None:
                self.learn_timer.cancel()
            LOG.info("port states learned (%s); reconciling the switches", why)
            self.reconcile([s for s in self.syncs.values() if s.complete()])

        def reconcile(self, syncs: list[_Sync]) -> None:
            """Send each switch only what differs between what it holds and the desired
            state (``reconcile.diff``), then count it connected. The switches' changes go
            out merged in one ``Changes.ordered()`` order, so a path moving across switches
            is made everywhere before any switch breaks the old one."""
            merged = Changes()
            for sync in syncs:
                dp = sync.dp
                flows, groups = self.fabric.state_for(dp.id)
                want = list(self.fabric.base_flows(dp.id)) + list(flows)
                ch = reconcile_diff(want, groups,
                                    [ofmsg.flow_spec(dp, st) for st in sync.flows],
                                    [ofmsg.group_spec(dp, g) for g in sync.groups])
                merged.extend(ch)
                del self.syncs[dp.id]
                self.datapaths[dp.id] = dp
                LOG.info("switch %s (dpid %d) reconciled: holds %d flows, %d groups; wants "
                         "%d flows, %d groups; sends %d flow adds, %d flow deletes, %d group "
                         "adds, %d group modifies, %d group deletes", self.by_dpid[dp.id],
                         dp.id, len(sync.flows), len(sync.groups), len(want), len(groups),
                         len(ch.flow_adds), len(ch.flow_dels), len(ch.group_adds),
                         len(ch.group_mods), len(ch.group_dels))
            with self.xid_lock:
                for op, spec in merged.ordered():
                    dp = self.datapaths[spec.dpid]
                    dp.send_msg(msg := ofmsg.message_for(dp, op, spec))
                    self.metrics.sent(msg)
            for sync in syncs:
                self.send_barrier(sync.dp, initial=True)

        def send_barrier(self, dp, initial: bool = False):
            """Send ``dp`` a barrier request; the event is set by its reply, or at once
            (nothing sent) if ``dp`` is no longer the connected switch of its dpid, or by
            its disconnection (``state_change``)."""
            req = dp.ofproto_parser.OFPBarrierRequest(dp)
            ev = threading.Event()
            with self.xid_lock:   # the disconnection's sweep of barriers holds it too
                if self.datapaths.get(dp.id) is not dp:
                    ev.set()
                    return ev
                dp.set_xid(req)
                self.barriers[(dp.id, req.xid)] = (ev, initial)
            dp.send_msg(req)
            return ev

        def ask(self, dp, req, done) -> None:
            """Send a multipart request; ``done(replies)`` runs on the event loop once
            all its replies are in (no waiting: handlers must not block)."""
            with self.xid_lock:
                dp.set_xid(req)
            self.pending[(dp.id, req.xid)] = (done, [])
            dp.send_msg(req)

        def request(self, dp, req, timeout: float = 5.0) -> list:
            """Send a multipart request and wait (a northbound thread) for all its replies."""
            with self.xid_lock:
                dp.set_xid(req)
            ev = threading.Event()
            self.pending[(dp.id, req.xid)] = (ev, [])
            dp.send_msg(req)
            ev.wait(timeout)
            _ev, replies = self.pending.pop((dp.id, req.xid), (None, []))
            return replies

        def _reply(self, ev) -> None:
            msg = ev.msg
            key = (msg.datapath.id, msg.xid)
            entry = self.pending.get(key)
            if entry is None:
                return
            event, replies = entry
            replies.extend(msg.body if isinstance(msg.body, list) else [msg.body])
            if not (msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE):
                if isinstance(event, threading.Event):
                    event.set()
                else:
                    del self.pending[key]
                    event(replies)

        # ---- OpenFlow events ----------------------------------------------------------
        @set_ev_cls(ofp_event.EventOFPStateChange, MAIN_DISPATCHER)
        @fail_fast
        def switch_ready(self, ev):
            # os-ken reaches MAIN after the features reply and its own port description
            dp = ev.datapath
            if dp.id not in self.by_dpid:
                LOG.warning("unknown switch dpid %s connected; ignoring it", dp.id)
                return
            self.switch_connected(dp)

        @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
        @fail_fast(locked=False)
        def barrier_reply(self, ev):
            dpid = ev.msg.datapath.id
            entry = self.barriers.pop((dpid, ev.msg.xid), None)
            if entry is None:
                return
            event, initial = entry
            if initial:
                self.ready.add(dpid)
            event.set()

        @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
        @fail_fast
        def state_change(self, ev):
            dp = ev.datapath
            sync = self.syncs.get(dp.id) if dp.id is not None else None
            if sync is not None and sync.dp is dp:
                del self.syncs[dp.id]
            if dp.id is not None and self.datapaths.get(dp.id) is dp:
                # A lost control connection is not a data-plane failure: OVS keeps
                # forwarding in secure mode. The switch is reconciled when it reconnects.
                with self.xid_lock:   # no barrier is registered for it after this
                    del self.datapaths[dp.id]
                    # barriers it will never answer (a rollout waiting for one goes on)
                    for key in [k for k in self.barriers if k[0] == dp.id]:
                        self.barriers.pop(key)[0].set()
                self.ready.discard(dp.id)
                LOG.warning("switch %s disconnected", self.by_dpid.get(dp.id))

        @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
        @fail_fast
        def port_status(self, ev):
            t0 = time.monotonic()
            msg = ev.msg
            dp, desc = msg.datapath, msg.desc
            ofp = dp.ofproto
            up = msg.reason != ofp.OFPPR_DELETE and _port_up(ofp, desc)
            believed = self.fabric.down_ports()
            changes = self.fabric.port_status(dp.id, desc.port_no, up)
            prepared = self.encoder.is_prepared(changes)
            where = f"{self.by_dpid.get(dp.id)}:{desc.port_no}"

            def reacted(r) -> None:
                # The reaction: its first stage written (the new paths, and the switch of
                # the paths the cut broke: Changes.stages()); the paths that still carry
                # packets (fast-failover) switch once the switches answered for it.
                first = min(r.sent.values(), default=t0)
                self.metrics.port_event(msg.reason, up, t0, first, r.mods)
                switched = r.sent.get("switch")
                LOG.info("port status %s %s handled in %.1f ms (%d changes%s%s)", where,
                         "up" if up else "down", (first - t0) * 1000, r.mods,
                         ", prepared" if prepared else "",
                         f"; paths in use switched after {(switched - t0) * 1000:.1f} ms"
                         if switched is not None else "")
            first = self.rollouts.idle()   # nothing before it: it starts at once
            rollout = self.apply(changes, f"port {where} {'up' if up else 'down'}", reacted)
            if self.fabric.down_ports() != believed:
                # The next controller's prior (see _restore_state); once the reaction's
                # first stage is written: both want the interpreter, the reaction first.
                # Only when nothing is before it: a rollout before it may be waiting for
                # barrier replies, which only this event loop delivers.
                if first:
                    rollout.started.wait(1.0)
                self.save_state()

        @set_ev_cls([ofp_event.EventOFPPortStatsReply, ofp_event.EventOFPFlowStatsReply,
                     ofp_event.EventOFPGroupDescStatsReply,
                     ofp_event.EventOFPPortDescStatsReply,
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
            self.stopping.set()
            self.rollouts.close()
            self.api.shutdown()

    return TestbedController


def _listen_for_switches(port: int, inherited_fd: int | None) -> None:
    """Make os-ken's OpenFlow listener (``os_ken.lib.hub.listen``) the socket this process
    inherited (``inherited_fd``, listening on 127.0.0.1:``port`` since before this process
    started; see ``ControllerProcess.spawn``), or else listen with the kernel's largest
    connection queue. os-ken's own queue (50) was too short: fat-tree k=8's 80 switches
    connect at once, the SYNs beyond it were dropped and their switches came 1-1.5 s later
    (TCP's first retransmission). ``socket.SOMAXCONN`` is capped by net.core.somaxconn."""
    from os_ken.lib import hub

    listen = hub.listen
    fds = [inherited_fd] if inherited_fd is not None else []

    def listen_here(addr, family=socket.AF_INET, backlog=50, *args, **kwargs):
        if fds and family == socket.AF_INET and tuple(addr[:2]) == ("127.0.0.1", port):
            fd = fds.pop()
            os.set_inheritable(fd, False)   # not passed on to what this process starts
            return socket.socket(fileno=fd)
        return listen(addr, family, max(backlog, socket.SOMAXCONN), *args, **kwargs)
    hub.listen = listen_here


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m testbed.controller CONFIG.json", file=sys.stderr)
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

    _listen_for_switches(cfg["of_port"], cfg.get("of_listen_fd"))
    oscfg.CONF(args=["--ofp-listen-host", "127.0.0.1",
                     "--ofp-tcp-listen-port", str(cfg["of_port"])], project="os_ken")
    app = _build_app()
    sys.modules[__name__].TestbedController = app
    AppManager.run_apps([__name__, "os_ken.controller.ofp_handler"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
