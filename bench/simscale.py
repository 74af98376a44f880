"""How far the simulated NFVI scales: data centers of hundreds of servers, days of time.

    .venv/bin/python bench/simscale.py [--seed N] [--only k8|k16|wan]

Runs the real NFVO, VNFM and VIM on the simulated NFVI (``testbed.nfvi.simulated``) with,
for every configuration, N network services (the ``chain3`` NSD: firewall, forwarder,
forwarder; each NS bound to its own pair of servers' endpoints):

- stochastic faults drawn from the seed, exponential times to failure and repair per
  component (``MTBF``): VNF program crashes per instance, compute-node failures per node
  (its instances die; the node comes back after its repair time, empty), switch-link cuts
  per link;
- diurnal load: each NS's rate follows ``mean * (1 + 0.5 sin(2 pi t / 24 h + phase))``
  (mean and phase drawn per NS), commanded every ``LOAD_STEP_S`` (piecewise constant);
- a healing policy: an ``instance_down`` from the NFVI starts a heal of that instance
  through the NFVO (restart; recreate when its node is down), one operation at a time per
  NS, in order;
- a scaling policy: after each load change of an NS, a VNF whose busiest instance uses more
  than ``SCALE_OUT_UTIL`` of its vCPU quota is scaled out, one under ``SCALE_IN_UTIL`` on
  every instance is scaled in (within the VNFD's scaling aspect).

Both policies react to events (an infrastructure event, a load change): nothing polls the
instances. The flow model updates only what an event touches (see
``docs/simulated-nfvi.md``).

Configurations: fat-tree k=8 with 100 NSs for 1 simulated hour; fat-tree k=16 with 1,024
servers (k/2 compute nodes on each edge switch) and 1,000 NSs for 24 simulated hours; a WAN
on the largest Topology Zoo file in ``topologies/zoo`` (a compute node and an endpoint at
every PoP) with 100 NSs for 6 simulated hours. Each prints events (SimPy events processed)
per wall second, simulated seconds per wall second and the peak RSS of the process so far;
the last line is ``simscale k=16 1000 NS 24 h: wall W s, events/s E, peak RSS M MB``.
Targets on the 2-core machine: W <= 60 s, M <= 2,000 MB.
"""
from __future__ import annotations

import argparse
import math
import random
import resource
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from mano.errors import MANOError
from mano.nfvo import NFVO
from testbed.nfvi.simulated.experiment import SimulatedNfvi
from testbed.nfvi.simulated.model import Stream
from testbed.topology import load_topology
from testbed.topology.builders import DC_COMPUTE, fat_tree

ROOT = Path(__file__).resolve().parents[1]

NSD = ROOT / "descriptors/nsd/chain3.yaml"
VNFDS = [str(ROOT / "descriptors/vnfd" / f"{v}.yaml") for v in ("fw", "fwd", "fwd2")]
LOAD_PORT = 6001
LOAD_FLOWS = 8                 # UDP source ports per NS: balanced splits up to 8 instances
LOAD_STEP_S = 900.0            # the diurnal profile is commanded every 15 minutes
DAY_S = 86400.0
SCALE_OUT_UTIL, SCALE_IN_UTIL = 0.8, 0.3


@dataclass
class Config:
    """One benchmark configuration: topology, NSs, simulated time and fault rates."""

    name: str
    topology: object
    services: int
    hours: float
    mtbf_instance_s: float = 2 * DAY_S       # a VNF program crashes every 2 days
    mtbf_node_s: float = 10 * DAY_S          # a server fails every 10 days ...
    mttr_node_s: float = 1800.0              # ... for half an hour
    mtbf_link_s: float = 10 * DAY_S          # a switch link is cut every 10 days ...
    mttr_link_s: float = 300.0               # ... for five minutes
    mean_pps: tuple[float, float] = (2000.0, 12000.0)


