"""The controller at scale: fat-tree k=8, 200 forwarding graphs (protection on half), one
core link cut.

    .venv/bin/python bench/controller.py [--reps 10]            # the pure logic only
    sudo .venv/bin/python bench/controller.py --real [--reps 10] # and the real process

Graph ``i`` (seeded) runs from one host of the 128 through two other hosts standing for its
VNFs to a fourth, classifier UDP port 10000 + i; even graphs are protected. The cut link
is the core link the most graphs' primary paths use; each repetition cuts it (port status
down at both ends) and brings it back (up at both ends).

Measures, defined here once:

- *port status -> last flow-mod* (pure logic): wall time of ``Fabric.port_status`` for the
  first end's port-down event plus what the app does before handing bytes to the sockets:
  ``ofmsg.Encoder.encode`` of the returned ``Changes`` and ``Batch.stamped`` (xids) of
  every batch, on one thread. Measured as the controller runs once the fabric has been
  unchanged for a moment: every used link's repair prepared (``Fabric.prepare_repair``)
  and encoded (``Encoder.prepare``) beforehand, as its background thread does; that
  preparation is timed and printed apart. Also printed: the same without preparation
  (a failure while repairs are still being prepared; a fresh encoder, so os-ken
  serialises every message).
- *path computation per graph*: wall time of the port-up event of the link's second end
  (which recomputes every graph: paths, backups, flows, groups, and the diff) divided by
  the number of graphs. Also the mean ``add_graph`` time of the first installation.
- with ``--real``: the controller process (``testbed.controller.app``) of an emulated k=8
  fat-tree (real OVS, userspace datapath) holds the same graphs; the link is cut with
  ``Emulation.link_down``; the figure is the app's own "port status ... handled in X ms"
  log line: from the event's handler start to the last message of the reaction's first
  stage handed to the switches' send queues (``Datapath.send``): the new paths, and the
  switch of the paths the cut broke (``Changes.stages()``). The protected graphs' paths,
  which fast failover keeps carrying packets, switch in the next stage, once the switches
  answered barriers for the first (``rollout.Rollouts``); the log line gives that time
  too ("paths in use switched after"), and it is printed apart. The old paths' deletion,
  after a drain, is not in either, nor is saving the state for a restart (the same as the
  ``testbed_controller_reaction_seconds`` metric).

Last line: ``controller k=8 200 graphs: port-status→last flow-mod median X ms, path Y
ms/graph`` (the real process's median, when run, in brackets). With ``--real`` each cut
waits for the controller's "repairs prepared" log line of the fabric's latest state.
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections import Counter
from itertools import pairwise

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from testbed.controller import ofmsg
from testbed.controller.logic import Fabric
from testbed.controller.process import NorthboundClient
from testbed.controller.specs import Attachment, ForwardingGraphSpec, Link
from testbed.topology.builders import fat_tree

K, GRAPHS, SEED = 8, 200, 1


class _Datapath:
    """What ``Batch.stamped`` needs of a datapath: its protocol module and xid counter."""

    ofproto, xid = ofproto_v1_3, 0


def wiring(topo) -> dict:
    """Switches, links (ports numbered from 1 per switch in link order) and host
    attachments of a topology, as the controller's config holds them."""
    nxt: Counter = Counter()

    def port(sw: str) -> int:
        nxt[sw] += 1
        return nxt[sw]
    eps = {e.name: e for e in topo.endpoints()}
    links = [{"a": lk.a, "a_port": port(lk.a), "b": lk.b, "b_port": port(lk.b)}
             for lk in topo.links() if lk.a not in eps and lk.b not in eps]
    atts = [{"name": e.name, "switch": e.switch, "port": port(e.switch)}
            for e in eps.values()]
    return {"switches": {s.name: s.dpid for s in topo.switches()}, "links": links,
            "attachments": atts}


def graphs(hosts: list[str], n: int = GRAPHS, seed: int = SEED) -> list[dict]:
    """``n`` graphs of four distinct hosts each (ingress, two VNF stand-ins, egress)."""
    rng = random.Random(seed)
    return [{"name": f"g{i}", "match": {"ip_proto": 17, "udp_dst": 10000 + i},
             "hops": rng.sample(hosts, 4), "protection": i % 2 == 0} for i in range(n)]


