"""The main job, for now: one link failure under a VNF chain, measured with real packets.

Brings up the topology (default ``topologies/fat_tree4.yaml``), places a 2-VNF chain on
compute-node switches chosen with the seed, installs the forwarding graph through the
controller, runs a 2,000 packets/s UDP probe, cuts a link on the active path, brings it back,
checks traffic still flows, and writes ``results/demo/<run-id>/summary.json`` and
``summary.md``. A later issue replaces this with scenario runs.
"""
from __future__ import annotations

import datetime as dt
import json
import platform
import random
import subprocess
from pathlib import Path

import networkx as nx

from testbed import chain
from testbed.emulator import Emulation
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOPOLOGY = ROOT / "topologies" / "fat_tree4.yaml"


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return ""


def pick_chain(topo, rng: random.Random) -> tuple[str, str, list[str]]:
    """Source and destination endpoints far apart, two VNF switches among compute nodes."""
    eps = sorted(topo.endpoints(), key=lambda e: e.name)
    g = topo.switch_graph()
    dist = dict(nx.all_pairs_shortest_path_length(g))
    far = max(dist[a.switch][b.switch] for a in eps for b in eps)
    pairs = [(a, b) for a in eps for b in eps if dist[a.switch][b.switch] == far]
    src, dst = rng.choice(pairs)
    hosts = sorted({c.switch for c in topo.computes.values()} - {src.switch, dst.switch})
    if len(hosts) < 2:
        hosts = sorted(s.name for s in topo.switches())
    sw = rng.sample(hosts, 2)
    return src.name, dst.name, sw


def run_demo(*, topology: str | None = None, protection: bool = False,
             results: str = "results", seed: int = 1) -> dict:
    topo = load_topology(topology or DEFAULT_TOPOLOGY)
    rng = random.Random(seed)
    src, dst, vnf_switches = pick_chain(topo, rng)
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-s{seed}"
    out = Path(results) / "demo" / run_id
    out.mkdir(parents=True, exist_ok=True)
    print(f"topology {topo.name}: {len(topo.switches())} switches, "
          f"{len(topo.endpoints())} endpoints; chain {src} -> vnf1@{vnf_switches[0]} -> "
          f"vnf2@{vnf_switches[1]} -> {dst} (seed {seed})", flush=True)
    summary = {"run_id": run_id, "seed": seed, "topology": topo.name,
               "topology_file": str(topology or DEFAULT_TOPOLOGY), "git": _git_rev(),
               "python": platform.python_version(),
               "chain": {"src": src, "dst": dst, "vnfs": {"vnf1": vnf_switches[0],
                                                           "vnf2": vnf_switches[1]}},
               "measurements": []}
    with Emulation(topo, run_dir=out / "run") as emu:
        summary["datapath"] = emu.datapath
        summary["bringup_s"] = round(emu.timings["start"], 3)
        print(f"emulation up in {emu.timings['start']:.2f} s ({emu.datapath} datapath)",
              flush=True)
        v1 = chain.start_vnf(emu, "vnf1", vnf_switches[0])
        v2 = chain.start_vnf(emu, "vnf2", vnf_switches[1])
        modes = [False, True] if protection else [False]
        for prot in modes:
            g = chain.chain_graph("demo", emu.attachments[src], emu.attachments[dst],
                                  ["vnf1", "vnf2"], udp_dst=5001, protection=prot)
            r = chain.measure_link_cut(emu, g, rate=2000, before=1.0, after=1.5,
                                       tag="prot" if prot else "rest")
            # the link is back up: the chain must carry traffic again
            after = chain.Probe(emu, src, dst, port=5001, rate=1000, duration=0.5,
                                tag="after").start().wait()
            r["after_restore_received"] = after["received"]
            r["mode"] = "protection" if prot else "restoration"
            r.pop("t_cut", None)
            summary["measurements"].append(r)
            emu.ctl.delete_graph("demo")
            print(f"{r['mode']}: cut link {r['link']}, outage {r['outage_ms']:.1f} ms, "
                  f"{r['lost']} of {r['sent']} probe packets lost; after the link came back "
                  f"{after['received']} of 500 arrived", flush=True)
        summary["vnf_packets"] = {"vnf1": v1.packets, "vnf2": v2.packets}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = [f"# Demo run {run_id}", "", f"- topology: {topo.name} ({summary['datapath']} "
             f"datapath), seed {seed}, git {summary['git']}",
             f"- chain: {src} -> vnf1 ({vnf_switches[0]}) -> vnf2 ({vnf_switches[1]}) -> {dst}",
             "", "| mode | link cut | outage ms | lost | sent |", "|---|---|---|---|---|"]
    lines += [f"| {m['mode']} | {m['link']} | {m['outage_ms']:.1f} | {m['lost']} | {m['sent']} |"
              for m in summary["measurements"]]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"results: {out}/summary.json and summary.md")
    return summary
