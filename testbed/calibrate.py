"""``testbed calibrate``: measure the emulated NFVI and write the simulated NFVI's calibration.

``run_calibration(out)`` brings up the emulated NFVI (``testbed.nfvi.open_nfvi("emulated")``
on ``topologies/fat_tree4.yaml``) with the NFVO on its driver, exactly as a scenario run
does, and repeats short micro-measurements ``reps`` times. Each value written is the median
of its samples; its ``source`` says what was measured and how many samples there were.

Every time is the wall time of the emulated driver's own call, taken around the call the
NFVO makes (``TimedDriver``), or a gap in a real probe stream (``testbed.measures``):

- ``instance_create_s``, ``instance_delete_s``, ``instance_restart_s``, ``graph_program_s``,
  ``graph_delete_s``: the driver's ``create_instance``, ``delete_instance``,
  ``restart_instance``, ``put_graph`` and ``delete_graph`` calls during NS instantiation,
  heal by restart, heal by recreate and termination of ``chain3``; ``instance_create_s``
  and ``graph_program_s`` from the calls in heals, which run with a load and a probe as
  in the shipped scenarios (the emulation host's load slows them; the model has no host
  load, so the times under load are the ones that match a scenario's heals);
- ``instance_delete_dead_s``: ``delete_instance`` of a dead instance (its program crashed,
  or its compute node failed), in heals by recreate under load;
- ``reroute_s``: the largest probe gap (``measures.probe_gaps``, 1,000 packets/s, beside
  a 400 packets/s load) after a switch-to-switch link of the graph's path is cut (several
  links one after another), minus ``port_status_s`` (the model's restoration outage is
  their sum; the split is not observable from outside the controller, so
  ``port_status_s`` is carried over from the base file);
- ``ff_switchover_s``: the same gap with the graph protected (fast-failover groups);
- ``instance_down_detect_s``: from SIGKILL of a VNF program (``crash_instance``) to the
  driver's ``instance_down`` event;
- ``controller_restart_s``: what ``restart_controller`` returns (not with ``--quick``);
- ``program_base_cost_us``: per VNF program, the instance's cgroup CPU seconds over the
  packets its program forwarded (``driver.instance_metrics``) under a constant load,
  less the VNFD's ``cost_us``;
- ``switch_latency_us``, ``vnf_queue_packets``, ``packet_bytes``, ``port_status_s``:
  carried over from the base calibration file (not measured here).

Everything it starts is removed on exit, Ctrl-C and crash (the NFVI's context manager; a
temporary folder for the NFVO's database).
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml

from mano import descriptors as D
from mano.nfvo import NFVO
from testbed import measures
from testbed.errors import TestbedError
from testbed.experiment.scenario import ROOT
from testbed.fidelity import check_emulated_possible, wait_for_emulation_slot
from testbed.nfvi import open_nfvi
from testbed.nfvi.simulated.calibration import (
    FIELDS,
    PROGRAMS,
    load_calibration,
    write_calibration,
)
from testbed.topology import load_topology

TOPOLOGY = ROOT / "topologies" / "fat_tree4.yaml"
VNFDS = ("fw", "fwd", "fwd2", "nat", "lb")
PROBE_PORT, LOAD_PORT = 5001, 6001       # as the engine's
PROBE_RATE = 1000.0
LOAD_RATE = 500.0                        # packets/s offered for the CPU cost measurement
SCENARIO_LOAD = 400.0                    # packets/s beside the probe while links are cut
CUT_S = 0.6                              # seconds a cut link stays down, then to settle
CARRIED = ("port_status_s", "switch_latency_us", "vnf_queue_packets", "packet_bytes")
# a one-VNF NS through the load balancer (no shipped NSD has one); UDP h2 -> h15
LB_NSD = {"nsd": {
    "id": "lb_alone", "name": "Load balancer alone", "version": "1.0",
    "vnfs": [{"vnfd": "lb"}], "virtual_links": [{"id": "data", "connectivity": "ip"}],
    "vnffg": [{"id": "fg1", "classifier": {"ip_proto": 17, "ipv4_src": "10.0.0.2",
                                           "ipv4_dst": "10.0.0.15"},
               "ingress": "h2", "egress": "h15", "path": ["lb"]}]}}
# calls timed apart while a load runs (heals): the scenarios' heals run under load
LOADED = ("create_instance", "put_graph")
TIMED = ("create_instance", "delete_instance", "restart_instance", "put_graph", "delete_graph")


class TimedDriver:
    """A ``mano.nfvi.NfviDriver`` that passes every call to ``driver`` and records the wall
    seconds (``time.monotonic``) of each call named in ``TIMED`` in ``times[name]``."""

    def __init__(self, driver) -> None:
        self._driver = driver
        self.times: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        attr = getattr(self._driver, name)
        if name not in TIMED:
            return attr

        def timed(*args, **kwargs):
            t0 = time.monotonic()
            try:
                return attr(*args, **kwargs)
            finally:
                with self._lock:
                    self.times[name].append(time.monotonic() - t0)
        return timed


def machine_info() -> dict:
    """What the numbers were measured on: OS, kernel, CPUs, Python, Open vSwitch."""
    info = {"system": platform.system(), "kernel": platform.release(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version()}
    try:
        info["os"] = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        info["os"] = ""
    try:
        info["ovs"] = subprocess.run(["ovs-vsctl", "--version"], capture_output=True,
                                     text=True, check=False, timeout=5).stdout.split("\n")[0]
    except (OSError, subprocess.TimeoutExpired):
        info["ovs"] = ""
    return info


def _median(samples: list[float], what: str) -> float:
    if not samples:
        raise TestbedError(f"testbed calibrate: no sample of {what} was measured")
    return statistics.median(samples)


class Calibrator:
    """The micro-measurements on one emulated NFVI (see the module docstring)."""

    def __init__(self, nfvi, workdir: Path, *, progress: Callable[[str], None],
                 cuts: int = 3) -> None:
        self.nfvi = nfvi
        self.cuts = cuts
        self.driver = TimedDriver(nfvi.driver)
        self.nfvo = NFVO(self.driver, workdir / "nfvo.db", clock=nfvi.clock)
        self.progress = progress
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.down_at: dict[str, float] = {}
        self._down = threading.Condition()
        self.driver.subscribe(self._event)
        vnfd = ROOT / "descriptors" / "vnfd"
        for v in VNFDS:
            self.nfvo.onboard_vnfd(vnfd / f"{v}.yaml")
        for nsd in ("chain3", "nat_chain"):
            self.nfvo.onboard_nsd(ROOT / "descriptors" / "nsd" / f"{nsd}.yaml")
        lb_path = workdir / "lb_alone.yaml"
        lb_path.write_text(yaml.safe_dump(LB_NSD))
        self.nfvo.onboard_nsd(lb_path)
        self.programs = {v: D.read_descriptors(vnfd / f"{v}.yaml").vnfds[0].vdu.image
                         for v in VNFDS}

    def _event(self, ev) -> None:
        if ev.kind == "instance_down":
            with self._down:
                self.down_at.setdefault(ev.subject, ev.time)
                self._down.notify_all()

    def _instances(self, ns: str) -> dict[str, str]:
        """VNFD id -> the id of its (first live) instance in NS ``ns``."""
        out = {}
        for r in sorted(self.nfvo.store.list_vnf_instances(ns_id=ns), key=lambda r: r["id"]):
            if r["state"] == "INSTANTIATED":
                out.setdefault(r["vnfd_id"], r["id"])
        return out

    def _graph(self, ns: str, nsd_id: str):
        fg = self.nfvo.nsd(nsd_id).vnffg[0]
        return f"{ns}.{fg.id}", fg.ingress, fg.egress

    def _cut_outages(self, ns: str, nsd_id: str, cuts: int) -> list[float]:
        """Cut, one after another, up to ``cuts`` different switch-to-switch links of the
        graph's current paths (each down ``CUT_S``, then ``CUT_S`` to settle back), with a
        probe at PROBE_RATE and a load at SCENARIO_LOAD packets/s running as in the shipped
        scenarios. Returns, per cut that showed one, the seconds of the largest probe gap
        that began within 0.5 s of the cut (``measures.probe_gaps``). Also records the
        probe's median one-way latency before the first cut (``self.samples``)."""
        graph, src, dst = self._graph(ns, nsd_id)
        done: set[tuple[str, str]] = set()
        times = []
        self.nfvi.start_load("calcut", src, dst, LOAD_PORT, 8)
        self.nfvi.start_probe("cal", src, dst, PROBE_PORT, PROBE_RATE)
        try:
            self.nfvi.command_load("calcut", SCENARIO_LOAD)
            time.sleep(1.0)
            first = self.nfvi.clock()
            for _ in range(cuts):
                links = [tuple(sorted(pair)) for seg in self.nfvi.graph_paths(graph)
                         for pair in itertools.pairwise(seg)]
                todo = [lk for lk in links if lk not in done]
                if not todo:
                    break
                a, b = todo[len(todo) // 2]
                done.add((a, b))
                times.append(self.nfvi.clock())
                undo = self.nfvi.fail_link(a, b, hold="calibrate")
                try:
                    time.sleep(CUT_S)
                finally:
                    undo()
                time.sleep(CUT_S)
        finally:
            rec = self.nfvi.stop_probe("cal")
            self.nfvi.stop_load("calcut")
        recs = measures.read_records(rec.records)
        before = sorted(r - snd for _q, r, snd in recs if snd < first * 1e9)
        if before:
            self.samples["probe_latency_s"].append(before[len(before) // 2] / 1e9)
            self.samples["probe_switches"].append(
                sum(len(seg) for seg in self.nfvi.graph_paths(graph)))
        gaps = measures.probe_gaps(recs, rate=rec.rate, sent=rec.sent, start_ns=rec.start_ns)
        out = []
        for cut in times:
            after = [g.outage_ms for g in gaps
                     if cut * 1e9 - 50e6 <= g.start_ns <= cut * 1e9 + 500e6 and not g.trailing]
            if after:
                out.append(max(after) / 1000.0)
        return out

    def _detect_crash(self, instance: str) -> float:
        """Seconds from SIGKILL of the instance's program to the driver's instance_down."""
        t0 = time.monotonic()
        self.nfvi.crash_instance(instance)
        with self._down:
            if not self._down.wait_for(lambda: instance in self.down_at, timeout=10.0):
                raise TestbedError(f"testbed calibrate: no instance_down event for {instance} "
                                   f"within 10 s of killing its program")
        return self.down_at[instance] - t0

    def _heal_dead(self, ns: str, instance: str) -> None:
        """Heal a dead instance by recreate; its delete_instance call goes to the samples of
        deleting a dead instance, not to the live ones."""
        deletes = self.driver.times["delete_instance"]
        n = len(deletes)
        self.nfvo.heal(ns, instance, mode="recreate")
        self.samples["instance_delete_dead_s"] += deletes[n:]
        del deletes[n:]

    def _wait_down(self, instances: list[str]) -> None:
        with self._down:
            if not self._down.wait_for(lambda: all(i in self.down_at for i in instances),
                                       timeout=10.0):
                raise TestbedError(f"testbed calibrate: no instance_down event for "
                                   f"{', '.join(i for i in instances if i not in self.down_at)} "
                                   f"within 10 s")

    def lifecycle(self, i: int) -> None:
        """Instantiate chain3 and cut links of its path; then, with a load and a probe
        running as in the shipped scenarios, heal by restart and by recreate, crash an
        instance and time its detection, heal it, fail the compute node of another and heal
        its instances; terminate."""
        ns = f"cal{i}"
        self.nfvo.instantiate("chain3", ns)
        self.samples["restoration"] += self._cut_outages(ns, "chain3", self.cuts)
        _graph, src, dst = self._graph(ns, "chain3")
        self.nfvi.start_load("calbg", src, dst, LOAD_PORT, 8)
        self.nfvi.start_probe("calbg", src, dst, PROBE_PORT, PROBE_RATE)
        marks = {k: len(self.driver.times[k]) for k in LOADED}
        try:
            self.nfvi.command_load("calbg", SCENARIO_LOAD)
            time.sleep(0.5)
            inst = self._instances(ns)
            self.nfvo.heal(ns, inst["fw"], mode="restart")
            self.nfvo.heal(ns, inst["fwd"], mode="recreate")
            victim = self._instances(ns)["fwd2"]
            self.samples["instance_down_detect_s"].append(self._detect_crash(victim))
            self._heal_dead(ns, victim)
            rows = {r["id"]: r for r in self.nfvo.store.list_vnf_instances(ns_id=ns)}
            node = rows[self._instances(ns)["fw"]]["compute_node"]
            lost = sorted(iid for iid, r in rows.items()
                          if r["compute_node"] == node and r["state"] == "INSTANTIATED")
            undo = self.nfvi.fail_compute_node(node)
            try:
                self._wait_down(lost)
                for iid in lost:
                    self._heal_dead(ns, iid)
            finally:
                undo()
        finally:
            for k in LOADED:
                self.samples[f"{k}:loaded"] += self.driver.times[k][marks[k]:]
            self.nfvi.stop_probe("calbg")
            self.nfvi.stop_load("calbg")
        self.nfvo.terminate(ns)

    def protected(self, i: int) -> None:
        """Instantiate chain3 with fast-failover protection, cut a link, terminate."""
        ns = f"calff{i}"
        self.nfvo.instantiate("chain3", ns, protection=True)
        self.samples["ff_switchover_s"] += self._cut_outages(ns, "chain3", self.cuts)
        self.nfvo.terminate(ns)

    def cpu_costs(self, i: int, seconds: float) -> None:
        """Per VNF program: CPU seconds per forwarded packet under LOAD_RATE packets/s."""
        for nsd_id in ("chain3", "nat_chain", "lb_alone"):
            ns = f"cpu{i}{nsd_id}"
            self.nfvo.instantiate(nsd_id, ns)
            _graph, src, dst = self._graph(ns, nsd_id)
            self.nfvi.start_load("cal", src, dst, LOAD_PORT, 8)
            try:
                self.nfvi.command_load("cal", LOAD_RATE)
                time.sleep(1.0)
                inst = self._instances(ns)
                m0 = {v: self.driver.instance_metrics(iid) for v, iid in inst.items()}
                time.sleep(seconds)
                m1 = {v: self.driver.instance_metrics(iid) for v, iid in inst.items()}
            finally:
                self.nfvi.stop_load("cal")
            for v in inst:
                pkts = m1[v].packets - m0[v].packets
                if pkts <= 0:
                    continue
                image = self.programs[v]
                us = (m1[v].cpu_seconds - m0[v].cpu_seconds) / pkts * 1e6
                self.samples[f"cost:{image.program}"].append(
                    max(0.0, us - float(image.params.get("cost_us", 0))))
            self.nfvo.terminate(ns)


def run_calibration(out: str | Path, *, quick: bool = False, reps: int | None = None,
                    base: str | Path | None = None, command: str = "testbed calibrate",
                    progress: Callable[[str], None] = print) -> Path:
    """Measure (see the module docstring) and write the calibration file ``out``; values
    not measured come from ``base`` (default: the shipped file). ``reps`` repetitions
    (default 5, ``quick`` 2, which also shortens the CPU window and skips the controller
    restart). Raises ``TestbedError`` when the emulated NFVI cannot run or a
    measurement gave no sample."""
    reps = reps if reps is not None else (2 if quick else 5)
    if reps < 1:
        raise TestbedError(f"--reps {reps}: expected at least 1")
    check_emulated_possible("testbed calibrate measures the emulated NFVI, which")
    base_cal = load_calibration(base)
    base_doc_values = _base_sources(base_cal.source)
    started = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="testbed-calibrate-"))
    try:
        wait_for_emulation_slot(progress)
        with open_nfvi("emulated", load_topology(TOPOLOGY), workdir / "run") as nfvi:
            cal = Calibrator(nfvi, workdir, progress=progress, cuts=2 if quick else 4)
            try:
                for i in range(reps):
                    progress(f"calibrate: repetition {i + 1}/{reps}: lifecycle, link cut, "
                             f"protection, CPU per packet")
                    cal.lifecycle(i)
                    cal.protected(i)
                    cal.cpu_costs(i, 1.5 if quick else 3.0)
                ctl = None
                if not quick:
                    progress("calibrate: controller restart")
                    ctl = nfvi.restart_controller()
            finally:
                cal.nfvo.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _write(out, cal, ctl, base_cal, base_doc_values, reps, started, command)


def _base_sources(path: str) -> dict[str, str]:
    """The ``source`` of each value of the calibration file ``path`` (empty if unreadable)."""
    try:
        return {k: v.get("source", "") for k, v in
                json.loads(Path(path).read_text())["values"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        return {}


def _write(out, cal: Calibrator, ctl: float | None, base, base_sources: dict, reps: int,
           started: dt.datetime, command: str) -> Path:
    t = cal.driver.times
    s = cal.samples
    port = base.port_status_s
    restoration = _median(s["restoration"], "the restoration outage")
    tag = f"testbed calibrate, {started:%Y-%m-%d}"

    def loaded(call: str, what: str):
        xs, every = s.get(f"{call}:loaded", []), t.get(call, [])
        return (round(_median(xs, f"{call} under load"), 4),
                (f"{tag}: median of {len(xs)} emulated driver {call} calls in {what} with a "
                f"load and a probe running, as in the scenarios (median of all "
                f"{len(every)} calls, instantiations without load included: "
                f"{_median(every, call):.4f} s)"))

    def timed(call: str, what: str):
        xs = t.get(call, [])
        return (round(_median(xs, call), 4),
                f"{tag}: median of {len(xs)} emulated driver {call} calls ({what})")

    values = {
        "instance_create_s": loaded("create_instance", "heals by recreate"),
        "graph_program_s": loaded("put_graph", "heals"),
        "instance_delete_s": timed("delete_instance",
                                   "termination and heal by recreate of a live instance"),
        "instance_delete_dead_s": (
            round(_median(s["instance_delete_dead_s"], "deleting a dead instance"), 4),
            (f"{tag}: median of {len(s['instance_delete_dead_s'])} emulated driver "
             f"delete_instance calls on a dead instance (crashed, or its compute node "
             f"failed), in heals by recreate under load")),
        "instance_restart_s": timed("restart_instance",
                                    "heal by restart"),
        "graph_delete_s": timed("delete_graph", "termination"),
        "reroute_s": (round(max(0.0, restoration - port), 4),
                      (f"{tag}: median largest probe gap after a link cut (probe and "
                       f"{SCENARIO_LOAD:.0f} packets/s load), "
                      f"{restoration * 1000:.1f} ms over {len(s['restoration'])} cuts "
                      f"(1,000 packets/s), minus port_status_s {port * 1000:.1f} ms")),
        "ff_switchover_s": (round(_median(s["ff_switchover_s"], "the protected outage"), 4),
                            (f"{tag}: median largest probe gap after a link cut (as above) with "
                            f"fast-failover protection, over {len(s['ff_switchover_s'])} cuts")),
        "instance_down_detect_s": (
            round(_median(s["instance_down_detect_s"], "instance_down detection"), 4),
            (f"{tag}: median, over {len(s['instance_down_detect_s'])} crashes, from SIGKILL "
            f"of a VNF program to the driver's instance_down event")),
        "controller_restart_s": (
            (round(ctl, 3), f"{tag}: restart_controller, 1 sample") if ctl is not None else
            (base.controller_restart_s, (f"carried over (--quick skips it): "
                                        f"{base_sources.get('controller_restart_s', '')}"))),
    }
    for name in CARRIED:
        values[name] = (getattr(base, name), (f"carried over, not measured by testbed "
                                             f"calibrate: {base_sources.get(name, '')}"))
    costs, notes = {}, []
    for prog in PROGRAMS:
        xs = s.get(f"cost:{prog}", [])
        if xs:
            costs[prog] = round(statistics.median(xs), 2)
            notes.append(f"{prog} {len(xs)}")
        else:
            costs[prog] = base.program_base_cost_us[prog]
            notes.append(f"{prog} carried over")
    values["program_base_cost_us"] = (
        costs, (f"{tag}: median cgroup CPU microseconds per forwarded packet under "
               f"{LOAD_RATE:.0f} packets/s, less the VNFD's cost_us (samples: "
               f"{', '.join(notes)})"))
    missing = set(FIELDS) - set(values)
    if missing:   # every field has a value above; a new field must be added there
        raise TestbedError(f"testbed calibrate: no value for {', '.join(sorted(missing))}")
    about = ("Timings and costs of the simulated NFVI, measured on the emulated NFVI by "
             "`testbed calibrate` (testbed/calibrate.py says how each is measured). Units: "
             "seconds, microseconds (us), packets, bytes.")
    write_calibration(out, values, about=about, command=command,
                      date=started.strftime("%Y-%m-%dT%H:%M:%SZ"), machine=machine_info(),
                      repetitions=reps)
    return Path(out)
