"""Run a scenario: a SimPy ``RealtimeEnvironment`` drives the emulated data center.

``run_scenario(path, seed=..., duration=..., overrides=...)``:

1. imports the scenario file and calls its ``build(s)`` (see ``scenario.py``); computes the
   fault timeline from the seed and writes it (``timeline.json``) before anything runs;
2. brings up the emulation, the NFVI driver and the NFVO (its database in the run folder),
   onboards and instantiates the network services;
3. starts per NS a commanded-rate traffic generator (``trafgen``) and a continuous
   sequence-numbered probe, then runs SimPy processes in real time: load (commands the
   rate from the profile), faults (apply, and undo after their duration), policies
   (evaluated every 0.5 s; actions go to the NFVO) and metrics (every second: achieved and
   commanded rate, loss, instance counts, active servers, host CPU idle);
4. at the end checks every NS (INSTANTIATED, packets flowing), tears everything down,
   checks nothing is left, and writes ``results/<scenario>/<run-id>/``: config.json,
   timeline.json, events.jsonl, metrics.csv, summary.json, summary.md and plots.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import simpy
import simpy.rt

from testbed.errors import TestbedError
from testbed.experiment.scenario import ROOT, FaultSpec, Scenario

log = logging.getLogger(__name__)
PROBE_PORT, LOAD_PORT = 5001, 6001


def load_scenario(path, *, seed: int = 1, duration: float | None = None,
                  overrides: dict | None = None) -> Scenario:
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
    mod.build(sc)
    unknown = set(sc.params) - sc._used_params
    if unknown:
        raise TestbedError(f"{path}: --set {', '.join(sorted(unknown))}: no such parameter; "
                           f"the scenario has {', '.join(sorted(sc._used_params)) or 'none'}")
    if sc.topology_path is None or not sc.services:
        raise TestbedError(f"{path}: build(s) must call s.topology(...) and s.instantiate(...)")
    return sc


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("nfv-testbed", "os-ken", "simpy", "networkx", "matplotlib"):
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


class HostCpu:
    """Idle share of the machine's CPU between calls (from /proc/stat)."""

    def __init__(self):
        self.last = self._read()

    @staticmethod
    def _read():
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4]

    def idle_pct(self) -> float:
        cur = self._read()
        total, idle = cur[0] - self.last[0], cur[1] - self.last[1]
        self.last = cur
        return 100.0 * idle / total if total else 100.0


