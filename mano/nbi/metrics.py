"""The NFVO's Prometheus metrics, served at ``/metrics`` (text format, ``prometheus_client``).

Each measure is defined here, once (base units, ``_total`` for counters, labels bounded by
what exists now: states, operation types, compute nodes, live instances, programmed graphs):

- ``nfv_ns_instances{state}``: NS instances by SOL005 state (NOT_INSTANTIATED counts the
  NFVO's TERMINATED too).
- ``nfv_ns_lcm_operation_duration_seconds{operation,outcome}``: histogram of NS LCM
  operation occurrences, from their start to their first end state, COMPLETED or
  FAILED_TEMP (outcome ``completed`` / ``failed_temp``), as recorded by the NFVO's clock.
  Counted by this process since it started.
- ``nfv_vim_vcpus{node,state}``, ``nfv_vim_memory_bytes{node,state}``,
  ``nfv_vim_disk_bytes{node,state}``: the VIM's capacity per compute node, ``state`` used or
  free (capacity = used + free; MB and GB of the flavours are MiB and GiB).
- ``nfv_instance_cpu_seconds_total{vnfc,ns,vnfd}``: CPU time of an instance (cgroup
  accounting); ``nfv_instance_packets_total`` / ``nfv_instance_bytes_total``: packets and
  bytes its VNF program forwarded; ``nfv_instance_up``: 1 while alive. Read from the NFVI
  at scrape time, for every INSTANTIATED VNF instance. The label is ``vnfc`` (the VNFC
  instance id): Prometheus gives ``instance`` to the scrape target and would rename ours.
- ``nfv_graph_flow_packets_total{graph}`` / ``nfv_graph_flow_bytes_total{graph}``: the sum
  of the packet (byte) counters of all the forwarding graph's flow entries on all switches,
  i.e. packet-hops, not end-to-end packets. Read from the controller at scrape time.
- ``nfv_metrics_collection_errors_total``: readings the NFVI refused during scrapes.
"""
from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mano.errors import MANOError
from mano.opocc import OpOcc, OpState
from mano.vnfm import INSTANTIATED

log = logging.getLogger(__name__)
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
UNITS = {"vcpu": ("nfv_vim_vcpus", 1.0), "memory_mb": ("nfv_vim_memory_bytes", 2.0 ** 20),
         "disk_gb": ("nfv_vim_disk_bytes", 2.0 ** 30)}


class NfvoMetrics(Collector):
    """A registry holding the NFVO's metrics; ``on_op`` is an ``OpOccManager`` listener."""

    def __init__(self, nfvo):
        self.nfvo = nfvo
        self.registry = CollectorRegistry()
        self.durations = Histogram(
            "nfv_ns_lcm_operation_duration_seconds", "NS LCM operation occurrences, start to "
            "COMPLETED or FAILED_TEMP", ["operation", "outcome"], buckets=BUCKETS,
            registry=self.registry)
        self.errors = Counter("nfv_metrics_collection_errors",
                              "readings the NFVI refused during scrapes", registry=self.registry)
        self.registry.register(self)

    def on_op(self, op: OpOcc) -> None:
        if op.level == "ns" and op.state in (OpState.COMPLETED, OpState.FAILED_TEMP):
            self.durations.labels(op.operation, str(op.state).lower()).observe(
                max(0.0, op.updated - op.started))

    def collect(self):
        yield self._ns_states()
        yield from self._vim()
        yield from self._instances()
        yield from self._graphs()

    def _ns_states(self):
        g = GaugeMetricFamily("nfv_ns_instances", "NS instances by SOL005 state",
                              labels=["state"])
        counts = {"INSTANTIATED": 0, "NOT_INSTANTIATED": 0}
        for r in self.nfvo.store.list_ns_instances():
            counts["INSTANTIATED" if r["state"] == INSTANTIATED else "NOT_INSTANTIATED"] += 1
        for state, n in counts.items():
            g.add_metric([state], n)
        return g

    def _vim(self):
        fams = {k: GaugeMetricFamily(name, f"VIM {k} per compute node (used, free)",
                                     labels=["node", "state"])
                for k, (name, _) in UNITS.items()}
        for node, u in self.nfvo.vim.usage()["nodes"].items():
            for k, (_, scale) in UNITS.items():
                for state in ("used", "free"):
                    fams[k].add_metric([node, state], u[state][k] * scale)
        yield from fams.values()

    def _instances(self):
        labels = ["vnfc", "ns", "vnfd"]
        cpu = CounterMetricFamily("nfv_instance_cpu_seconds", "instance CPU time", labels=labels)
        pkts = CounterMetricFamily("nfv_instance_packets", "packets the VNF program forwarded",
                                   labels=labels)
        byts = CounterMetricFamily("nfv_instance_bytes", "bytes the VNF program forwarded",
                                   labels=labels)
        up = GaugeMetricFamily("nfv_instance_up", "1 while the instance is alive",
                               labels=labels)
        for r in self.nfvo.store.list_vnf_instances(state=INSTANTIATED):
            lb = [r["id"], r["ns_id"] or "", r["vnfd_id"]]
            try:
                m = self.nfvo.driver.instance_metrics(r["id"])
            except MANOError as exc:
                self.errors.inc()
                log.debug("no metrics of %s: %s", r["id"], exc)
                continue
            cpu.add_metric(lb, m.cpu_seconds)
            pkts.add_metric(lb, m.packets)
            byts.add_metric(lb, m.bytes)
            up.add_metric(lb, 1.0 if m.alive else 0.0)
        yield from (cpu, pkts, byts, up)

    def _graphs(self):
        pkts = CounterMetricFamily("nfv_graph_flow_packets", "packet-hops counted by the "
                                   "graph's flow entries on all switches", labels=["graph"])
        byts = CounterMetricFamily("nfv_graph_flow_bytes", "byte-hops counted by the graph's "
                                   "flow entries on all switches", labels=["graph"])
        try:
            names = self.nfvo.driver.list_graphs()
        except MANOError:
            self.errors.inc()
            names = []
        for name in names:
            try:
                flows = self.nfvo.driver.graph_stats(name).get("flows", [])
            except MANOError:
                self.errors.inc()
                continue
            pkts.add_metric([name], sum(f.get("packets", 0) for f in flows))
            byts.add_metric([name], sum(f.get("bytes", 0) for f in flows))
        yield from (pkts, byts)
