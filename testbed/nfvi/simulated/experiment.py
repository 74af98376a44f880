"""``ExperimentNfvi`` on the simulated data center: modelled time, faults, load, probes.

``SimulatedNfvi(topology, run_dir, calibration=None)`` makes a plain ``simpy.Environment``
(its ``now`` is the run's one clock, starting at 0), the flow-level model
(``model.FlowModel``) and the MANO driver (``driver.SimulatedDriver``, as ``.driver``).
Nothing is started on the machine: closing it only ends the workers of operations still
waiting for modelled time (``baton.Baton``) and leaves the files it wrote in ``run_dir``.

Faults have the emulated NFVI's semantics, holds included: a link is down while any fault
holds it (a switch fault holds every link of the switch). When a link goes down the data
plane drops what crosses it at once; protected graphs' fast-failover groups move onto a
detour ``ff_switchover_s`` later; the controller gets the port status and its new paths
are in the switches ``port_status_s + reroute_s`` later (deferred while it restarts). A
link coming back carries traffic again at once and the controller moves graphs back to
their shortest paths after the same delay.

Load generators and probes produce the real programs' records: per send-time interval
counts (``LoadCounters``), and a probe records file of (seq, recv_ns, send_ns) triples
synthesised when the probe stops from the delivered fraction and latency of its stream
over time (``probe_records``).
"""
from __future__ import annotations

import json
import math
import sqlite3
from array import array
from pathlib import Path
from typing import Self

import simpy

from testbed import measures
from testbed.errors import TestbedError
from testbed.nfvi.api import LoadCounters, ProbeRecords
from testbed.nfvi.faults import FaultHolds
from testbed.nfvi.simulated.baton import Baton
from testbed.nfvi.simulated.calibration import load_calibration
from testbed.nfvi.simulated.driver import SimulatedDriver
from testbed.nfvi.simulated.model import FlowModel, LoadAccount, Stream

LOAD_INTERVAL_S = 0.5        # as the emulated NFVI's load generators
LOAD_SRC_PORT_BASE = 20000   # trafgen's default first source port


def open_nfvi(topology, run_dir, **options) -> SimulatedNfvi:
    """The simulated NFVI (see ``testbed.nfvi.open_nfvi``); ``calibration``: a file path."""
    return SimulatedNfvi(topology, run_dir, **options)


def probe_records(history: list[tuple[float, float, float]], start_ns: int, rate: float,
                  sent: int) -> tuple[array, array, array]:
    """The (seq, recv_ns, send_ns) records of a probe stream, in arrival order.

    ``history``: (from time s, delivered fraction, one-way latency s) in time order, each in
    force until the next. Seq i leaves at ``start_ns + int(i * 1e9 / rate)``; of the packets
    sent while a fraction f is delivered, seq i arrives iff ``floor((i+1) f) > floor(i f)``
    (losses spread evenly, deterministic), at its send time plus the latency then, but never
    before the packet received before it (the path is FIFO: when a queue drains, its backlog
    arrives first)."""
    T = 1e9 / rate
    seqs, recvs, sends = array("Q"), array("Q"), array("Q")
    last = 0
    for k, (t, frac, lat) in enumerate(history):
        t_end = history[k + 1][0] if k + 1 < len(history) else math.inf
        lo = max(0, math.ceil((t * 1e9 - start_ns) / T - 1e-9))
        hi = sent if t_end == math.inf else min(sent, math.ceil((t_end * 1e9 - start_ns) / T
                                                               - 1e-9))
        if hi <= lo or frac <= 0:
            continue
        lat_ns = round(lat * 1e9)
        keep = range(lo, hi) if frac >= 1.0 else \
            (i for i in range(lo, hi) if math.floor((i + 1) * frac) > math.floor(i * frac))
        for i in keep:
            s = start_ns + int(i * T)
            last = max(last, s + lat_ns)
            seqs.append(i)
            sends.append(s)
            recvs.append(last)
    return seqs, recvs, sends


