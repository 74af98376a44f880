"""``ExperimentNfvi`` on the emulated data center: faults, load, probes and host health.

``EmulatedNfvi(topology, run_dir)`` is a context manager that brings the emulation up
(``testbed.emulator.Emulation``, its files in ``run_dir``), makes the MANO driver
(``.driver``) and removes everything on exit. Load generators and probes are the testbed's
own programs (``testbed.programs.trafgen`` and ``testbed.programs.probe``) started in the
endpoints' namespaces; their files are written in ``run_dir``.

Faults compose by holds (``testbed.nfvi.faults``): a link goes down with the first fault
holding it and up with the last release.
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import simpy.rt

from testbed import cgroups
from testbed.emulator import Emulation, registry
from testbed.emulator.net import tagged_bridges, tagged_links
from testbed.errors import TestbedError
from testbed.hosthealth import HostHealth, ovs_vswitchd_pid
from testbed.nfvi.api import LoadCounters, ProbeRecords
from testbed.nfvi.emulated.driver import EmulatedDriver
from testbed.nfvi.faults import FaultHolds
from testbed.programs import probe as probe_prog
from testbed.programs import trafgen as trafgen_prog

log = logging.getLogger(__name__)
LOAD_INTERVAL_S = 0.5
POLL_S = 0.01              # how often a waiting SimPy process looks at its operation
IN_FLIGHT_S = 0.2          # after a sender stops, the packets still on their way


def open_nfvi(topology, run_dir, **options) -> EmulatedNfvi:
    """The emulated NFVI (see ``testbed.nfvi.open_nfvi``)."""
    return EmulatedNfvi(topology, run_dir, **options)


def _int_keys(d: dict | None) -> dict[int, float]:
    return {int(k): v for k, v in (d or {}).items()}


class EmulatedNfvi(FaultHolds):
    """The emulated data center as an ``ExperimentNfvi`` (see the module docstring)."""

    def __init__(self, topology, run_dir, *, datapath: str = "auto"):
        self.topology = topology
        self.run_dir = Path(run_dir)
        self.emu = Emulation(topology, run_dir=self.run_dir, datapath=datapath)
        self.driver: EmulatedDriver | None = None
        self._lock = threading.RLock()
        self._init_holds()
        self._loads: dict[str, tuple[subprocess.Popen, subprocess.Popen, Path, Path]] = {}
        self._probes: dict[str, tuple[subprocess.Popen, subprocess.Popen, Path, Path,
                                      float]] = {}
        self._health: HostHealth | None = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="nfvi-call")
        self._closed = False

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> EmulatedNfvi:
        self.emu.__enter__()
        try:
            self.driver = EmulatedDriver(self.emu)
            self._health = HostHealth()
            pid = ovs_vswitchd_pid()
            if pid:
                self._health.watch("ovs-vswitchd", pid)
            if self.emu.controller is not None:
                self._health.watch("controller", self.emu.controller.pid)
        except BaseException:
            self.emu.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop load generators, probes and the driver, then tear the emulation down."""
        if self._closed:
            return
        self._closed = True
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
            for key in list(self._loads):
                self._stop_load_procs(key)
            for key in list(self._probes):
                snd, rcv, *_ = self._probes.pop(key)
                self.emu.stop_process(snd)
                self.emu.stop_process(rcv)
            if self.driver is not None:
                self.driver.close()
        finally:
            self.emu.stop()

    def leftovers(self) -> list[str]:
        """What any testbed run left on this machine (bridges, links, cgroups, records of
        dead runs): empty after a clean tear-down."""
        out = [f"bridge {b}" for bs in tagged_bridges().values() for b in bs]
        out += [f"link {i}" for ls in tagged_links().values() for i in ls]
        out += [f"cgroup {b}" for b in cgroups.run_bases()]
        out += [f"record {r.run_id}" for r in registry.all_runs() if not r.owner_alive()]
        return out

    def clock(self) -> float:
        """``time.monotonic()``: the clock of probe records (CLOCK_MONOTONIC, shared by all
        network namespaces) and of the NFVO's metrics."""
        return time.monotonic()

    def environment(self) -> simpy.rt.RealtimeEnvironment:
        """Real time: one simulated second is one second of ``clock()``; a late step is
        not an error (``strict=False``): the engine records every drift instead."""
        return simpy.rt.RealtimeEnvironment(factor=1.0, strict=False)

    def call(self, env, fn, *args):
        """``fn(*args)`` on a worker thread; the process polls every ``POLL_S`` seconds."""
        fut: Future = self._pool.submit(fn, *args)
        while not fut.done():
            yield env.timeout(POLL_S)
        return fut

    def start_monitoring(self, env, nfvo, interval: float) -> None:
        nfvo.start_monitoring(interval=interval)

    # ---- topology ---------------------------------------------------------------------------
    def graph_paths(self, graph: str) -> list[list[str]]:
        return [list(p) for p in self.emu.ctl.graph(graph)["paths"]]

    def switch_links(self) -> list[tuple[str, str]]:
        g = self.topology.switch_graph()
        return sorted(tuple(sorted((a, b))) for a, b in g.edges())

    def endpoint_switch(self, endpoint: str) -> str:
        try:
            return self.emu.attachments[endpoint].switch
        except KeyError:
            raise TestbedError(f"no endpoint or instance {endpoint!r}") from None

    # ---- faults -----------------------------------------------------------------------------
    def _set_link(self, a: str, b: str, up: bool) -> None:
        self.emu.set_link(a, b, up)

    def _switch_peers(self, switch: str) -> list[str]:
        if switch not in self.emu.switches:
            raise TestbedError(f"switch {switch!r}: no such switch")
        return sorted(p.peer for p in self.emu.switches[switch].ports.values()
                      if p.peer in self.emu.switches)

    def restart_controller(self) -> float:
        t = self.emu.restart_controller()
        if self._health is not None:
            self._health.watch("controller", self.emu.controller.pid)
        return t

    # ---- traffic -----------------------------------------------------------------------------
    def _ip(self, name: str) -> str:
        try:
            return self.emu.attachments[name].ip
        except KeyError:
            raise TestbedError(f"no endpoint {name!r}") from None

    def start_load(self, key: str, src: str, dst: str, port: int, flows: int) -> None:
        if key in self._loads:
            raise TestbedError(f"load generator {key!r} runs already")
        py = [sys.executable, "-m", "testbed.programs.trafgen"]
        out = self.run_dir / f"load-{key}-recv.json"
        stats = self.run_dir / f"load-{key}-send.json"
        for p in (out, stats):
            p.unlink(missing_ok=True)
        ip = self._ip(dst)
        rcv = self.emu.popen(dst, py + ["recv", "--port", str(port), "--out", str(out),
                                        "--interval", str(LOAD_INTERVAL_S)],
                             what="trafgen-recv")
        trafgen_prog.wait_ready(str(out), timeout=10)
        snd = self.emu.popen(src, py + ["send", "--dst", ip, "--port", str(port),
                                        "--flows", str(flows), "--stats", str(stats),
                                        "--interval", str(LOAD_INTERVAL_S)],
                             what="trafgen-send", stdin=subprocess.PIPE)
        self._loads[key] = (snd, rcv, out, stats)
        if self._health is not None:
            self._health.watch(f"load {key}", snd.pid)

    def command_load(self, key: str, rate: float) -> None:
        snd = self._load(key)[0]
        try:
            snd.stdin.write(f"rate {float(rate):.1f}\n".encode())
            snd.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise TestbedError(f"load generator {key!r} is gone ({exc})") from None

    def _load(self, key: str):
        try:
            return self._loads[key]
        except KeyError:
            raise TestbedError(f"no load generator {key!r}") from None

    def load_counters(self, key: str) -> LoadCounters:
        _snd, _rcv, out, stats = self._load(key)
        return self._counters(out, stats)

    @staticmethod
    def _counters(out: Path, stats: Path) -> LoadCounters:
        try:
            r = json.loads(out.read_text())
        except (OSError, ValueError):
            r = {}
        try:
            s = json.loads(stats.read_text())
        except (OSError, ValueError):
            s = {}
        interval = float(s.get("interval") or r.get("interval") or LOAD_INTERVAL_S)
        lat = {}
        samples = r.get("samples") or []
        for sample in samples:
            if len(sample) > 3 and sample[3] is not None:
                lat[round(sample[0] / interval) - 1] = float(sample[3])
        # the sender's counts are final before its unfinished interval; the receiver's up to
        # its last write, less the packets that may still have been on their way
        partial = s.get("partial_index")
        sender_until = partial * interval if partial is not None else float("inf")
        recv_until = float(samples[-1][0]) - IN_FLIGHT_S if samples else 0.0
        return LoadCounters(interval, min(sender_until, recv_until),
                            {k: int(v) for k, v in
                                       _int_keys(s.get("sent_by_interval")).items()},
                            {k: int(v) for k, v in
                             _int_keys(r.get("received_by_interval")).items()},
                            _int_keys(s.get("commanded_by_interval")), lat)

    def _stop_load_procs(self, key: str) -> None:
        snd, rcv, _out, _stats = self._loads.pop(key)
        try:
            snd.stdin.write(b"stop\n")
            snd.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            snd.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.emu.stop_process(snd)
        time.sleep(IN_FLIGHT_S)
        self.emu.stop_process(rcv)

    def stop_load(self, key: str) -> LoadCounters:
        _snd, _rcv, out, stats = self._load(key)
        self._stop_load_procs(key)
        return self._counters(out, stats)

    # ---- probes ------------------------------------------------------------------------------
    def start_probe(self, key: str, src: str, dst: str, port: int, rate: float) -> None:
        if key in self._probes:
            raise TestbedError(f"probe {key!r} runs already")
        py = [sys.executable, "-m", "testbed.programs.probe"]
        out = self.run_dir / f"probe-{key}-recv.json"
        records = self.run_dir / f"probe-{key}-records.bin"
        stats = self.run_dir / f"probe-{key}-send.json"
        for p in (out, records, stats):
            p.unlink(missing_ok=True)
        ip = self._ip(dst)
        rcv = self.emu.popen(dst, py + ["recv", "--port", str(port), "--out", str(out),
                                        "--records", str(records)], what="probe-recv")
        probe_prog.wait_ready(str(out), timeout=10)
        snd = self.emu.popen(src, py + ["send", "--dst", ip, "--port", str(port), "--rate",
                                        str(rate), "--src-port", str(port), "--stats",
                                        str(stats)], what="probe-send")
        self._probes[key] = (snd, rcv, records, stats, float(rate))

    def stop_probe(self, key: str) -> ProbeRecords:
        try:
            snd, rcv, records, stats, rate = self._probes.pop(key)
        except KeyError:
            raise TestbedError(f"no probe {key!r}") from None
        self.emu.stop_process(snd)
        time.sleep(IN_FLIGHT_S)
        self.emu.stop_process(rcv)
        try:
            st = json.loads(stats.read_text())
        except (OSError, ValueError) as exc:
            raise TestbedError(f"probe {key!r}: the sender wrote no statistics ({exc}); "
                               f"its packets cannot be counted") from None
        if not records.exists():
            raise TestbedError(f"probe {key!r}: the receiver wrote no records ({records})")
        return ProbeRecords(records, stats, rate, int(st["sent"]), int(st["start_ns"]))

    # ---- health ------------------------------------------------------------------------------
    def host_health(self) -> dict:
        return self._health.sample() if self._health is not None else {}