def fat_tree_servers(k: int) -> object:
    """A k-ary fat-tree with k/2 compute nodes (servers) and k/2 endpoints on each edge
    switch: k^3/4 of each (1,024 for k = 16)."""
    topo = fat_tree(k, name=f"fat-tree-{k}-servers")
    for e in sorted((s.name for s in topo.switches() if s.role == "edge"),
                    key=lambda n: int(n[1:])):
        for j in range(1, k // 2):
            topo.add_compute(f"n{e[1:]}_{j}", e, **DC_COMPUTE)
    topo.validate()
    return topo


def largest_zoo() -> Path:
    """The Topology Zoo file with the most nodes in ``topologies/zoo``."""
    files = sorted((ROOT / "topologies/zoo").glob("*.graphml"))
    return max(files, key=lambda p: (p.read_text().count("<node "), p.name))


@dataclass
class Counts:
    faults: int = 0
    repairs: int = 0
    load_changes: int = 0
    heals: int = 0
    scale_outs: int = 0
    scale_ins: int = 0
    failed_ops: int = 0
    dropped: int = 0
    errors: dict = field(default_factory=dict)


class ScaleRun:
    """One configuration on one simulated NFVI (see the module docstring)."""

    def __init__(self, cfg: Config, seed: int, workdir: Path):
        self.cfg, self.seed = cfg, seed
        self.rng = random.Random(seed)
        self.nfvi = SimulatedNfvi(cfg.topology, workdir / "run")
        self.env = self.nfvi.env
        self.model = self.nfvi.model
        self.driver = self.nfvi.driver
        self.nfvo = NFVO(self.driver, workdir / "nfvo.db", clock=self.nfvi.clock)
        self.counts = Counts()
        self.queues: dict[str, deque] = {}
        self.busy: set[str] = set()
        self.ns_of: dict[str, str] = {}          # instance -> NS
        # per NS, its INSTANTIATED VNF instance records as of its last operation (only the
        # operations this bench starts change them): the scaling check reads these, not the
        # database
        self.rows: dict[str, list[dict]] = {}
        self.services: list[str] = []
        self.watched: set[str] = set()           # instances with a crash process
        self.end = 0.0
        self.events = 0
        self.t_start = time.perf_counter()
        step = self.env.step

        def counted_step():
            self.events += 1
            step()
        self.env.step = counted_step

    # ---- set-up --------------------------------------------------------------------------
    def setup(self) -> None:
        self.nfvo.onboard_nsd(NSD, VNFDS)
        hosts = sorted(self.model.endpoints, key=lambda h: int(h[1:]))
        n = self.cfg.services
        env = self.env
        env.run(until=env.process(self._instantiate_all(hosts, n)))
        self.driver.subscribe(self._on_infra_event)

    def _instantiate_all(self, hosts: list[str], n: int):
        p = len(hosts)
        if n > p * (p - 1):
            raise SystemExit(f"{self.cfg.name}: {n} NSs need {n} pairs of endpoints; the "
                             f"topology has {p} endpoints ({p * (p - 1)} pairs)")
        # n distinct ordered (ingress, egress) pairs, drawn from the seed: two NSs with one
        # pair would have the same classifier, which the controller refuses
        for i, idx in enumerate(sorted(self.rng.sample(range(p * (p - 1)), n))):
            a, b = divmod(idx, p - 1)
            src, dst = hosts[a], hosts[b if b < a else b + 1]
            ns = f"ns{i:04d}"
            fut = yield from self.nfvi.call(self.env, lambda ns=ns, a=src, b=dst:
                                            self.nfvo.instantiate("chain3", ns,
                                                                  sap={"h1": a, "h16": b}))
            fut.result()
            self.services.append(ns)
            if (i + 1) % 100 == 0:
                print(f"  {self.cfg.name}: {i + 1} NS instantiated, "
                      f"{time.perf_counter() - self.t_start:.1f} s", file=sys.stderr, flush=True)
            sports = tuple(20000 + k for k in range(LOAD_FLOWS))
            self.model.advance(self.env.now)
            self.model.add_stream(Stream(ns, src, dst, sports, LOAD_PORT))
            self.rows[ns] = self.nfvo.store.list_vnf_instances(ns_id=ns)
            for r in self.rows[ns]:
                self.ns_of[r["id"]] = ns

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> None:
        cfg, env = self.cfg, self.env
        end = self.end = env.now + cfg.hours * 3600.0
        for ns in self.services:
            env.process(self._load(ns, self.rng.uniform(*cfg.mean_pps),
                                   self.rng.uniform(0, 2 * math.pi), end))
        for iid in sorted(self.ns_of):
            self.watched.add(iid)
            env.process(self._crashes(iid, end))
        for node in sorted(self.cfg.topology.computes):
            env.process(self._node_faults(node, end))
        for key in sorted(tuple(sorted(k)) for k in self.model.link_ports):
            env.process(self._link_faults(key, end))
        env.run(until=end)

    def _load(self, ns: str, mean: float, phase: float, end: float):
        t0 = self.env.now
        while self.env.now < end:
            t = self.env.now - t0
            rate = mean * (1 + 0.5 * math.sin(2 * math.pi * t / DAY_S + phase))
            if ns in self.model.streams:
                self.model.set_rate(ns, rate, self.env.now)
                self.counts.load_changes += 1
                self._scale_check(ns)
            yield self.env.timeout(LOAD_STEP_S)

    def _crashes(self, iid: str, end: float):
        rng = random.Random(f"{self.seed}/crash/{iid}")
        while True:
            yield self.env.timeout(rng.expovariate(1.0 / self.cfg.mtbf_instance_s))
            if self.env.now >= end or iid not in self.model.instances:
                return           # the instance was replaced: its successor is not watched
            if self.model.instances[iid].alive:
                self.nfvi.crash_instance(iid)
                self.counts.faults += 1

    def _node_faults(self, node: str, end: float):
        rng = random.Random(f"{self.seed}/node/{node}")
        while True:
            yield self.env.timeout(rng.expovariate(1.0 / self.cfg.mtbf_node_s))
            if self.env.now >= end:
                return
            undo = self.nfvi.fail_compute_node(node)
            self.counts.faults += 1
            yield self.env.timeout(max(1.0, rng.expovariate(1.0 / self.cfg.mttr_node_s)))
            undo()
            self.counts.repairs += 1

    def _link_faults(self, key: tuple[str, str], end: float):
        rng = random.Random(f"{self.seed}/link/{key[0]}-{key[1]}")
        while True:
            yield self.env.timeout(rng.expovariate(1.0 / self.cfg.mtbf_link_s))
            if self.env.now >= end:
                return
            undo = self.nfvi.fail_link(*key, hold=f"link-{self.counts.faults}")
            self.counts.faults += 1
            yield self.env.timeout(max(1.0, rng.expovariate(1.0 / self.cfg.mttr_link_s)))
            undo()
            self.counts.repairs += 1

    # ---- policies ------------------------------------------------------------------------------
    def _on_infra_event(self, ev) -> None:
        if ev.kind == "instance_down" and ev.subject in self.ns_of:
            self._request(self.ns_of[ev.subject], "heal", ev.subject)

    def _scale_check(self, ns: str) -> None:
        if ns in self.busy:
            return
        by_vnf: dict[str, list] = {}
        for r in self.rows[ns]:
            if r["state"] != "INSTANTIATED":
                continue
            inst = self.model.instances.get(r["id"])
            if inst is not None and inst.serving():
                by_vnf.setdefault(r["vnfd_id"], []).append(inst.cpu_cores / inst.vcpu)
        for vnf, utils in sorted(by_vnf.items()):
            sc = self.nfvo.vnfd(vnf).scaling
            if max(utils) > SCALE_OUT_UTIL and len(utils) < sc.max:
                self._request(ns, "out", vnf)
            elif max(utils) < SCALE_IN_UTIL and len(utils) > sc.min:
                self._request(ns, "in", vnf)

    def _request(self, ns: str, kind: str, subject: str) -> None:
        self.queues.setdefault(ns, deque()).append((kind, subject))
        if ns not in self.busy:
            self.busy.add(ns)
            self.env.process(self._drain(ns))

    def _drain(self, ns: str):
        q = self.queues[ns]
        while q:
            kind, subject = q.popleft()
            if kind == "heal":
                row = self.nfvo.store.get_vnf_instance(subject)
                if row["state"] not in ("INSTANTIATED", "LOST") or \
                        (subject in self.model.instances and
                         self.model.instances[subject].alive):
                    self.counts.dropped += 1
                    continue
                node_up = row["compute_node"] not in self.driver._down_nodes
                mode = "restart" if node_up and subject in self.model.instances else "recreate"
                fut = yield from self.nfvi.call(self.env, self.nfvo.heal, ns, subject, mode)
                self.counts.heals += fut.exception() is None
            else:
                fut = yield from self.nfvi.call(self.env, self.nfvo.scale, ns, subject, kind)
                if fut.exception() is None:
                    if kind == "out":
                        self.counts.scale_outs += 1
                    else:
                        self.counts.scale_ins += 1
            exc = fut.exception()
            if exc is not None:
                self.counts.failed_ops += 1
                key = type(exc).__name__
                self.counts.errors[key] = self.counts.errors.get(key, 0) + 1
                if not isinstance(exc, MANOError):
                    raise exc
            self.rows[ns] = self.nfvo.store.list_vnf_instances(ns_id=ns, state="INSTANTIATED")
            for r in self.rows[ns]:
                self.ns_of.setdefault(r["id"], ns)
                if r["id"] in self.model.instances and r["id"] not in self.watched:
                    self.watched.add(r["id"])       # a new instance fails like the others
                    self.env.process(self._crashes(r["id"], self.end))
        self.busy.discard(ns)

    def close(self) -> None:
        self.nfvo.close()
        self.nfvi.close()


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (MB; ``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_config(cfg: Config, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="simscale-") as tmp:
        t0, cpu0 = time.perf_counter(), time.process_time()
        r = ScaleRun(cfg, seed, Path(tmp))
        try:
            r.setup()
            t_setup = time.perf_counter() - t0
            ev0, sim0 = r.events, r.env.now
            t1 = time.perf_counter()
            r.run()
            t_run = time.perf_counter() - t1
            states = [r.nfvo.store.get_ns_instance(ns)["state"] for ns in r.services]
        finally:
            r.close()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        out = {"name": cfg.name, "wall_s": wall, "setup_s": t_setup, "run_s": t_run,
               "events": r.events, "events_per_s": r.events / wall,
               "run_events_per_s": (r.events - ev0) / t_run,
               "sim_per_wall": (r.env.now - sim0) / t_run, "rss_mb": peak_rss_mb(),
               "instantiated": states.count("INSTANTIATED"), "services": len(states),
               "counts": r.counts, "instances": len(r.model.instances),
               "partial_updates": r.model.partial_updates}
    c = out["counts"]
    print(f"{cfg.name}: {len(cfg.topology.computes)} servers, {cfg.services} NS, "
          f"{cfg.hours:g} h simulated | set-up {out['setup_s']:.1f} s, run {t_run:.1f} s, "
          f"wall {wall:.1f} s (process CPU {cpu:.1f} s) | events {r.events} ({out['events_per_s']:,.0f}/s, run "
          f"{out['run_events_per_s']:,.0f}/s) | {out['sim_per_wall']:,.0f} simulated s per "
          f"wall s | peak RSS {out['rss_mb']:.0f} MB", flush=True)
    print(f"  faults {c.faults}, repairs {c.repairs}, load changes {c.load_changes}, heals "
          f"{c.heals}, scale-outs {c.scale_outs}, scale-ins {c.scale_ins}, failed operations "
          f"{c.failed_ops} {c.errors or ''}, dropped {c.dropped}; NS INSTANTIATED at the "
          f"end {out['instantiated']}/{out['services']}; instances {out['instances']}",
          flush=True)
    return out


def configs(which: str) -> list[Config]:
    out = []
    if which in ("all", "k8"):
        out.append(Config("fat-tree k=8", fat_tree_servers(8), 100, 1.0))
    if which in ("all", "wan"):
        zoo = largest_zoo()
        out.append(Config(f"WAN {zoo.stem}", load_topology(zoo), 100, 6.0))
    if which in ("all", "k16"):
        out.append(Config("k=16", fat_tree_servers(16), 1000, 24.0))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["all", "k8", "k16", "wan"], default="all")
    args = ap.parse_args(argv)
    last = None
    for cfg in configs(args.only):
        last = run_config(cfg, args.seed)
    if last is not None and last["name"] == "k=16":
        print(f"simscale k=16 1000 NS 24 h: wall {last['wall_s']:.1f} s, events/s "
              f"{last['events_per_s']:,.0f}, peak RSS {last['rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
