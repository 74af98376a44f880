"""The controller's Prometheus metrics, served at the northbound's ``/metrics``.

Each measure is defined here, once (base units, ``_total`` for counters, bounded labels):

- ``testbed_controller_flow_mods_total{type}``: OpenFlow messages that change a switch's
  tables, handed to the switch's send queue, by ``type``: ``flow_add``, ``flow_modify``,
  ``flow_delete`` (OFPFC_DELETE and DELETE_STRICT), ``group_add``, ``group_modify``,
  ``group_delete``. Counted since the controller process started.
- ``testbed_controller_port_status_total{reason,link}``: OFPT_PORT_STATUS messages handled,
  by ``reason`` (``add``, ``delete``, ``modify``) and the ``link`` state they report
  (``up``, ``down``).
- ``testbed_controller_reaction_seconds{link}``: histogram of the time from the port status
  handler's start to the last flow or group mod of its reaction's first stage handed to the
  switches' send queues: the new paths, and the switch of the paths the cut broke
  (``Changes.stages()``; the controller's decide-and-send part of a restoration, the
  switch's own time to apply it is not in it). Paths still carrying packets (fast
  failover) switch in a later stage, after a barrier round trip, which is not in it. Only
  port status messages that changed something are observed.
- ``testbed_controller_switches{state}``: switches ``connected`` (OpenFlow session up) and
  ``ready`` (initial programming acknowledged by a barrier); ``testbed_controller_graphs``:
  forwarding graphs held. Read from the controller at scrape time.
"""
from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# OpenFlow 1.3 (section 7.3.4.1 and 7.3.4.2) command codes of OFPT_FLOW_MOD and OFPT_GROUP_MOD
FLOW_COMMANDS = {0: "flow_add", 1: "flow_modify", 2: "flow_modify", 3: "flow_delete",
                 4: "flow_delete"}
GROUP_COMMANDS = {0: "group_add", 1: "group_modify", 2: "group_delete"}
# Changes.ordered() operation -> the type label of the message it is sent as
OP_TYPES = {"flow_add": "flow_add", "flow_del": "flow_delete", "group_add": "group_add",
            "group_mod": "group_modify", "group_del": "group_delete"}
MOD_TYPES = tuple(dict.fromkeys([*FLOW_COMMANDS.values(), *GROUP_COMMANDS.values()]))
PORT_REASONS = {0: "add", 1: "delete", 2: "modify"}     # OFPPR_ADD, OFPPR_DELETE, OFPPR_MODIFY
# from a fraction of a millisecond (a few flow mods) to a second (a whole fabric's reroute)
REACTION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0)


def mod_type(msg) -> str | None:
    """The ``type`` label of an OpenFlow message (None for a message that is no flow or
    group mod). ``msg`` is an os-ken ``OFPFlowMod``/``OFPGroupMod`` (its ``command``)."""
    name = type(msg).__name__
    if name == "OFPFlowMod":
        return FLOW_COMMANDS.get(msg.command)
    if name == "OFPGroupMod":
        return GROUP_COMMANDS.get(msg.command)
    return None


class ControllerMetrics(Collector):
    """The controller's registry. ``state`` is a callable answering ``(connected, ready,
    graphs)`` counts at scrape time."""

    def __init__(self, state):
        self.state = state
        self.registry = CollectorRegistry()
        self.flow_mods = Counter("testbed_controller_flow_mods", "flow and group mods sent "
                                 "to switches", ["type"], registry=self.registry)
        self.port_status = Counter("testbed_controller_port_status", "port status messages "
                                   "handled", ["reason", "link"], registry=self.registry)
        self.reaction = Histogram("testbed_controller_reaction_seconds", "port status "
                                  "handler start to the last flow/group mod of its "
                                  "reaction's first stage sent (new paths; broken paths "
                                  "switched)", ["link"], buckets=REACTION_BUCKETS,
                                  registry=self.registry)
        for t in MOD_TYPES:            # every series exists from the start (rate() needs it)
            self.flow_mods.labels(t)
        for reason in PORT_REASONS.values():
            for link in ("up", "down"):
                self.port_status.labels(reason, link)
        for link in ("up", "down"):
            self.reaction.labels(link)
        self.registry.register(self)

    def sent(self, msg) -> None:
        """Count ``msg`` if it is a flow or group mod (call after ``send_msg``)."""
        t = mod_type(msg)
        if t is not None:
            self.flow_mods.labels(t).inc()

    def mods_sent(self, ops) -> None:
        """Count flow and group mods sent as ``Changes.ordered()`` operations (``flow_add``,
        ``flow_del``, ``group_add``, ``group_mod``, ``group_del``)."""
        for op, n in Tally(ops).items():
            self.flow_mods.labels(OP_TYPES[op]).inc(n)

    def port_event(self, reason: int, up: bool, started: float, now: float,
                   changes: int) -> None:
        """One port status message (``reason`` its OFPPR code) handled from ``started`` to
        ``now`` (seconds, one monotonic clock), which sent ``changes`` mods."""
        link = "up" if up else "down"
        self.port_status.labels(PORT_REASONS.get(reason, "modify"), link).inc()
        if changes:
            self.reaction.labels(link).observe(max(0.0, now - started))

    def collect(self):
        connected, ready, graphs = self.state()
        sw = GaugeMetricFamily("testbed_controller_switches", "switches connected and ready",
                               labels=["state"])
        sw.add_metric(["connected"], connected)
        sw.add_metric(["ready"], ready)
        yield sw
        yield GaugeMetricFamily("testbed_controller_graphs", "forwarding graphs held",
                                value=graphs)