class ScenarioRun:
    def __init__(self, sc: Scenario, results: Path):
        self.sc = sc
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.dir = Path(results) / sc.name / f"{stamp}-s{sc.seed}"
        self.dir.mkdir(parents=True, exist_ok=True)
        from testbed.experiment.load import make_profile
        self.timeline = sc.timeline()
        # profiles are made once, here, so their random draws follow the fault timeline's
        self.profiles = [make_profile(ld.profile, sc.rng, duration=sc.duration)
                         for ld in sc.loads]
        self.events_f = open(self.dir / "events.jsonl", "w")
        self.metric_rows: list[tuple[float, str, str, float]] = []
        self.t0 = time.monotonic()
        self.procs: dict = {}
        self.active_undos: dict = {}
        self.pending_heals: dict[str, float] = {}

    # ---- recording ---------------------------------------------------------------------------
    def now(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    def event(self, kind: str, **fields) -> None:
        rec = {"t": self.now(), "kind": kind, **fields}
        self.events_f.write(json.dumps(rec, default=str) + "\n")
        self.events_f.flush()
        log.info("event %s", rec)

    def metric(self, name: str, labels: dict, value: float) -> None:
        lab = ";".join(f"{k}={v}" for k, v in sorted(labels.items()))
        self.metric_rows.append((self.now(), name, lab, float(value)))

    # ---- set-up ------------------------------------------------------------------------------
    def write_config(self) -> None:
        sc = self.sc
        (self.dir / "config.json").write_text(json.dumps({
            "scenario": sc.name, "seed": sc.seed, "duration": sc.duration,
            "params": sc.params, "topology": sc.topology_path, "services": sc.services,
            "sla": sc.slas, "checks": sc.checks, "versions": _versions(), "git": _git(),
            "started": dt.datetime.now().isoformat(timespec="seconds")}, indent=1))
        from testbed.experiment.load import timeline
        (self.dir / "timeline.json").write_text(json.dumps(
            {"faults": [vars(f) for f in self.timeline],
             "load": {f"{ld.ns}#{i}": timeline(p, self.sc.duration, step=0.5)
                      for i, (ld, p) in enumerate(zip(self.sc.loads, self.profiles))}},
            indent=1))

    def run(self) -> Path:
        from mano.nfvo import NFVO
        from testbed.emulator import Emulation
        from testbed.nfvi import EmulatedDriver
        from testbed.topology import load_topology

        self.write_config()
        topo = load_topology(ROOT / self.sc.topology_path
                             if not Path(self.sc.topology_path).is_absolute()
                             else self.sc.topology_path)
        healthy = False
        try:
            with Emulation(topo, run_dir=self.dir / "run") as emu:
                self.emu = emu
                self.driver = EmulatedDriver(emu)
                self.nfvo = NFVO(self.driver, self.dir / "nfvo.db")
                self.nfvo.start_monitoring(interval=0.5)
                for nsd, vnfds in self.sc.onboards:
                    self.nfvo.onboard_nsd(ROOT / nsd if not Path(nsd).is_absolute() else nsd,
                                          vnfds)
                for nsd_id, ns in self.sc.services:
                    self.nfvo.instantiate(nsd_id, ns)
                    self.event("ns_instantiated", ns=ns, nsd=nsd_id)
                self.policies = self._make_policies()
                self._start_traffic()
                self.t0 = time.monotonic()
                self.event("start", duration=self.sc.duration, seed=self.sc.seed)
                env = simpy.rt.RealtimeEnvironment(factor=1.0, strict=False)
                for load in self.sc.loads:
                    env.process(self._load_proc(env, load))
                for f in self.timeline:
                    env.process(self._fault_proc(env, f))
                env.process(self._policy_proc(env))
                env.process(self._metrics_proc(env))
                env.run(until=self.sc.duration)
                # settle: faults still active are undone, no new ones come, policies go on
                for undo in list(self.active_undos.values()):
                    undo()
                self.event("settle", seconds=self.sc.settle_s)
                env.run(until=self.sc.duration + self.sc.settle_s)
                healthy = self._finish()
                self.nfvo.close()
                self.driver.close()
        finally:
            self.events_f.flush()
        left = _leftovers()
        self.event("teardown", leftovers=left)
        self.events_f.close()
        self._write_metrics()
        return self._results(healthy and not left, left)

    def _make_policies(self):
        from mano.policies import make_policy
        out = []
        for p, params in self.sc.policies:
            out.append(make_policy(p, **params) if isinstance(p, str) else p)
        return out

    def _graph(self, ns: str) -> tuple[str, str, dict]:
        ns_row = self.nfvo.store.get_ns_instance(ns)
        nsd = self.nfvo.nsd(ns_row["nsd_id"])
        fg = nsd.vnffg[0]
        return fg.ingress, fg.egress, dict(fg.classifier)

    def _start_traffic(self) -> None:
        py = [sys.executable, "-m"]
        for i, load in enumerate(self.sc.loads):
            src, dst, cl = self._graph(load.ns)
            port = load.port or cl.get("udp_dst") or LOAD_PORT + i
            out = self.emu.run_dir / f"load-{load.ns}-{i}.json"
            out.unlink(missing_ok=True)
            rp = self.emu.popen(dst, py + ["testbed.programs.trafgen", "recv", "--port",
                                           str(port), "--out", str(out)], what="trafgen-recv")
            _wait_json(out)
            sp = self.emu.popen(src, py + ["testbed.programs.trafgen", "send", "--dst",
                                           self.emu.attachments[dst].ip, "--port", str(port),
                                           "--flows", str(load.flows)],
                                what="trafgen-send", stdin=subprocess.PIPE)
            self.procs[("load", i)] = (sp, rp, out)
        from testbed.chain import Probe
        for nsd_id, ns in self.sc.services:
            src, dst, cl = self._graph(ns)
            port = cl.get("udp_dst") or PROBE_PORT
            if any((ld.port or cl.get("udp_dst")) == port for ld in self.sc.loads
                   if ld.ns == ns) and cl.get("udp_dst"):
                continue  # the classifier admits one port only: the load is the probe
            p = Probe(self.emu, src, dst, port=port, rate=self.sc.probe_rate,
                      duration=self.sc.duration + self.sc.settle_s + 1, tag=f"probe-{ns}").start()
            self.procs[("probe", ns)] = p

    # ---- processes -----------------------------------------------------------------------------
    def _command(self, i: int, rate: float) -> None:
        sp = self.procs[("load", i)][0]
        try:
            sp.stdin.write(f"rate {rate:.1f}\n".encode())
            sp.stdin.flush()
        except (BrokenPipeError, OSError):
            self.event("note", text=f"traffic generator {i} is gone")
        self.commanded[i] = rate

    def _load_proc(self, env, load):
        i = self.sc.loads.index(load)
        prof = self.profiles[i]
        self.commanded = getattr(self, "commanded", {})
        last = None
        while True:
            rate = round(prof.rate_at(env.now), 1)
            if rate != last:
                self._command(i, rate)
                self.event("load", ns=load.ns, rate=rate)
                last = rate
            yield env.timeout(0.5)

    def _resolve(self, f: FaultSpec) -> str:
        ns = self.sc.services[0][1]
        chain = self._chain(ns)
        if f.kind in ("link_down",) and f.target == "auto":
            from testbed.chain import active_link
            name = f"{ns}.{self.nfvo.nsd(self.nfvo.store.get_ns_instance(ns)['nsd_id']).vnffg[0].id}"
            a, b = active_link(self.emu.ctl.graph(name)["paths"])
            return f"{a}-{b}"
        if f.kind in ("vnf_crash", "vnf_hang"):
            vnf = f.target if f.target != "auto" else chain[len(chain) // 2]
            ids = self.nfvo.vnfm.instances(ns, vnf) if vnf in chain else []
            if not ids and vnf in {r["id"] for r in self.nfvo.list_vnfs()}:
                return vnf
            if not ids:
                raise TestbedError(f"fault {f.kind}: no live instance of {vnf!r}")
            return ids[0]["id"]
        if f.kind == "compute_down" and f.target == "auto":
            return self.nfvo.vnfm.instances(ns, chain[0])[0]["compute_node"]
        return f.target

    def _chain(self, ns: str) -> list[str]:
        nsd = self.nfvo.nsd(self.nfvo.store.get_ns_instance(ns)["nsd_id"])
        return list(nsd.vnffg[0].path)

    def _fault_proc(self, env, f: FaultSpec):
        yield env.timeout(f.at)
        try:
            target = self._resolve(f)
        except Exception as exc:
            self.event("note", text=f"fault {f.kind} at {f.at}: {exc}")
            return
        fid = f"{f.kind}@{f.at}"
        self.event("fault", fault=f.kind, target=target, id=fid, duration=f.duration)
        undo = self._apply(f.kind, target)
        if f.duration is not None and undo is not None:
            done = []

            def end(undo=undo, fid=fid, target=target):
                if not done:   # once: at its time, or at the end of the run
                    done.append(True)
                    self.active_undos.pop(fid, None)
                    undo()
                    self.event("fault_end", fault=f.kind, target=target, id=fid)
            self.active_undos[fid] = end
            yield env.timeout(f.duration)
            end()

    def _apply(self, kind: str, target: str):
        emu, drv = self.emu, self.driver
        if kind == "link_down":
            a, b = target.split("-", 1)
            emu.set_link(a, b, False)
            return lambda: emu.set_link(a, b, True)
        if kind == "switch_down":
            peers = [p.peer for p in emu.switches[target].ports.values() if p.peer in emu.switches]
            for p in peers:
                emu.set_link(target, p, False)
            return lambda: [emu.set_link(target, p, True) for p in peers]
        if kind == "vnf_crash":
            drv.kill_instance(target)
            return None
        if kind == "vnf_hang":
            drv.hang_instance(target, True)
            return lambda: _ignore(lambda: drv.hang_instance(target, False))
        if kind == "compute_down":
            drv.fail_compute_node(target)
            return lambda: drv.recover_compute_node(target)
        if kind == "nfvo_restart":
            from mano.nfvo import NFVO
            self.nfvo.close()
            self.nfvo = NFVO(self.driver, self.dir / "nfvo.db")
            self.nfvo.start_monitoring(interval=0.5)
            self.event("recovered", target="nfvo", report="reconciled")
            return None
        if kind == "controller_restart":
            emu.restart_controller()
            return None
        raise TestbedError(f"fault {kind} is not supported")

    def _context(self):
        from mano.policies import PolicyContext
        ns_map, chains, vnfds = {}, {}, {}
        for _nsd, ns in self.sc.services:
            if self.nfvo.store.get_ns_instance(ns)["state"] != "INSTANTIATED":
                continue
            chain = self._chain(ns)
            chains[ns] = chain
            ns_map[ns] = {v: [r["id"] for r in self.nfvo.vnfm.instances(ns, v)] for v in chain}
            for v in chain:
                vnfds[v] = self.nfvo.vnfd(v)
        return PolicyContext(now=time.monotonic(), metrics=self.nfvo.metrics, ns=ns_map,
                             vnfds=vnfds, chains=chains)

    def _policy_proc(self, env):
        # metrics of the first seconds include the VNF programs' start-up: policies wait
        yield env.timeout(min(self.sc.warmup_s, self.sc.duration))
        while True:
            yield env.timeout(0.5)
            if not self.policies:
                continue
            ctx = self._context()
            for pol in self.policies:
                try:
                    actions = pol.evaluate(ctx)
                except Exception as exc:
                    self.event("note", text=f"policy {getattr(pol, 'name', pol)} failed: {exc}")
                    continue
                for a in actions:
                    self._act(pol, a)

    def _act(self, pol, a) -> None:
        name = getattr(pol, "name", type(pol).__name__)
        try:
            if a.kind in ("scale_out", "scale_in"):
                self.nfvo.scale(a.ns, a.vnf, a.kind.split("_")[1])
                n = len(self.nfvo.vnfm.instances(a.ns, a.vnf))
                self.event(a.kind, ns=a.ns, vnf=a.vnf, instances=n, reason=a.reason, by=name)
            elif a.kind == "heal":
                self.event("detect", target=a.instance, by=name, reason=a.reason)
                row = self.nfvo.store.get_vnf_instance(a.instance)
                node_up = row["compute_node"] not in self.driver._down_nodes
                mode = a.mode if node_up else "recreate"
                self.event("heal_start", target=a.instance, mode=mode)
                self.nfvo.heal(a.ns, a.instance, mode)
                new = [r["id"] for r in self.nfvo.vnfm.instances(a.ns, row["vnfd_id"])]
                self.event("heal_done", target=a.instance, instances=new, mode=mode)
            if hasattr(pol, "notify"):
                pol.notify(a, time.monotonic())
        except Exception as exc:
            self.event("note", text=f"{name}: {a.kind} {a.ns}/{a.vnf or a.instance} failed: "
                                    f"{exc}")

    def _metrics_proc(self, env):
        cpu = HostCpu()
        while True:
            yield env.timeout(1.0)
            self.metric("host_cpu_idle_pct", {"host": "machine"}, cpu.idle_pct())
            self.metric("active_servers", {}, self.nfvo.vim.active_servers())
            for i, load in enumerate(self.sc.loads):
                out = self.procs[("load", i)][2]
                try:
                    samples = json.loads(out.read_text()).get("samples") or []
                except (OSError, ValueError):
                    samples = []
                achieved = samples[-1][1] if samples else 0.0
                if samples and len(samples[-1]) > 3 and samples[-1][3] is not None:
                    self.metric("latency_ms", {"ns": load.ns}, samples[-1][3])
                commanded = getattr(self, "commanded", {}).get(i, 0.0)
                self.metric("achieved_pps", {"ns": load.ns}, achieved)
                self.metric("commanded_pps", {"ns": load.ns}, commanded)
                if commanded > 0:
                    loss = max(0.0, 100.0 * (1 - achieved / commanded))
                    self.metric("loss_pct", {"ns": load.ns}, loss)
                    from mano.monitoring import labels_of
                    self.nfvo.metrics.record("loss_pct", labels_of(ns=load.ns, graph="load"),
                                             time.monotonic(), loss)
            for _nsd, ns in self.sc.services:
                for v in self._chain(ns):
                    self.metric("instances", {"ns": ns, "vnf": v},
                                len(self.nfvo.vnfm.instances(ns, v)))
            for lb, pts in self.nfvo.metrics.series("cpu_util").items():
                if pts and time.monotonic() - pts[-1][0] < 2:
                    self.metric("cpu_util", dict(lb), pts[-1][1])

    # ---- the end ---------------------------------------------------------------------------------
    def _finish(self) -> bool:
        for i in range(len(self.sc.loads)):
            self._command(i, 0)
        # the continuous probes end first: their receivers hold the probe ports
        outages = self._outages()
        for o in outages:
            self.event("outage", **o)
        states, flowing = {}, {}
        for _nsd, ns in self.sc.services:
            states[ns] = self.nfvo.store.get_ns_instance(ns)["state"]
            try:
                m = self.nfvo.measure_ns(ns, duration=0.5, rate=400)
                flowing[ns] = all(r["loss_pct"] < 5 for r in m.values())
            except Exception as exc:
                flowing[ns] = False
                self.event("note", text=f"final probe of {ns} failed: {exc}")
        for key, val in list(self.procs.items()):
            if key[0] == "load":
                sp, rp, _out = val
                _ignore(lambda: sp.stdin.write(b"stop\n"))
                _ignore(lambda: sp.stdin.flush())
                self.emu.stop_process(sp)
                self.emu.stop_process(rp)
        healthy = all(s == "INSTANTIATED" for s in states.values()) and all(flowing.values())
        self.event("end", ns_states=states, packets_flowing=flowing, healthy=healthy)
        return healthy

    def _outages(self) -> list[dict]:
        out = []
        faults = [json.loads(line) for line in open(self.dir / "events.jsonl")
                  if '"kind": "fault"' in line]
        for key, p in self.procs.items():
            if key[0] != "probe":
                continue
            res = p.wait()
            for g in res.get("gaps", []):
                start = g["start_ns"] / 1e9 - self.t0
                if g["gap_ms"] < 20:
                    continue
                near = [f for f in faults if f["t"] - 0.05 <= start + g["gap_ms"] / 1000
                        and start <= f["t"] + 30]
                fid = min(near, key=lambda f: abs(f["t"] - start))["id"] if near else None
                out.append({"ns": key[1], "fault_id": fid, "outage_ms": g["gap_ms"],
                            "lost": g["lost"], "start_t": round(start, 3),
                            "end_t": round(start + g["gap_ms"] / 1000, 3)})
        return out

    def _write_metrics(self) -> None:
        import csv
        with open(self.dir / "metrics.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "metric", "labels", "value"])
            for row in self.metric_rows:
                w.writerow([f"{row[0]:.3f}", row[1], row[2], row[3]])

    def _results(self, ok: bool, left: list[str]) -> Path:
        from testbed.experiment import plots, results
        run = results.load_run(self.dir)
        summary = results.summarize(run)
        summary["leftovers"] = left
        summary["checks"] = check(summary, self.sc.checks)
        summary["passed"] = ok and all(c["ok"] for c in summary["checks"])
        results.write_summary(self.dir, summary)
        plots.plot_timeline(run, self.dir / "timeline.png")
        plots.plot_recovery_cdf([run], self.dir / "recovery_cdf.png")
        return self.dir


def check(summary: dict, checks: dict) -> list[dict]:
    """Plausibility checks a scenario declared with ``s.expect(...)``."""
    out = []
    for name, want in checks.items():
        if name == "max_outage_ms":
            vals = [f.get("outage_ms") for f in summary.get("faults", [])
                    if f.get("outage_ms") is not None]
            ok = bool(vals) and all(0 < v < want for v in vals)
            out.append({"check": name, "ok": ok, "detail": f"outages {vals} ms, bound {want}"})
        elif name == "scale_out":
            n = summary.get("scaling", {}).get("scale_outs", 0)
            out.append({"check": name, "ok": (n > 0) == bool(want), "detail": f"{n} scale-outs"})
        elif name == "healthy_at_end":
            h = summary.get("healthy_at_end")
            out.append({"check": name, "ok": h == want, "detail": f"healthy_at_end={h}"})
        elif name == "min_heals":
            n = len([f for f in summary.get("faults", []) if f.get("heal_s") is not None])
            out.append({"check": name, "ok": n >= want, "detail": f"{n} healed faults"})
        else:
            out.append({"check": name, "ok": False, "detail": "unknown check"})
    return out


def _leftovers() -> list[str]:
    from testbed import cgroups
    from testbed.emulator import registry
    from testbed.emulator.net import tagged_bridges, tagged_links
    out = [f"bridge {b}" for bs in tagged_bridges().values() for b in bs]
    out += [f"link {i}" for ls in tagged_links().values() for i in ls]
    out += [f"cgroup {b}" for b in cgroups.run_bases()]
    out += [f"record {r.run_id}" for r in registry.all_runs() if not r.owner_alive()]
    return out


def _wait_json(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TestbedError(f"{path.name} did not appear within {timeout:.0f} s")
        time.sleep(0.02)


def _ignore(fn) -> None:
    try:
        fn()
    except Exception:
        pass


def run_scenario(path, *, seed: int = 1, duration: float | None = None,
                 overrides: dict | None = None, results: str | os.PathLike = "results") -> Path:
    sc = load_scenario(path, seed=seed, duration=duration, overrides=overrides)
    return ScenarioRun(sc, Path(results)).run()
