"""Data-path outage when a link on a chain's active path is cut, restoration vs protection.

    sudo .venv/bin/python bench/outage.py [--reps 10] [--rate 2000]

fat-tree k=4, chain h1 -> vA (e3) -> vB (e5) -> h16. Each repetition installs the graph,
runs a sequence-numbered UDP probe at --rate packets/s, cuts a link on the active path, and
reads the receiver's largest gap (minus one inter-packet interval) as the outage; the link
comes back up before the next repetition. Above the last line: the median packets lost
per mode (on a busy machine, queues upstream of the cut hide most of a switch-over from the
arrival gaps; the loss still counts it), and how many repetitions lost packets in more than
one run of sequence numbers (a second loss after the repair: the controller's reroute after
a fast-failover switch-over broke the path again). Waits for another process's emulation
to end.
Last line: ``outage median ms: restoration X, protection Y``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--json", default=None, help="also write every measurement here")
    args = ap.parse_args()

    from testbed import chain
    from testbed.emulator import Emulation, registry
    from testbed.topology.builders import fat_tree

    rows = []
    while registry.live_runs():   # one emulation per machine: wait for the other's end
        time.sleep(2)
    with Emulation(fat_tree(4)) as emu:
        chain.start_vnf(emu, "vA", "e3")
        chain.start_vnf(emu, "vB", "e5")
        src, dst = emu.attachments["h1"], emu.attachments["h16"]
        for i in range(args.reps):
            for protection in (False, True):
                mode = "protection" if protection else "restoration"
                g = chain.chain_graph("bench", src, dst, ["vA", "vB"], udp_dst=5001,
                                      protection=protection)
                r = chain.measure_link_cut(emu, g, rate=args.rate, before=0.6, after=0.8,
                                           tag=f"{mode}{i}")
                emu.ctl.delete_graph("bench")
                time.sleep(0.3)  # the link is back up; let the port status settle
                r["mode"] = mode
                rows.append(r)
                print(f"{mode:12s} rep {i + 1:2d}: link {r['link']:7s} outage "
                      f"{r['outage_ms']:7.2f} ms, lost {r['lost']} in {r['loss_runs']} "
                      f"run(s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    med = {m: statistics.median(r["outage_ms"] for r in rows if r["mode"] == m)
           for m in ("restoration", "protection")}
    lost = {m: statistics.median(r["lost"] for r in rows if r["mode"] == m)
            for m in ("restoration", "protection")}
    second = {m: sum(1 for r in rows if r["mode"] == m and r["loss_runs"] > 1)
              for m in ("restoration", "protection")}
    print(f"repetitions with a second loss: restoration {second['restoration']} of "
          f"{args.reps}, protection {second['protection']} of {args.reps}")
    print(f"lost median packets: restoration {lost['restoration']:.0f}, "
          f"protection {lost['protection']:.0f} (at {args.rate} packets/s)")
    print(f"outage median ms: restoration {med['restoration']:.1f}, "
          f"protection {med['protection']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
