"""What an experiment does to an NFVI: the second seam, beside ``mano.nfvi.NfviDriver``.

The MANO stack reaches the infrastructure through the driver (``ExperimentNfvi.driver``);
the experiment engine does everything else through this interface, so that one scenario
file runs on any NFVI (emulated today, simulated next):

- **clock and work**: ``clock()`` is the one clock of the run, in seconds (``time.monotonic``
  on the emulated NFVI). Probe and load records, metrics and events use it. The NFVI also
  makes the SimPy environment (``environment``), runs MANO operations and fault primitives
  without blocking it (``call``) and drives the NFVO's monitor (``start_monitoring``).
- **topology queries**: ``graph_paths`` (the switch paths a forwarding graph uses now),
  ``switch_links`` and ``endpoint_switch`` (to resolve ``auto`` fault targets).
- **faults**: each primitive applies a fault and returns its *undo* (a callable, safe to call
  more than once), or None for a fault that has no undo (a crash, a restart). Faults
  compose: a link is up only when no active fault holds it down (a switch fault holds
  every link of the switch), whatever order faults start and end in.
- **traffic**: a commanded-rate load generator per key (one per NS forwarding graph), whose
  sender and receiver count packets per send-time interval (``LoadCounters``).
- **probes**: a sequence-numbered UDP stream per key; ``stop_probe`` returns the raw
  records (``ProbeRecords``) from which ``testbed.measures`` computes gaps and loss.
- **host health**: per-CPU idle and the busiest processes (``host_health``).

Every method raises ``testbed.errors.TestbedError`` (or a subclass) with a message that
names the element and what was wrong; the engine records it and goes on.
"""
from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import simpy

from mano.nfvi import NfviDriver

Undo = Callable[[], None]


@dataclass(frozen=True)
class LoadCounters:
    """A load generator's counters, per send-time interval index ``floor(send_ns/interval)``.

    ``sent`` and ``received`` count the same packets (by the send time they carry), so
    ``testbed.measures.interval_loss`` gives the network's loss per interval; ``commanded``
    is the rate (packets/s) in force at the end of each interval the sender reported.
    """

    interval_s: float
    complete_until: float = 0.0   # clock seconds: both counts are final for intervals ending before
    sent: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)
    commanded: dict[int, float] = field(default_factory=dict)
    latency_ms: dict[int, float] = field(default_factory=dict)   # mean one-way, by interval


@dataclass(frozen=True)
class ProbeRecords:
    """A finished probe: its raw records file and the sender's schedule.

    ``records`` is the binary file of (seq, recv_ns, send_ns) triples described in
    ``results/README.md`` (read with ``testbed.measures.read_records``); seq ``i`` left at
    ``start_ns + i * 1e9 / rate`` and ``sent`` packets left in all.
    """

    records: Path
    sender_stats: Path
    rate: float
    sent: int
    start_ns: int


@runtime_checkable
class ExperimentNfvi(Protocol):
    """An NFVI an experiment can run on (see the module docstring)."""

    driver: NfviDriver

    def clock(self) -> float:
        """Seconds on the run's one clock (the clock of probe records and metrics)."""
        ...

    # ---- time and MANO work -----------------------------------------------------------------
    def environment(self) -> simpy.Environment:
        """The SimPy environment the engine runs on: a ``RealtimeEnvironment`` where the
        infrastructure is real (its clock is ``clock()``), a plain ``Environment`` where it
        is modelled (its ``now`` is ``clock()``). Made once, before the run's processes."""
        ...

    def call(self, env: simpy.Environment, fn: Callable, *args) -> Generator:
        """Run ``fn(*args)`` (a MANO operation or a fault primitive) without blocking the
        SimPy loop: a SimPy process does ``fut = yield from nfvi.call(env, fn, ...)`` and
        gets a finished ``concurrent.futures.Future`` (its result or exception) once the
        work is done, while every other process goes on. On a real NFVI the work runs on a
        worker thread; on a modelled one it takes modelled time."""
        ...

    def start_monitoring(self, env: simpy.Environment, nfvo, interval: float) -> None:
        """Make the NFVO's monitor (``nfvo.monitor``) poll every ``interval`` seconds of the
        run's clock (a thread on a real NFVI, a SimPy process on a modelled one); it stops
        with ``nfvo.close()``."""
        ...

    # ---- topology -------------------------------------------------------------------------
    def graph_paths(self, graph: str) -> list[list[str]]:
        """The switch paths graph ``graph`` (``<ns>.<vnffg id>``) uses now, one per segment
        between consecutive hops. Raises ``TestbedError`` for an unknown graph."""
        ...

    def switch_links(self) -> list[tuple[str, str]]:
        """Every switch-to-switch link, each once, as sorted name pairs."""
        ...

    def endpoint_switch(self, endpoint: str) -> str:
        """The switch an endpoint (or VNF instance) hangs off."""
        ...

    # ---- faults ----------------------------------------------------------------------------
    def fail_link(self, a: str, b: str, hold: str) -> Undo:
        """Hold link a-b down for fault ``hold`` (an id); the undo releases that hold."""
        ...

    def fail_switch(self, switch: str, hold: str) -> Undo:
        """Hold every link of ``switch`` down (its data plane is cut off)."""
        ...

    def fail_compute_node(self, node: str) -> Undo:
        """A compute node fails: its instances die and it takes no new ones until undone."""
        ...

    def crash_instance(self, instance_id: str) -> None:
        """The VNF program of an instance dies at once (SIGKILL on the emulated NFVI)."""
        ...

    def hang_instance(self, instance_id: str) -> Undo:
        """The instance stops forwarding but stays alive; the undo resumes it (if it still
        exists)."""
        ...

    def restart_controller(self) -> float:
        """Restart the SDN controller; return the seconds until every switch is back."""
        ...

    # ---- traffic ---------------------------------------------------------------------------
    def start_load(self, key: str, src: str, dst: str, port: int, flows: int) -> None:
        """Start a load generator from endpoint ``src`` to ``dst``:``port`` over ``flows``
        UDP flows, at rate 0 until commanded."""
        ...

    def command_load(self, key: str, rate: float) -> None:
        """Command the generator's aggregate rate in packets/s (0 stops sending)."""
        ...

    def load_counters(self, key: str) -> LoadCounters:
        """The generator's counters so far (cheap: called every second)."""
        ...

    def stop_load(self, key: str) -> LoadCounters:
        """Stop the generator; return its final counters."""
        ...

    # ---- probes ----------------------------------------------------------------------------
    def start_probe(self, key: str, src: str, dst: str, port: int, rate: float) -> None:
        """Start a sequence-numbered probe stream at ``rate`` packets/s until stopped."""
        ...

    def stop_probe(self, key: str) -> ProbeRecords:
        """Stop the probe (sender first, then the receiver after the packets in flight)."""
        ...

    # ---- health -----------------------------------------------------------------------------
    def host_health(self) -> dict:
        """``{"idle_pct_per_cpu": [...], "busiest": [{"name", "pid", "cpu_pct"}, ...]}`` of
        the machine the NFVI runs on (a simulated NFVI reports an empty dict)."""
        ...

    def leftovers(self) -> list[str]:
        """What the NFVI left on the machine after ``close`` (bridges, links, cgroups,
        records of dead runs...), one line each; empty after a clean tear-down (always, on
        an NFVI that makes nothing on the machine)."""
        ...

    def close(self) -> None:
        """Stop everything started through this interface and remove what it created."""
        ...