def busiest_core_link(fabric: Fabric, names: list[str], cores: set[str]) -> Link:
    use: Counter = Counter()
    for name in names:
        for path in fabric.graph_paths(name):
            for a, b in pairwise(path):
                if a in cores or b in cores:
                    use[frozenset((a, b))] += 1
    (pair, _), = use.most_common(1)
    return next(lk for lk in fabric.links() if {lk.a, lk.b} == set(pair))


def stats(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f}, min {min(xs):.2f}, max {max(xs):.2f}"


def pure(reps: int) -> tuple[float, float]:
    """The pure-logic measures; returns (median cut ms, median path ms per graph)."""
    w = wiring(fat_tree(K))
    fabric = Fabric(w["switches"], [Link(**lk) for lk in w["links"]],
                    [Attachment(**a) for a in w["attachments"]])
    gs = graphs(sorted((a["name"] for a in w["attachments"]), key=lambda h: int(h[1:])))
    t0 = time.perf_counter()
    for g in gs:
        fabric.add_graph(ForwardingGraphSpec.from_dict(g))
    add_ms = (time.perf_counter() - t0) * 1000 / len(gs)
    cores = {s for s in w["switches"] if s.startswith("c")}
    link = busiest_core_link(fabric, [g["name"] for g in gs], cores)
    dpid = w["switches"]
    dp = _Datapath()
    encoder = ofmsg.Encoder(ofproto_v1_3, ofproto_v1_3_parser)
    cut, cut_cpu, logic, path, sizes, prep, prep_cpu, cold = [], [], [], [], [], [], [], []
    for _ in range(reps):
        # what the controller's background thread does once the fabric is unchanged
        t0, c0 = time.perf_counter(), time.thread_time()
        links = fabric.unprepared_links()
        encoder.forget()
        for lk in links:
            encoder.prepare(fabric.prepare_repair(lk))
        prep.append(time.perf_counter() - t0)
        prep_cpu.append(time.thread_time() - c0)
        t0, c0 = time.perf_counter(), time.thread_time()
        ch = fabric.port_status(dpid[link.a], link.a_port, False)
        t1 = time.perf_counter()
        _send(encoder, ch, dp)
        t2, c2 = time.perf_counter(), time.thread_time()
        cut.append((t2 - t0) * 1000)
        cut_cpu.append((c2 - c0) * 1000)
        logic.append((t1 - t0) * 1000)
        sizes.append(len(ch))
        if fabric.port_status(dpid[link.b], link.b_port, False):
            raise RuntimeError("the second end's port-down event changed something")
        fabric.port_status(dpid[link.a], link.a_port, True)
        t0 = time.perf_counter()
        fabric.port_status(dpid[link.b], link.b_port, True)
        path.append((time.perf_counter() - t0) * 1000 / len(gs))
        # the same cut with nothing prepared, then back
        t0 = time.perf_counter()
        _send(ofmsg.Encoder(ofproto_v1_3, ofproto_v1_3_parser),
              fabric.port_status(dpid[link.a], link.a_port, False), dp)
        cold.append((time.perf_counter() - t0) * 1000)
        fabric.port_status(dpid[link.a], link.a_port, True)
    print(f"pure logic: cut link {link.a}:{link.a_port}-{link.b}:{link.b_port}, "
          f"{sizes[0]} flow/group changes, {reps} repetitions")
    print(f"  install: add_graph {add_ms:.3f} ms/graph (mean of {len(gs)})")
    print(f"  repairs prepared and encoded ({len(links)} links), s: {stats(prep)}; "
          f"CPU s: {stats(prep_cpu)}")
    print(f"  port status -> last flow-mod built, ms: {stats(cut)}")
    print(f"    of which Fabric.port_status, ms: {stats(logic)}")
    # CPU time of this thread: what the wall time would be on an idle core
    print(f"    CPU time of the same, ms: {stats(cut_cpu)}")
    print(f"  the same with nothing prepared, ms: {stats(cold)}")
    print(f"  path computation (all graphs recomputed), ms/graph: {stats(path)}")
    return statistics.median(cut), statistics.median(path)


def _send(encoder: ofmsg.Encoder, changes, dp: _Datapath) -> int:
    """What ``app.apply`` does but the socket writes: encode, number; returns bytes."""
    return sum(len(batch.stamped(dp)) for _stage, batches in encoder.encode(changes)
               for batch in batches)