class SimulatedNfvi(FaultHolds):
    """The simulated data center as an ``ExperimentNfvi`` (see the module docstring)."""

    def __init__(self, topology, run_dir, *, calibration=None):
        self.topology = topology
        self.run_dir = Path(run_dir)
        self.cal = load_calibration(calibration)
        self.env = simpy.Environment()
        self.baton = Baton()
        self.model = FlowModel(topology, self.cal)
        self.driver = SimulatedDriver(self.model, self.cal, self.env, self.baton)
        self._init_holds()
        self._loads: dict[str, Stream] = {}
        self._probes: dict[str, tuple[Stream, int, float]] = {}
        self._monitor_gen = 0
        self._closed = False
        self._switch_links: list[tuple[str, str]] | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End operations still waiting for modelled time; stop monitoring."""
        if self._closed:
            return
        self._closed = True
        self._monitor_gen += 1
        self.baton.close()
        self.driver.close()

    def leftovers(self) -> list[str]:
        """Nothing is made on the machine: always empty."""
        return []

    def clock(self) -> float:
        """The SimPy environment's ``now`` (modelled seconds from 0)."""
        return float(self.env.now)

    def environment(self) -> simpy.Environment:
        return self.env

    def call(self, env, fn, *args):
        """``fn(*args)`` on a worker holding the baton: it takes modelled time."""
        return (yield from self.baton.call(env, fn, *args))

    def start_monitoring(self, env, nfvo, interval: float) -> None:
        """The NFVO monitor's ``poll_once`` as a SimPy process every ``interval`` s; a later
        call (a restarted NFVO) replaces it; it ends when the NFVO's store is closed."""
        self._monitor_gen += 1
        env.process(self._monitor(env, nfvo, interval, self._monitor_gen))

    def _monitor(self, env, nfvo, interval: float, gen: int):
        while True:
            yield env.timeout(interval)
            if gen != self._monitor_gen:
                return
            try:
                nfvo.monitor.poll_once()
            except sqlite3.ProgrammingError:
                return         # the NFVO was closed (its store is)

    # ---- topology -----------------------------------------------------------------------------
    def graph_paths(self, graph: str) -> list[list[str]]:
        return [list(p) for p in self.model.fabric.graph_paths(graph)]

    def switch_links(self) -> list[tuple[str, str]]:
        # the wiring never changes: sorted once (a fault checks its link against it)
        if self._switch_links is None:
            self._switch_links = sorted(tuple(sorted(k)) for k in self.model.link_ports)
        return list(self._switch_links)

    def endpoint_switch(self, endpoint: str) -> str:
        try:
            return self.model.attach_switch[endpoint]
        except KeyError:
            raise TestbedError(f"no endpoint or instance {endpoint!r}") from None

    # ---- faults -------------------------------------------------------------------------------
    def _set_link(self, a: str, b: str, up: bool) -> None:
        self._link_changed(a, b, up)

    def _switch_peers(self, switch: str) -> list[str]:
        if switch not in self.model.switches:
            raise TestbedError(f"switch {switch!r}: no such switch")
        return sorted(next(iter(k - {switch})) for k in self.model.link_ports if switch in k)

    def _link_changed(self, a: str, b: str, up: bool) -> None:
        """The data plane changes now; fast failover and the controller react later."""
        m, d = self.model, self.driver
        m.advance(self.clock())
        m.set_link(a, b, up)
        m.recompute()
        if not up:
            d.later(self.cal.ff_switchover_s, self._switch_over)
        react = self.cal.port_status_s + self.cal.reroute_s
        back = max(0.0, d.controller_back_at - self.clock())
        d.later(max(react, back + self.cal.reroute_s), lambda: self._restore(a, b, up))

    def _switch_over(self) -> None:
        self.model.advance(self.clock())
        self.model.switch_over()
        self.model.recompute()

    def _restore(self, a: str, b: str, up: bool) -> None:
        m = self.model
        m.advance(self.clock())
        changed = m.controller_sees(a, b, up)
        # a graph the port status left alone holds what is installed, unless a fast-failover
        # detour was taken since its install (the restoration replaces that)
        changed |= {name for name, _pk in m.detours}
        for name in sorted(changed):
            if name in m.installed and m.fabric.has_graph(name):
                m.install(name, m.fabric.graph_spec(name))
        m.switch_over()
        m.recompute()

    def restart_controller(self) -> float:
        """The controller is away ``controller_restart_s``: port events and graph changes
        wait for it; the data plane keeps forwarding."""
        secs = self.cal.controller_restart_s
        self.driver.controller_back_at = self.clock() + secs
        self.driver.wait(secs)
        return secs

    # ---- traffic ------------------------------------------------------------------------------
    def start_load(self, key: str, src: str, dst: str, port: int, flows: int) -> None:
        if key in self._loads:
            raise TestbedError(f"load generator {key!r} runs already")
        if flows < 1:
            raise TestbedError(f"load generator {key!r}: flows must be >= 1, not {flows}")
        first = math.floor(self.clock() / LOAD_INTERVAL_S + 1e-9)
        st = Stream(key, src, dst, tuple(LOAD_SRC_PORT_BASE + k for k in range(flows)),
                    int(port), account=LoadAccount(LOAD_INTERVAL_S, first))
        self.model.advance(self.clock())
        self.model.add_stream(st)
        self.model.recompute()
        self._loads[key] = st

    def _load(self, key: str) -> Stream:
        try:
            return self._loads[key]
        except KeyError:
            raise TestbedError(f"no load generator {key!r}") from None

    def command_load(self, key: str, rate: float) -> None:
        st = self._load(key)
        if rate < 0:
            raise TestbedError(f"load generator {key!r}: rate must be >= 0, not {rate}")
        self.model.set_rate(st.key, rate, self.clock())

    def load_counters(self, key: str) -> LoadCounters:
        st = self._load(key)
        self.model.advance(self.clock())
        st.settle(self.clock())
        return self._counters(st)

    def _counters(self, st: Stream) -> LoadCounters:
        acc = st.account
        now = self.clock()
        last = math.floor(now / acc.interval_s + 1e-9)
        sent, recv, cmd, lat = {}, {}, {}, {}
        for i in range(acc.first, last + 1):
            s = round(acc.sent.get(i, 0.0))
            sent[i] = s
            recv[i] = min(s, round(acc.received.get(i, 0.0)))
            if acc.elapsed.get(i):
                cmd[i] = acc.rate_dt[i] / acc.elapsed[i]
            got = acc.received.get(i, 0.0)
            if got > 0:
                lat[i] = acc.latency_w[i] / got * 1000.0
        return LoadCounters(acc.interval_s, now, sent, recv, cmd, lat)

    def stop_load(self, key: str) -> LoadCounters:
        st = self._load(key)
        self.model.advance(self.clock())
        st.settle(self.clock())
        out = self._counters(st)
        del self._loads[key]
        self.model.remove_stream(key)
        self.model.recompute()
        return out

    # ---- probes ------------------------------------------------------------------------------
    def start_probe(self, key: str, src: str, dst: str, port: int, rate: float) -> None:
        if key in self._probes:
            raise TestbedError(f"probe {key!r} runs already")
        if rate <= 0:
            raise TestbedError(f"probe {key!r}: rate must be > 0 packets/s, not {rate}")
        st = Stream(f"probe:{key}", src, dst, (int(port),), int(port), rate=float(rate),
                    history=[])
        self.model.advance(self.clock())
        self.model.add_stream(st)
        self.model.recompute()
        self._probes[key] = (st, round(self.clock() * 1e9), float(rate))

    def stop_probe(self, key: str) -> ProbeRecords:
        try:
            st, start_ns, rate = self._probes.pop(key)
        except KeyError:
            raise TestbedError(f"no probe {key!r}") from None
        self.model.update(self.clock())
        now_ns = round(self.clock() * 1e9)
        sent = max(0, math.ceil((now_ns - start_ns) * rate / 1e9 - 1e-9))
        seqs, recvs, sends = probe_records(st.history, start_ns, rate, sent)
        self.model.remove_stream(st.key)
        self.model.recompute()
        records = self.run_dir / f"probe-{key}-records.bin"
        stats = self.run_dir / f"probe-{key}-send.json"
        measures.write_records(str(records), seqs, recvs, sends)
        stats.write_text(json.dumps({"sent": sent, "rate": rate, "start_ns": start_ns,
                                     "errors": 0, "errors_by_errno": {},
                                     "delivered_to_kernel": sent, "max_late_ms": 0.0,
                                     "achieved_rate": rate,
                                     "elapsed_s": (now_ns - start_ns) / 1e9,
                                     "simulated": True}))
        return ProbeRecords(records, stats, rate, sent, start_ns)

    # ---- health --------------------------------------------------------------------------------
    def host_health(self) -> dict:
        """A simulated NFVI has no emulation host to watch: empty."""
        return {}
