"""Run a scenario: SimPy is the model of time; the NFVI and the MANO stack do the work.

``run_scenario(path, seed=..., duration=..., overrides=..., nfvi="emulated")``:

1. imports the scenario file and calls its ``build(s)`` (``scenario.py``); the fault and
   load timeline comes from the seed;
2. opens the NFVI (``testbed.nfvi.open_nfvi``: everything the engine does to the
   infrastructure goes through ``testbed.nfvi.api.ExperimentNfvi``), starts the NFVO on
   its driver (its database in the run folder), onboards and instantiates every NS, then
   resolves ``auto`` fault targets from the seed (``targets.py``) and writes
   ``timeline.json`` with concrete targets before the clock starts;
3. starts a load generator and a sequence-numbered probe on every forwarding graph of every
   NS, then runs SimPy processes on a ``RealtimeEnvironment``: load (commands each
   generator's rate from its profile), faults (apply, and undo after their duration),
   policies (every 0.5 s) and metrics (every second). **No process ever blocks on a MANO
   operation or a fault primitive**: those run on worker threads and the process waits for
   their completion by polling every 10 ms, so every timeline event fires on time. Each
   timeline event records its planned and executed time; each tick its drift;
4. after the duration, a settle phase (faults undone, none new, policies on), then the
   probes stop and their raw records are kept in ``probes/``; every gap is an ``outage``
   event (``testbed.measures``); every NS is checked (INSTANTIATED, packets flowing);
   everything is torn down (also on an error or Ctrl-C; a second Ctrl-C during the tear-down
   does not stop it) and ``summary.json``/``summary.md`` and the plots are written.

Results go through one writer (``results.RunWriter``); the files are described in
``results/README.md``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.util
import logging
import os
import platform
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import simpy.rt

from mano.errors import MANOError
from mano.monitoring import labels_of
from mano.nfvo import NFVO
from mano.policies import Action, PolicyContext, make_policy
from mano.policies import notify as notify_policy
from testbed import measures
from testbed.errors import TestbedError
from testbed.experiment import plots, results
from testbed.experiment.load import make_profile
from testbed.experiment.load import timeline as load_timeline
from testbed.experiment.scenario import ROOT, Scenario
from testbed.experiment.targets import ServiceView, resolve, target_rng
from testbed.nfvi import open_nfvi
from testbed.topology import load_topology

log = logging.getLogger(__name__)
PROBE_PORT, LOAD_PORT = 5001, 6001
POLL_S = 0.01                 # how often a queued action looks whether its turn came
INTERRUPT_WAIT_S = 30.0       # an NFVO restart waits this long for interrupted operations
NFVO_START_ATTEMPTS = 3       # reconciliations a restarted NFVO tries before starting without
MONITOR_EVERY_S = 0.5         # the NFVO's monitor polls the instances this often
POLICY_EVERY_S = 0.5
NS_HEAL_EVERY_S = 2.0          # a DEGRADED NS is healed back (heal_ns) at most this often
METRICS_EVERY_S = 1.0
METRICS_PHASE_S = 0.25
LOAD_EVERY_S = 0.5
COPY_LAG_S = 0.2
ENGINE_NICE = -10             # the SimPy loop's thread, on a busy host
COPIED_METRICS = ("cpu_util", "cpu_cores", "packets_rate", "alive")


def load_scenario(path, *, seed: int = 1, duration: float | None = None,
                  overrides: dict | None = None) -> Scenario:
    """Import a scenario file and run its ``build(s)``; raises ``TestbedError`` naming the
    file for a missing file, a missing ``build`` or an unknown ``--set`` parameter."""
    path = Path(path)
    if not path.is_file():
        raise TestbedError(f"no scenario file {path}")
    spec = importlib.util.spec_from_file_location(f"scenario_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "build"):
        raise TestbedError(f"{path}: a scenario defines build(s); this file does not")
    sc = Scenario(path.stem, seed, float(duration or getattr(mod, "DURATION", 60)),
                  dict(overrides or {}))
    try:
        mod.build(sc)
    except (TestbedError, ValueError) as exc:   # a scenario refuses its parameters with
        if not overrides or str(exc).startswith("--set"):   # either; both are the user's
            if isinstance(exc, TestbedError):
                raise
            raise TestbedError(f"{path}: {exc}") from None
        sets = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise TestbedError(f"{path}: {exc} (parameters set: --set {sets})") from None
    unknown = set(sc.params) - sc._used_params
    if unknown:
        raise TestbedError(f"{path}: --set {', '.join(sorted(unknown))}: no such parameter; "
                           f"the scenario has {', '.join(sorted(sc._used_params)) or 'none'}")
    if sc.topology_path is None or not sc.services:
        raise TestbedError(f"{path}: build(s) must call s.topology(...) and s.instantiate(...)")
    known = {ns for _d, ns in sc.services}
    for ld in sc.loads:
        if ld.ns not in known:
            raise TestbedError(f"{path}: s.load({ld.ns!r}, ...): no such NS; the scenario "
                               f"instantiates {', '.join(sorted(known))}")
    return sc


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("nfv-testbed", "os-ken", "simpy", "networkx", "matplotlib", "psutil"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    try:
        out["ovs"] = subprocess.run(["ovs-vsctl", "--version"], capture_output=True,
                                    text=True).stdout.split("\n")[0]
    except OSError:
        pass
    return out


def _git() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except OSError:
        return ""


@contextlib.contextmanager
def _sigint_deferred(on_signal):
    """Within the block, Ctrl-C does not interrupt (the tear-down must finish); it calls
    ``on_signal`` instead. Only the main thread may change signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, lambda *_: on_signal())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _prioritise_this_thread(nice: int = ENGINE_NICE) -> None:
    """Give the thread that runs the SimPy loop (only it: OVS, the VNFs and the traffic
    programs keep their priority) a head start on a busy host, so timeline events fire on
    time. Needs root; elsewhere it stays as it is."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def _fresh_dir(parent: Path, name: str) -> Path:
    """A new, empty run folder ``parent/name`` (``name-2``, ``name-3``... when runs of one
    scenario and seed start within one second, as simulated runs of a sweep do: a reused
    folder would hand the next run the last one's NFVO database)."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = parent / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise TestbedError(f"{parent}: no free run folder named {name}-N")


class ScenarioRun:
    """One run of a scenario on one NFVI (see the module docstring)."""

    def __init__(self, sc: Scenario, results_dir: Path, nfvi: str = "emulated",
                 calibration: str | Path | None = None):
        self.sc = sc
        self.nfvi_kind = nfvi
        if calibration is not None and nfvi != "simulated":
            raise TestbedError(f"--calibration {calibration}: a calibration file is read by "
                               f"the simulated NFVI only (--nfvi simulated), not {nfvi!r}")
        # the simulated NFVI's options: its calibration file (None: the shipped default)
        self.nfvi_options = {} if calibration is None else {"calibration": str(calibration)}
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.dir = _fresh_dir(Path(results_dir) / sc.name, f"{stamp}-s{sc.seed}")
        self.timeline = sc.timeline()
        # profiles are made once, here, so their random draws follow the fault timeline's
        self.profiles = [make_profile(ld.profile, sc.rng, duration=sc.duration)
                         for ld in sc.loads]
        self.writer = results.RunWriter(self.dir)
        self.t0 = 0.0
        self.nfvi = None
        self.nfvo: NFVO | None = None
        self.env = None
        self.start = 0.0
        self.faults: list[dict] = []
        self.graphs: dict[str, list[tuple[str, object]]] = {}   # ns -> [(graph name, fg)]
        self.loads: list[tuple[str, int]] = []                   # (generator key, profile #)
        self.probes: list[str] = []
        self.active_undos: dict[str, object] = {}
        self.busy: set[str] = set()          # NSs with an operation in progress or queued
        self._ns_heal_at: dict[str, float] = {}  # when a DEGRADED NS was last healed back
        self._inflight = 0                   # NFVO operations running on a worker now
        self._settled: dict[tuple, str] = {}  # (operation, instance) -> state when settled
        self._queues: dict[str, list] = {}
        self._healed_at: dict[str, float] = {}
        self.nfvo_down = False
        self._nfvo_lock = threading.RLock()
        self._vnfds: dict[str, object] = {}
        self.interrupted = 0
        self._copied_until = float("-inf")
        self._closed_interval: dict[str, int] = {}
        # set from the NFVI's event thread when an instance or a compute node dies: the
        # policies are evaluated at the next POLL_S step instead of the next POLICY_EVERY_S
        self._policy_due = threading.Event()

    # ---- recording -----------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the run's clock started."""
        return round(self.nfvi.clock() - self.t0, 4) if self.nfvi is not None else 0.0

    def event(self, kind: str, t: float | None = None, **fields) -> None:
        self.writer.event(self.now() if t is None else t, kind, **fields)
        log.info("event %s %s", kind, fields)

    def metric(self, name: str, labels: dict, value: float, t: float | None = None) -> None:
        self.writer.metric(self.now() if t is None else t, name, labels, value)

    def _drift(self, env, proc: str) -> float:
        """Record how late this wake-up is (ms): executed − planned."""
        planned = env.now - self.start
        d = max(0.0, (self.now() - planned) * 1000.0)
        self.metric("engine_drift_ms", {"process": proc}, round(d, 3), t=round(planned, 4))
        return d

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> Path:
        sc = self.sc
        self.writer.config({
            "scenario": sc.name, "seed": sc.seed, "duration": sc.duration,
            "settle_s": sc.settle_s, "nfvi": self.nfvi_kind, "params": sc.params,
            "calibration": self.nfvi_options.get("calibration"),
            "topology": sc.topology_path, "services": sc.services,
            "service_params": sc.service_params, "sla": sc.slas, "checks": sc.checks,
            "probe_rate": sc.probe_rate, "probe_rates": sc.probe_rates,
            "gap_k": measures.DEFAULT_K,
            "versions": _versions(), "git": _git(),
            "started": dt.datetime.now().isoformat(timespec="seconds")})
        healthy, left, error, bug = False, [], None, None
        stack = contextlib.ExitStack()
        try:
            healthy = self._run_inside(stack)
        except KeyboardInterrupt:
            self.interrupted += 1
            error = "interrupted (Ctrl-C)"
        except (TestbedError, MANOError) as exc:
            error = str(exc)
        except Exception as exc:     # a bug: torn down and summarised, then raised
            error, bug = f"{type(exc).__name__}: {exc}", exc
        finally:
            # the tear-down runs to its end: a Ctrl-C now only says so
            with _sigint_deferred(self._on_sigint_in_teardown):
                try:
                    if self.nfvi is not None:
                        self.event("teardown_begin")
                    stack.close()
                    if self.nfvi is not None:
                        left = self.nfvi.leftovers()
                finally:
                    with contextlib.suppress(Exception):
                        self.writer.event(self.now(), "teardown", leftovers=left, error=error)
                    self.writer.close()
        path = self._results(healthy and not left and error is None, left, error)
        if bug is not None:
            raise bug
        if self.interrupted:
            raise KeyboardInterrupt
        if error is not None:
            raise TestbedError(f"{error} (results so far: {path})")
        return path

    def _on_sigint_in_teardown(self) -> None:
        self.interrupted += 1
        print("testbed: tearing down, please wait (Ctrl-C again will not stop it)",
              flush=True)

    def _run_inside(self, stack: contextlib.ExitStack) -> bool:
        sc = self.sc
        topo_path = sc.topology_path if Path(sc.topology_path).is_absolute() \
            else ROOT / sc.topology_path
        topo = load_topology(topo_path)
        self.nfvi = stack.enter_context(open_nfvi(self.nfvi_kind, topo, self.dir / "run",
                                                    **self.nfvi_options))
        self.t0 = self.nfvi.clock()
        env = self.env = self.nfvi.environment()
        self.nfvo = NFVO(self.nfvi.driver, self.dir / "nfvo.db", clock=self.nfvi.clock)
        self.nfvo.vim.subscribe("infra", self._on_infra_event)
        stack.callback(lambda: self.nfvo.close())
        self.nfvi.start_monitoring(env, self.nfvo, MONITOR_EVERY_S)
        for nsd, vnfds, params in sc.onboards:
            self.nfvo.onboard_nsd(ROOT / nsd if not Path(nsd).is_absolute() else nsd, vnfds,
                                  params=params)
        # instantiation is MANO work like any other: on the NFVI's terms (real or modelled)
        env.run(until=env.process(self._instantiate_all(env)))
        self._read_graphs()
        self.faults = resolve(self.timeline, self._service_views(), target_rng(sc.seed))
        self._write_timeline()
        self.policies = [make_policy(p, **params) if isinstance(p, str) else p
                         for p, params in sc.policies]
        self._start_traffic()
        _prioritise_this_thread()
        if isinstance(env, simpy.rt.RealtimeEnvironment):
            # real time restarts here: the set-up's seconds are not the run's (``sync``
            # resets the wall-clock origin only; the simulated origin is ``env_start``)
            env.env_start = env.now
            env.sync()
        self.start = env.now     # the run's processes count from here
        self.t0 = self.nfvi.clock()
        self.event("start", duration=sc.duration, seed=sc.seed)
        for key, i in self.loads:
            env.process(self._load_proc(env, key, i))
        for f in self.faults:
            env.process(self._fault_proc(env, f))
        env.process(self._policy_proc(env))
        env.process(self._metrics_proc(env))
        env.run(until=self.start + sc.duration)
        # settle: faults still active are undone, no new ones come, policies go on
        self.event("settle", seconds=sc.settle_s)
        for fid, undo in list(self.active_undos.items()):
            env.process(self._undo_proc(env, fid, undo))
        env.run(until=self.start + sc.duration + sc.settle_s)
        self._wait_operations(env)
        return self._finish()

    def _instantiate_all(self, env):
        for nsd_id, ns in self.sc.services:
            params = self.sc.service_params.get(ns, {})
            fut = yield from self.nfvi.call(env, lambda n=nsd_id, x=ns, p=params:
                                            self.nfvo.instantiate(n, x, **p))
            fut.result()      # a failed instantiation ends the run (its error says why)
            self.event("ns_instantiated", ns=ns, nsd=nsd_id)

    # ---- set-up helpers ----------------------------------------------------------------------
    def _read_graphs(self) -> None:
        for _nsd, ns in self.sc.services:
            nsd = self.nfvo.nsd(self.nfvo.store.get_ns_instance(ns)["nsd_id"])
            self.graphs[ns] = [(f"{ns}.{fg.id}", fg) for fg in nsd.vnffg]

    def _endpoints(self, ns: str, fg) -> tuple[str, str]:
        """The ingress and egress endpoints of a graph of ``ns`` (as instantiated)."""
        bound = self.nfvo.bound_vnffg(ns, fg)
        return bound.ingress, bound.egress

    def _service_views(self) -> list[ServiceView]:
        out = []
        for _nsd, ns in self.sc.services:
            paths, hops = {}, {}
            for name, fg in self.graphs[ns]:
                paths[name] = self.nfvi.graph_paths(name)
                ing, egr = self._endpoints(ns, fg)
                sw = {self.nfvi.endpoint_switch(ing), self.nfvi.endpoint_switch(egr)}
                for v in fg.path:
                    sw |= {r["switch"] for r in self.nfvo.vnfm.instances(ns, v)}
                hops[name] = sw
            vnfs = list(dict.fromkeys(v for _n, fg in self.graphs[ns] for v in fg.path))
            computes = {v: sorted({r["compute_node"] for r in self.nfvo.vnfm.instances(ns, v)})
                        for v in vnfs}
            out.append(ServiceView(ns, paths, hops, vnfs, computes))
        return out

    def _write_timeline(self) -> None:
        loads = {}
        for i, (ld, p) in enumerate(zip(self.sc.loads, self.profiles)):
            loads[f"{ld.ns}#{i}"] = load_timeline(p, self.sc.duration, step=LOAD_EVERY_S)
        (self.dir / "timeline.json").write_text(results.dumps(
            {"seed": self.sc.seed, "faults": self.faults, "load": loads}))

    def _start_traffic(self) -> None:
        """A load generator per (load, graph) and a probe per graph, each on ports of its own
        unless the graph's classifier fixes the UDP destination port."""
        index = {name: k for k, name in enumerate(n for _d, ns in self.sc.services
                                                   for n, _fg in self.graphs[ns])}
        loaded: set[str] = set()
        for i, ld in enumerate(self.sc.loads):
            chosen = [(n, fg) for n, fg in self.graphs[ld.ns]
                      if ld.graph is None or fg.id == ld.graph]
            if not chosen:
                raise TestbedError(f"s.load({ld.ns!r}, graph={ld.graph!r}): the NS has no such "
                                   f"graph; it has {', '.join(fg.id for _n, fg in self.graphs[ld.ns])}")
            for name, fg in chosen:
                src, dst = self._endpoints(ld.ns, fg)
                port = ld.port or fg.classifier.get("udp_dst") or LOAD_PORT + index[name]
                key = f"{name}#{i}"
                self.nfvi.start_load(key, src, dst, int(port), ld.flows)
                self.loads.append((key, i))
                loaded.add(name)
        for _nsd, ns in self.sc.services:
            for name, fg in self.graphs[ns]:
                fixed = self.nfvo.bound_vnffg(ns, fg).classifier.get("udp_dst")
                if fixed and name in loaded:
                    self.event("note", text=f"no probe on {name}: its classifier admits UDP "
                                            f"port {fixed} only, which its load uses")
                    continue
                src, dst = self._endpoints(ns, fg)
                self.nfvi.start_probe(name, src, dst, int(fixed or PROBE_PORT + index[name]),
                                      self.sc.probe_rates.get(ns, self.sc.probe_rate))
                self.probes.append(name)

    # ---- operations off the SimPy loop ----------------------------------------------------------
    def _wait_operations(self, env) -> None:
        """Let operations still running finish (bounded) before the final check."""
        deadline = env.now + 30
        while self.busy and env.now < deadline:
            env.run(until=env.now + 0.1)

    # ---- processes ---------------------------------------------------------------------------
    def _load_proc(self, env, key: str, i: int):
        prof = self.profiles[i]
        ns = self.sc.loads[i].ns
        last = None
        while True:
            rate = round(prof.rate_at(env.now - self.start), 1)
            if rate != last:
                drift = self._drift(env, "load")
                try:
                    self.nfvi.command_load(key, rate)
                except TestbedError as exc:
                    self.event("note", text=str(exc))
                self.event("load", ns=ns, graph=key.split("#")[0], rate=rate,
                           planned_t=round(env.now - self.start, 4),
                           drift_ms=round(drift, 3))
                last = rate
            else:
                self._drift(env, "load")
            yield env.timeout(LOAD_EVERY_S)

    def _instance_of(self, ns: str, vnf: str) -> str | None:
        rows = self.nfvo.vnfm.instances(ns, vnf)
        return rows[0]["id"] if rows else None

    def _fault_proc(self, env, f: dict):
        yield env.timeout(f["at"])
        drift = self._drift(env, "fault")
        fields = dict(fault=f["kind"], target=f["target"], id=f["id"], ns=f["ns"],
                      duration=f["duration"], planned_t=f["at"], drift_ms=round(drift, 3))
        if f["kind"] in ("vnf_crash", "vnf_hang"):
            ns, _, vnf = f["target"].partition("/")
            iid = None if self.nfvo_down else self._instance_of(ns, vnf)
            if iid is None:
                self.event("note", text=f"fault {f['id']}: {f['target']} has no live instance "
                                        f"now; nothing to break")
                return
            fields["instance"] = iid
        self.event("fault", **fields)
        if f["kind"] == "nfvo_restart":
            self.nfvo_down = True       # set on the loop: no new loop code uses the NFVO now
            yield from self._nfvo_restart_proc(env, f)
            return
        fut = yield from self.nfvi.call(env, self._apply, f, fields.get("instance"))
        try:
            undo = fut.result()
        except Exception as exc:   # the NFVI refused: recorded, the run goes on
            self.event("note", text=f"fault {f['id']} could not be applied: {exc}")
            return
        self.event("fault_applied", id=f["id"])
        if f["duration"] is None or undo is None:
            return
        self.active_undos[f["id"]] = undo
        end = f["at"] + f["duration"]
        if end >= self.sc.duration:
            return          # undone by the settle phase
        # applying may outlast the fault (on the emulated NFVI a fault primitive waits for
        # a restarting controller): then it is undone at once, and its drift says how late
        yield env.timeout(max(0.0, self.start + end - env.now))
        if f["id"] in self.active_undos:
            yield from self._undo_proc(env, f["id"], undo, planned=end)

    def _undo_proc(self, env, fid: str, undo, planned: float | None = None):
        if self.active_undos.pop(fid, None) is None:
            return
        drift = self._drift(env, "fault") if planned is not None else 0.0
        f = next(x for x in self.faults if x["id"] == fid)
        # late_ms: how long after its planned end the fault was undone on the run's clock
        # (> 0 only when applying it outlasted it; drift_ms is the loop's own lateness)
        late = 0.0 if planned is None else max(0.0, env.now - self.start - planned) * 1000
        self.event("fault_end", fault=f["kind"], target=f["target"], id=fid,
                   planned_t=round(env.now - self.start if planned is None else planned, 4),
                   drift_ms=round(drift, 3), late_ms=round(late, 3))
        fut = yield from self.nfvi.call(env, undo)
        try:
            fut.result()
        except Exception as exc:
            self.event("note", text=f"fault {fid} could not be undone: {exc}")

    def _apply(self, f: dict, instance: str | None):
        """Apply one fault (on a worker thread); return its undo or None."""
        kind, target = f["kind"], f["target"]
        nfvi = self.nfvi
        if kind == "link_down":
            a, _, b = target.partition("-")
            return nfvi.fail_link(a, b, hold=f["id"])
        if kind == "switch_down":
            return nfvi.fail_switch(target, hold=f["id"])
        if kind == "compute_down":
            return nfvi.fail_compute_node(target)
        if kind == "vnf_crash":
            nfvi.crash_instance(instance)
            return None
        if kind == "vnf_hang":
            return nfvi.hang_instance(instance)
        if kind == "controller_restart":
            nfvi.restart_controller()
            self.event("recovered", target="controller", report="switches reconnected")
            return None
        raise TestbedError(f"fault kind {kind!r} is not supported")

    def _nfvo_restart_proc(self, env, f: dict):
        """The NFVO dies and a new one starts on the same database.

        Its store closes at once, so operations in flight fail where they stand, as after
        a SIGKILL (their actions end ``action_interrupted``); once none is running (at most
        ``INTERRUPT_WAIT_S``), the new NFVO reconciles and the engine, as the operator,
        settles every NS operation left FAILED_TEMP (``_settle_failed_temp``). The loop set
        ``nfvo_down`` before this runs: policies and queued actions wait until it clears;
        the metrics worker is kept out by ``_nfvo_lock``."""
        try:
            fut = yield from self.nfvi.call(env, self._stop_nfvo)
            fut.result()
            self.event("fault_applied", id=f["id"])
            waited = 0.0
            while self._inflight and waited < INTERRUPT_WAIT_S:
                yield env.timeout(POLL_S)
                waited += POLL_S
            fut = yield from self.nfvi.call(env, self._start_nfvo)
            fut.result()
        except Exception as exc:   # recorded; the run goes on with what the NFVO has
            self.event("note", text=f"fault {f['id']} (NFVO restart) failed: {exc}")
        finally:
            self.nfvo_down = False

    def _stop_nfvo(self) -> None:
        with self._nfvo_lock:
            self._copy_metrics(self.nfvo)
            self.nfvo.close()

    def _start_nfvo(self) -> None:
        """Start the new NFVO (it reconciles). A reconciliation that fails is tried again
        (``NFVO_START_ATTEMPTS``, 1 s apart); if every attempt fails the NFVO starts without
        reconciling, so the run goes on, and a note gives the error (its traceback is in
        the log)."""
        with self._nfvo_lock:
            nfvo, errors = None, []
            for attempt in range(NFVO_START_ATTEMPTS):
                try:
                    nfvo = NFVO(self.nfvi.driver, self.dir / "nfvo.db", clock=self.nfvi.clock)
                    break
                except Exception as exc:
                    log.exception("NFVO restart: reconciliation failed (attempt %d)",
                                  attempt + 1)
                    errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(1.0)
            if nfvo is None:
                nfvo = NFVO(self.nfvi.driver, self.dir / "nfvo.db", clock=self.nfvi.clock,
                            reconcile=False)
            self.nfvo = nfvo
            self.nfvo.vim.subscribe("infra", self._on_infra_event)
            self.nfvi.start_monitoring(self.env, self.nfvo, MONITOR_EVERY_S)
        if errors:
            self.event("note", text=f"NFVO restart: reconciliation failed {len(errors)} "
                                    f"time(s): {'; '.join(errors)}")
        self.event("recovered", target="nfvo",
                   report="reconciled" if len(errors) < NFVO_START_ATTEMPTS else
                   "started without reconciling")
        self._settle_failed_temp()

    def _settle_failed_temp(self, ns: str | None = None) -> None:
        """Settle the NS operations (of ``ns``, or all) left FAILED_TEMP by an NFVO restart
        or a failed action, as an operator would:
        ``retry`` (SOL005: the same occurrence resumes and does what is left); if the retry
        fails, ``rollback``; if that fails too, ``fail`` (the NS then states what it lacks).
        One ``op_settled`` event per operation: its type, NS, what was done and the final
        state. Without this an interrupted operation would hold its NS for good (the
        NFVO runs one operation per NS at a time)."""
        for op in self.nfvo.ops.list(level="ns", subject_id=ns, states=("FAILED_TEMP",)):
            done, state, errors = [], op.state, []
            for task in ("retry", "rollback", "fail"):
                done.append(task)
                try:
                    state = getattr(self.nfvo, task)(op.id)["state"]
                except Exception as exc:    # a driver fault too: the next task may still do
                    errors.append(f"{task}: {exc}")
                    continue
                if str(state) != "FAILED_TEMP":
                    break
            # (no op id: ids are random UUIDs, and one seed gives one events.jsonl; the
            # occurrence is found in nfvo.db by its NS and operation type)
            target = op.params.get("instance")
            self._settled[(op.operation, target)] = str(state)
            self.event("op_settled", operation=op.operation, ns=op.subject_id, target=target,
                       tasks=done, state=str(state), errors=errors)

    def _context(self) -> PolicyContext:
        ns_map, chains, vnfds = {}, {}, {}
        for _nsd, ns in self.sc.services:
            if ns in self.busy or \
                    self.nfvo.store.get_ns_instance(ns)["state"] != "INSTANTIATED":
                continue
            chain = list(dict.fromkeys(v for _n, fg in self.graphs[ns] for v in fg.path))
            chains[ns] = chain
            ns_map[ns] = {v: [r["id"] for r in self.nfvo.vnfm.instances(ns, v)] for v in chain}
            for v in chain:
                if v not in self._vnfds:           # descriptors do not change during a run
                    self._vnfds[v] = self.nfvo.vnfd(v)
                vnfds[v] = self._vnfds[v]
        return PolicyContext(now=self.nfvi.clock(), metrics=self.nfvo.metrics, ns=ns_map,
                             vnfds=vnfds, chains=chains)

    def _policy_proc(self, env):
        # metrics of the first seconds include the VNF programs' start-up: policies wait
        yield env.timeout(min(self.sc.warmup_s, self.sc.duration))
        steps = max(1, round(POLICY_EVERY_S / POLL_S))
        while True:
            # every POLICY_EVERY_S, or at once (within POLL_S) after a pushed death
            for _ in range(steps):
                yield env.timeout(POLL_S)
                if self._policy_due.is_set():
                    break
            self._policy_due.clear()
            self._drift(env, "policy")
            if not self.policies or self.nfvo_down:
                continue
            for _nsd, ns in self.sc.services:
                self._heal_if_degraded(env, ns)
            ctx = self._context()
            for pol in self.policies:
                try:
                    actions = pol.evaluate(ctx)
                except Exception as exc:
                    self.event("note", text=f"policy {getattr(pol, 'name', pol)} failed: {exc}")
                    continue
                for a in actions:
                    env.process(self._act(env, pol, a))

    def _heal_if_degraded(self, env, ns: str) -> None:
        """An NS left DEGRADED (an operation that could be neither retried nor rolled back
        was marked failed) is healed back with ``heal_ns``, as an operator's auto-heal
        would: the instance-level policies see INSTANTIATED NSs only, so without this it
        would stay degraded until the next NFVO restart's reconciliation. At most once
        every ``NS_HEAL_EVERY_S`` per NS, never while an operation on it runs or waits."""
        if ns in self.busy or env.now - self._ns_heal_at.get(ns, -1e9) < NS_HEAL_EVERY_S:
            return
        if self.nfvo.store.get_ns_instance(ns)["state"] != "DEGRADED":
            return
        self._ns_heal_at[ns] = env.now
        env.process(self._heal_ns(env, ns))

    def _heal_ns(self, env, ns: str):
        row = self.nfvo.store.get_ns_instance(ns)
        missing = (row["data"] or {}).get("missing", [])
        base = {"ns": ns, "vnf": None, "by": "engine", "reason": f"NS {ns} is DEGRADED"}
        queue = self._queues.setdefault(ns, [])
        ticket = object()
        queue.append(ticket)
        self.busy.add(ns)
        try:
            while queue[0] is not ticket or self.nfvo_down:
                yield env.timeout(POLL_S)
            if self.nfvo.store.get_ns_instance(ns)["state"] != "DEGRADED":
                return
            start = self.now()
            self.event("ns_heal_start", missing=missing, **base)
            fut = yield from self._operate(env, "heal_ns", ns)
            timing = self._timing(None, start, start)
            if fut is None or fut.exception() is not None:
                yield from self._failed(env, fut, "heal_ns", ns, base, timing)
                return
            self.event("ns_heal_done", state=self.nfvo.store.get_ns_instance(ns)["state"],
                       **base, **timing)
        finally:
            queue.remove(ticket)
            if not queue:
                self.busy.discard(ns)

    def _on_infra_event(self, ev) -> None:
        """The NFVI pushed a death (the NFVO's monitor has recorded it already, being
        subscribed first): evaluate the policies now rather than at the next tick."""
        if ev.kind in ("instance_down", "compute_down"):
            self._policy_due.set()

    def _rel(self, t: float | None) -> float | None:
        return None if t is None else round(t - self.t0, 4)

    def _act(self, env, pol, a: Action):
        """Carry out one action off the loop; record detect/decide/execute times.

        One operation at a time per NS (the NFVO refuses a second): later actions on the NS
        wait their turn in order, and one that has gone stale meanwhile (its instance gone,
        or healed since it was decided) is dropped with an event."""
        name = getattr(pol, "name", type(pol).__name__)
        decided = self.now()
        observed = self._rel(getattr(a, "observed_at", None))
        base = {"ns": a.ns, "vnf": a.vnf, "by": name, "reason": a.reason}
        if a.kind == "give_up":
            self.event("heal_given_up", target=a.instance, **base)
            for p in self.policies:         # every healer stops healing this VNF
                notify_policy(p, a, self.nfvi.clock())
            return
        queue = self._queues.setdefault(a.ns, [])
        ticket = object()
        queue.append(ticket)
        self.busy.add(a.ns)
        try:
            while queue[0] is not ticket or self.nfvo_down:
                yield env.timeout(POLL_S)
            why = self._stale(a, decided)
            if why:
                self.event("action_dropped", action=a.kind, target=a.instance, why=why, **base)
                return
            if a.kind == "heal":
                yield from self._heal(env, a, base, observed, decided)
            else:
                yield from self._scale(env, a, base, observed, decided)
        finally:
            queue.remove(ticket)
            if not queue:
                self.busy.discard(a.ns)

    def _stale(self, a: Action, decided: float) -> str | None:
        if a.instance is None:
            return None
        live = {r["id"] for r in self.nfvo.vnfm.instances(a.ns, a.vnf)}
        if a.instance not in live:
            return f"{a.instance} is no longer an instance of {a.ns}/{a.vnf}"
        if a.kind == "heal" and self._healed_at.get(a.instance, -1.0) > decided:
            return f"{a.instance} was healed after this heal was decided"
        return None

    def _heal(self, env, a: Action, base: dict, observed, decided):
        if observed is not None:
            self.event("detect", t=observed, target=a.instance, **base)
        row = self.nfvo.store.get_vnf_instance(a.instance)
        up = {c.name: c.up for c in self.nfvi.driver.compute_nodes()}
        mode = a.mode if up.get(row["compute_node"], True) else "recreate"
        a = dataclasses.replace(a, mode=mode)     # the counts follow what is done
        start = self.now()
        self.event("heal_start", target=a.instance, mode=mode, **base)
        fut = yield from self._operate(env, "heal", a.ns, a.instance, mode)
        timing = self._timing(observed, decided, start)
        settled = {}
        if fut is None or fut.exception() is not None:
            yield from self._failed(env, fut, "heal", a.instance, base, timing)
            if self._settled.pop(("HEAL", a.instance), None) != "COMPLETED":
                return
            # the operation was settled by a retry that completed it: the heal is done
            timing = self._timing(observed, decided, start)
            settled = {"settled_by": "retry"}
        self._healed_at[a.instance] = self.now()
        new = [r["id"] for r in self.nfvo.vnfm.instances(a.ns, row["vnfd_id"])]
        self.event("heal_done", target=a.instance, instances=new, mode=mode, **base, **timing,
                   **settled)
        for p in self.policies:
            notify_policy(p, a, self.nfvi.clock())

    def _scale(self, env, a: Action, base: dict, observed, decided):
        direction = a.kind.split("_")[1]
        before = {r["id"] for r in self.nfvo.vnfm.instances(a.ns, a.vnf)}
        start = self.now()
        kw = {"instance": a.instance} if direction == "in" and a.instance else {}
        fut = yield from self._operate(env, "scale", a.ns, a.vnf, direction, **kw)
        timing = self._timing(observed, decided, start)
        if fut is None or fut.exception() is not None:
            yield from self._failed(env, fut, a.kind, a.instance, base, timing)
            return
        after = [r["id"] for r in self.nfvo.vnfm.instances(a.ns, a.vnf)]
        self.event(a.kind, instances=len(after), added=sorted(set(after) - before),
                   removed=sorted(before - set(after)), **base, **timing)
        for p in self.policies:
            notify_policy(p, a, self.nfvi.clock())

    def _operate(self, env, operation: str, *args, **kw):
        """Run the NFVO's ``operation`` off the loop; the Future, or None when it failed
        because the NFVO restarted meanwhile (interrupted: its outcome belongs to the new
        NFVO's reconciliation and ``_settle_failed_temp``). One that completed before a
        restart returns once the new NFVO is up, which has it on record."""
        nfvo = self.nfvo
        self._inflight += 1
        try:
            fut = yield from self.nfvi.call(env, lambda: getattr(nfvo, operation)(*args, **kw))
        finally:
            self._inflight -= 1
        restarted = self.nfvo_down or self.nfvo is not nfvo
        while self.nfvo_down:
            yield env.timeout(POLL_S)
        return None if restarted and fut.exception() is not None else fut

    def _failed(self, env, fut, action: str, target, base: dict, timing: dict):
        """Record a failed action; an operation it left FAILED_TEMP is settled at once (an
        interrupted one is settled by the NFVO restart that interrupted it)."""
        if fut is None:
            self.event("action_interrupted", action=action, target=target,
                       why="the NFVO restarted during the operation", **base, **timing)
            return
        self.event("action_failed", action=action, target=target,
                   error=str(fut.exception()), **base, **timing)
        if not self.nfvo_down:
            fut = yield from self.nfvi.call(env, self._settle_failed_temp, base["ns"])
            if fut.exception() is not None:
                self.event("note", text=f"settling {base['ns']}'s operation failed: "
                                        f"{fut.exception()}")

    def _timing(self, observed, decided, start) -> dict:
        done = self.now()
        return {"observed_t": observed, "decided_t": decided, "start_t": start,
                "completed_t": done,
                "decide_s": None if observed is None else round(decided - observed, 4),
                "execute_s": round(done - start, 4)}

    def _metrics_proc(self, env):
        # a quarter of a second out of phase with the load and policy ticks, and its work
        # (reading counters, host health, copying the NFVO's series) done off the loop
        yield env.timeout(METRICS_PHASE_S)
        while True:
            yield env.timeout(METRICS_EVERY_S)
            self._drift(env, "metrics")
            fut = yield from self.nfvi.call(env, self._sample, False)
            if fut.exception() is not None:
                self.event("note", text=f"metrics sample failed: {fut.exception()}")

    def _sample(self, final: bool) -> None:
        health = self.nfvi.host_health()
        for i, idle in enumerate(health.get("idle_pct_per_cpu") or []):
            self.metric("cpu_idle_pct", {"cpu": i}, idle)
        for p in health.get("busiest") or []:
            self.metric("process_cpu_pct", {"process": p["name"]}, p["cpu_pct"])
        for key, _i in self.loads:
            try:
                c = self.nfvi.load_counters(key)
            except TestbedError as exc:
                self.event("note", text=str(exc))
                continue
            self._record_intervals(key, c, final)
        # never wait for an NFVO restart here: on a modelled NFVI its reconciliation may
        # need modelled time, which this worker would be holding up
        if not self._nfvo_lock.acquire(blocking=False):
            return
        try:
            if self.nfvo_down:
                return
            self.metric("active_servers", {}, self.nfvo.vim.active_servers())
            for _nsd, ns in self.sc.services:
                for v in dict.fromkeys(v for _n, fg in self.graphs[ns] for v in fg.path):
                    self.metric("instances", {"ns": ns, "vnf": v},
                                len(self.nfvo.vnfm.instances(ns, v)))
            self._copy_metrics(self.nfvo)
        finally:
            self._nfvo_lock.release()
        self.writer.flush()

    def _record_intervals(self, key: str, c, final: bool) -> None:
        """Per complete send-time interval: sent, received, commanded, loss (see
        ``testbed.measures.interval_loss``); loss also goes to the NFVO's metrics (the
        data-path healer reads it)."""
        graph = key.split("#")[0]
        ns = graph.split(".")[0]
        lb = {"ns": ns, "graph": graph}
        last = self._closed_interval.get(key)
        ready = [i for i in sorted(c.sent) if (last is None or i > last) and
                 (final or (i + 1) * c.interval_s <= c.complete_until)]
        if not ready:
            return
        loss = measures.interval_loss({i: c.sent[i] for i in ready},
                                      {i: c.received.get(i, 0) for i in ready})
        for i in ready:
            t_abs = (i + 1) * c.interval_s
            t = round(t_abs - self.t0, 4)
            # the interval the sender stopped in is partial: its rates would read as a
            # sender behind its command; its loss (same packets on both sides) is sound
            if not (final and i == ready[-1]):
                self.metric("sent_pps", lb, c.sent[i] / c.interval_s, t=t)
                self.metric("received_pps", lb, c.received.get(i, 0) / c.interval_s, t=t)
                if i in c.commanded:
                    self.metric("commanded_pps", lb, c.commanded[i], t=t)
            if i in c.latency_ms:
                self.metric("latency_ms", lb, c.latency_ms[i], t=t)
            if i in loss:
                self.metric("loss_pct", lb, loss[i], t=t)
                if not self.nfvo_down:
                    self.nfvo.metrics.record("loss_pct", labels_of(**lb), t_abs, loss[i])
        self._closed_interval[key] = ready[-1]

    def _copy_metrics(self, nfvo) -> None:
        """Copy the NFVO's per-instance series recorded since the last copy."""
        since = self._copied_until
        # up to a horizon a little in the past: the monitor reads the clock, then records
        # several series; a point must not arrive after its time was copied
        horizon = self.nfvi.clock() - COPY_LAG_S
        for name in COPIED_METRICS:
            for labels, pts in nfvo.metrics.series(name, since=since).items():
                for t, v in pts:
                    if t <= horizon:
                        self.metric(name, dict(labels), v, t=round(t - self.t0, 4))
        self._copied_until = max(since, horizon)

    # ---- the end ---------------------------------------------------------------------------
    def _finish(self) -> bool:
        for key, _i in self.loads:
            with contextlib.suppress(TestbedError):
                self.nfvi.command_load(key, 0)
        # the continuous probes end first: their receivers hold the probe ports
        (self.dir / "probes").mkdir(exist_ok=True)
        for name in self.probes:
            try:
                rec = self.nfvi.stop_probe(name)
            except TestbedError as exc:
                self.event("note", text=f"probe {name}: {exc}")
                continue
            self._outages(name, rec)
        for key, _i in self.loads:
            with contextlib.suppress(TestbedError):
                self._record_intervals(key, self.nfvi.stop_load(key), final=True)
        states, flowing = {}, {}
        for _nsd, ns in self.sc.services:
            states[ns] = self.nfvo.store.get_ns_instance(ns)["state"]
            try:
                m = self.nfvo.measure_ns(ns, duration=0.5, rate=400)
                flowing[ns] = all(r["loss_pct"] < 5 for r in m.values())
            except Exception as exc:
                flowing[ns] = False
                self.event("note", text=f"final probe of {ns} failed: {exc}")
        self._copy_metrics(self.nfvo)
        healthy = all(s == "INSTANTIATED" for s in states.values()) and all(flowing.values())
        self.event("end", ns_states=states, packets_flowing=flowing, healthy=healthy)
        return healthy

    def _outages(self, name: str, rec) -> None:
        """Keep the probe's raw records in ``probes/`` and write every gap as an event."""
        dest = self.dir / "probes"
        records = Path(shutil.copy(rec.records, dest / f"{name}.bin"))
        shutil.copy(rec.sender_stats, dest / f"{name}-send.json")
        recs = measures.read_records(records)
        rep = measures.probe_report(recs, rate=rec.rate, sent=rec.sent, start_ns=rec.start_ns)
        ns = name.split(".")[0]
        self.event("probe", ns=ns, graph=name, rate=rec.rate, sent=rec.sent,
                   received=rep["unique"], lost=rep["lost"], duplicates=rep["duplicates"],
                   reordered=rep["reordered"], records=f"probes/{name}.bin",
                   start_ns=rec.start_ns, k=measures.DEFAULT_K)
        for g in measures.probe_gaps(recs, rate=rec.rate, sent=rec.sent,
                                     start_ns=rec.start_ns):
            self.event("outage", ns=ns, graph=name, outage_ms=round(g.outage_ms, 3),
                       lost=g.lost, start_t=round(g.start_ns / 1e9 - self.t0, 4),
                       end_t=round(g.end_ns / 1e9 - self.t0, 4), leading=g.leading,
                       trailing=g.trailing, recovered=g.recovered)

    def _results(self, ok: bool, left: list[str], error: str | None) -> Path:
        run = results.load_run(self.dir)
        summary = results.summarize(run)
        summary["nfvi"] = self.nfvi_kind
        summary["leftovers"] = left
        summary["error"] = error
        summary["checks"] = results.check(summary, self.sc.checks)
        # a drifted timeline, like an overloaded host, is flagged loudly in the summary
        # (the numbers measured the machine); it does not by itself fail the run
        summary["passed"] = ok and all(c["ok"] for c in summary["checks"])
        results.write_summary(self.dir, summary)
        with contextlib.suppress(Exception):   # plots never hide the numbers
            plots.plot_timeline(run, self.dir / "timeline.png")
            plots.plot_recovery_cdf([run], self.dir / "recovery_cdf.png")
        return self.dir


def run_scenario(path, *, seed: int = 1, duration: float | None = None,
                 overrides: dict | None = None, results_dir: str | Path = "results",
                 nfvi: str = "emulated", calibration: str | Path | None = None) -> Path:
    """Run a scenario file (see the module docstring); return its run folder.
    ``calibration``: a calibration file for the simulated NFVI (None: its default; any
    other NFVI refuses one). Raises ``TestbedError`` (with the run folder) when the run
    could not complete, and ``KeyboardInterrupt`` after a clean tear-down when
    interrupted."""
    sc = load_scenario(path, seed=seed, duration=duration, overrides=overrides)
    return ScenarioRun(sc, Path(results_dir), nfvi, calibration).run()
