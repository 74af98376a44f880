"""Concrete fault targets, resolved from the seed before the run starts.

A scenario may name a fault's target as ``"auto"`` (or a VNF id shared by several network
services). ``resolve`` turns every fault of the timeline into a concrete one — a link
``"a-b"``, a switch, a compute node, ``"<ns>/<vnf>"`` — using only the services' state
after instantiation (graph paths, where instances run) and a random generator seeded from
the run's seed, so ``timeline.json`` holds concrete targets and one seed gives one
timeline. The choice rules:

- ``link_down auto``: a link (switch pair) on a path of one of the NS's forwarding graphs;
- ``switch_down auto``: a switch on such a path that no hop of the graph hangs off (so the
  graph can be rerouted around it);
- ``compute_down auto``: a compute node hosting an instance of the NS;
- ``vnf_crash``/``vnf_hang`` with ``auto``: one of the NS's VNFs; with a VNF id: that VNF in
  the NS given, else in one of the NSs that have it. The instance is the VNF's oldest live
  instance at the fault's time (instances come and go during a run).

The NS is the fault's ``ns`` when the scenario gave one, else drawn. Each resolved fault
lists the NSs it affects (``ns``), for attributing outages.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from testbed.errors import TestbedError
from testbed.experiment.scenario import FaultSpec


@dataclass
class ServiceView:
    """What resolution needs of one NS: per graph its switch paths and the switches its hops
    hang off, its VNFs in chain order and the compute node of each instance."""

    ns: str
    paths: dict[str, list[list[str]]]            # graph name -> switch paths
    hop_switches: dict[str, set[str]]            # graph name -> switches of its hops
    vnfs: list[str]
    computes: dict[str, list[str]] = field(default_factory=dict)   # vnf -> compute nodes

    def links(self) -> set[tuple[str, str]]:
        return {tuple(sorted(p[i:i + 2])) for ps in self.paths.values() for p in ps
                for i in range(len(p) - 1)}

    def switches(self) -> set[str]:
        return {s for ps in self.paths.values() for p in ps for s in p}


def target_rng(seed: int) -> random.Random:
    """The generator of target choices: seeded from the run's seed only (a string seed is
    hashed with SHA-512 by ``random``, so it does not depend on PYTHONHASHSEED)."""
    return random.Random(f"targets:{seed}")


def resolve(timeline: list[FaultSpec], services: list[ServiceView],
            rng: random.Random) -> list[dict]:
    """Concrete faults in timeline order: ``{"id", "at", "kind", "target", "duration",
    "ns": [affected NSs]}``. Raises ``TestbedError`` naming the fault when no target fits."""
    by_ns = {s.ns: s for s in services}
    out, seen = [], {}
    for f in timeline:
        try:
            target, affected = _one(f, services, by_ns, rng)
        except TestbedError as exc:
            raise TestbedError(f"fault {f.kind} at {f.at} s (target {f.target!r}): {exc}") \
                from None
        fid = f"{f.kind}@{f.at:g}"
        seen[fid] = seen.get(fid, 0) + 1
        if seen[fid] > 1:
            fid = f"{fid}#{seen[fid]}"
        out.append({"id": fid, "at": f.at, "kind": f.kind, "target": target,
                    "duration": f.duration, "ns": affected})
    return out


def _pick_ns(f: FaultSpec, services: list[ServiceView], by_ns: dict, rng,
             having=None) -> ServiceView:
    if f.ns is not None:
        if f.ns not in by_ns:
            raise TestbedError(f"no network service {f.ns!r}; the scenario has "
                               f"{', '.join(sorted(by_ns))}")
        return by_ns[f.ns]
    pool = [s for s in services if having is None or having(s)]
    if not pool:
        raise TestbedError("no network service has such a target")
    return pool[rng.randrange(len(pool))] if len(pool) > 1 else pool[0]


def _one(f: FaultSpec, services, by_ns, rng) -> tuple[str, list[str]]:
    kind, target = f.kind, f.target
    if kind in ("nfvo_restart", "controller_restart"):
        return kind.split("_")[0], sorted(by_ns)
    if kind == "link_down":
        if target == "auto":
            sv = _pick_ns(f, services, by_ns, rng, lambda s: s.links())
            links = sorted(sv.links())
            if not links:
                raise TestbedError(f"NS {sv.ns}: its graphs use no link between switches")
            a, b = links[rng.randrange(len(links))]
        else:
            a, sep, b = target.partition("-")
            if not sep or not a or not b:
                raise TestbedError("a link target is written 'a-b' (two switch names)")
        pair = tuple(sorted((a, b)))
        return f"{a}-{b}", sorted(s.ns for s in services if pair in s.links())
    if kind == "switch_down":
        if target == "auto":
            sv = _pick_ns(f, services, by_ns, rng)
            hops = set().union(*sv.hop_switches.values()) if sv.hop_switches else set()
            cands = sorted(sv.switches() - hops)
            if not cands:
                raise TestbedError(f"NS {sv.ns}: every switch on its paths has a hop on it; "
                                   f"name the switch")
            target = cands[rng.randrange(len(cands))]
        return target, sorted(s.ns for s in services if target in s.switches())
    if kind == "compute_down":
        if target == "auto":
            sv = _pick_ns(f, services, by_ns, rng, lambda s: any(s.computes.values()))
            nodes = sorted({n for ns in sv.computes.values() for n in ns})
            target = nodes[rng.randrange(len(nodes))]
        return target, sorted(s.ns for s in services
                              if any(target in ns for ns in s.computes.values()))
    if kind in ("vnf_crash", "vnf_hang"):
        if "/" in target:
            ns, _, vnf = target.partition("/")
            if ns not in by_ns or vnf not in by_ns[ns].vnfs:
                raise TestbedError(f"no VNF {vnf!r} in a network service {ns!r}")
            return target, [ns]
        if target == "auto":
            sv = _pick_ns(f, services, by_ns, rng, lambda s: s.vnfs)
            vnf = sv.vnfs[rng.randrange(len(sv.vnfs))]
        else:
            sv = _pick_ns(f, services, by_ns, rng, lambda s, v=target: v in s.vnfs)
            if target not in sv.vnfs:
                raise TestbedError(f"NS {sv.ns} has no VNF {target!r}; it has "
                                   f"{', '.join(sv.vnfs)}")
            vnf = target
        return f"{sv.ns}/{vnf}", [sv.ns]
    raise TestbedError(f"fault kind {kind!r} is not supported")