def real(reps: int) -> float:
    """The real controller process on an emulated k=8 fat-tree; returns the median ms."""
    from testbed.emulator import Emulation
    with Emulation(fat_tree(K)) as emu:
        hosts = sorted(emu.attachments, key=lambda h: (len(h), h))
        hosts = [h for h in hosts if h.startswith("h")]
        gs = graphs(hosts)
        # a generous timeout: on a busy 2-core machine an install to 80 switches was
        # once not answered within the client's default 10 s
        ctl = NorthboundClient(emu.ctl.base_url, timeout=60.0)
        t0 = time.perf_counter()
        for g in gs:
            ctl.put_graph(g)
        print(f"real process: {len(gs)} graphs installed through the northbound in "
              f"{time.perf_counter() - t0:.1f} s")
        log = emu.controller.log_path
        ready = re.compile(r"repairs prepared: (\d+) links in ([\d.]+) s")
        got = _wait_lines(log, log.stat().st_size, ready, 1, timeout=300.0)
        print(f"real process: repairs of {got[0].group(1)} links prepared in "
              f"{got[0].group(2)} s")
        w = emu.wiring()
        fabric = Fabric(w["switches"], [Link(**lk) for lk in w["links"]],
                        [Attachment(**a) for a in w["attachments"]])
        for g in gs:
            fabric.add_graph(ForwardingGraphSpec.from_dict(g))
        cores = {s for s in w["switches"] if s.startswith("c")}
        link = busiest_core_link(fabric, [g["name"] for g in gs], cores)
        # the event that changes something (OVS may also report the port "up" first)
        down = re.compile(r"port status (\S+):(\d+) down handled in ([\d.]+) ms "
                          r"\(([1-9]\d*) changes(, prepared)?"
                          r"(; paths in use switched after ([\d.]+) ms)?")
        up = re.compile(r"port status \S+ up handled in [\d.]+ ms \([1-9]\d* changes")
        times, prepared, preps, switched = [], 0, [], []
        for _ in range(reps):
            seen = log.stat().st_size
            emu.link_down(link.a, link.b)
            got = _wait_lines(log, seen, down, 1)
            seen = log.stat().st_size
            emu.link_up(link.a, link.b)
            _wait_lines(log, seen, up, 1)       # every graph recomputed: back to the start
            # the repairs of the state after the link's return, before the next cut
            preps.append(float(_wait_lines(log, log.stat().st_size, ready, 1,
                                           timeout=300.0)[0].group(2)))
            times.append(float(got[0].group(3)))
            if got[0].group(7) is not None:
                switched.append(float(got[0].group(7)))
            prepared += got[0].group(5) is not None
        print(f"real process: cut {link.a}-{link.b}, {got[0].group(4)} changes, {prepared} "
              f"of {reps} cuts found their repair prepared (preparing after each return, "
              f"s: {stats(preps)}); port status -> last flow-mod sent, ms: {stats(times)}")
        if switched:
            print(f"real process: port status -> paths still in use (fast failover) "
                  f"switched, after a barrier round trip, ms: {stats(switched)}")
        return statistics.median(times)


def _wait_lines(log, offset: int, pat, n: int, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, errors="replace") as f:
            f.seek(offset)
            found = [m for m in map(pat.search, f.read().splitlines()) if m]
        if len(found) >= n:
            return found
        time.sleep(0.02)
    with open(log, errors="replace") as f:
        f.seek(offset)
        tail = "\n".join(f.read().splitlines()[-30:])
    raise RuntimeError(f"controller log {log}: no {n} line(s) matching {pat.pattern!r} "
                       f"within {timeout} s; since the cut it says:\n{tail}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--real", action="store_true",
                    help="also measure the real controller process (root, OVS, Mininet)")
    args = ap.parse_args()
    # the real process first: the emulation slot of a shared machine is taken when free
    extra = f" (real process {real(args.reps):.1f} ms)" if args.real else ""
    cut, path = pure(args.reps)
    print(f"controller k=8 {GRAPHS} graphs: port-status→last flow-mod median {cut:.1f} ms"
          f"{extra}, path {path:.3f} ms/graph")
    return 0


if __name__ == "__main__":
    sys.exit(main())
