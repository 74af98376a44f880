"""Bring-up and tear-down time: this testbed's emulator against stock Mininet, side by side.

    sudo .venv/bin/python bench/bringup.py [--k 4 8] [--repeat 1]

Stock: ``Mininet(topo=FatTree(k), switch=OVSSwitch(datapath='user'), controller=None)``,
``start()`` then ``stop()``. Testbed: ``Emulation(fat_tree(k))`` including its controller
process and waiting until every switch is connected and programmed (a stricter finish line
than stock's). ``--busy`` runs a CPU-bound process beside both (one core spinning) for
the whole bench. Waits for another process's emulation to end. Above the last line:
``tear-down k=8: stock S s, testbed T s, ratio R``; last line:
``bring-up k=8: stock S s, testbed T s, ratio R``.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from functools import partial


def stock_fat_tree(k: int):
    from mininet.topo import Topo

    class FatTree(Topo):
        def build(self):
            half = k // 2
            cores = [self.addSwitch(f"sc{i + 1}", dpid=f"{0x100 + i:x}") for i in range(half * half)]
            n = 0
            for pod in range(k):
                aggs = [self.addSwitch(f"sa{pod * half + i + 1}", dpid=f"{0x200 + pod * half + i:x}")
                        for i in range(half)]
                edges = [self.addSwitch(f"se{pod * half + i + 1}", dpid=f"{0x300 + pod * half + i:x}")
                         for i in range(half)]
                for i, a in enumerate(aggs):
                    for j in range(half):
                        self.addLink(a, cores[i * half + j])
                    for e in edges:
                        self.addLink(a, e)
                for e in edges:
                    for _ in range(half):
                        n += 1
                        self.addLink(e, self.addHost(f"sh{n}"))
    return FatTree()


def time_stock(k: int) -> tuple[float, float]:
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    t0 = time.monotonic()
    net = Mininet(topo=stock_fat_tree(k), switch=partial(OVSSwitch, datapath="user"),
                  controller=None, autoSetMacs=True)
    net.start()
    up = time.monotonic() - t0
    t1 = time.monotonic()
    net.stop()
    return up, time.monotonic() - t1


def time_testbed(k: int) -> tuple[float, float]:
    from testbed.emulator import Emulation, registry
    from testbed.errors import EmulationError
    from testbed.topology.builders import fat_tree

    for attempt in range(60):
        while registry.live_runs():   # another process's emulation: wait for its end
            time.sleep(2)
        t0 = time.monotonic()
        emu = Emulation(fat_tree(k))
        try:
            emu.__enter__()
            break
        except EmulationError as exc:   # it started between the check and ours
            if "another testbed run is active" not in str(exc) or attempt == 59:
                raise
    up = time.monotonic() - t0
    t1 = time.monotonic()
    emu.__exit__(None, None, None)
    return up, time.monotonic() - t1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--busy", action="store_true", help="a CPU-bound process runs beside")
    args = ap.parse_args()
    from mininet.log import setLogLevel

    from testbed.emulator import registry
    setLogLevel("warning")
    while registry.live_runs():   # one emulation per machine: wait for the other's end
        time.sleep(2)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        res, down = run(args)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    k = max(res)
    sd, td = down[k]
    print(f"tear-down k={k}: stock {sd:.2f} s, testbed {td:.2f} s, ratio {sd / td:.1f}")
    su, tu = res[k]
    print(f"bring-up k={k}: stock {su:.2f} s, testbed {tu:.2f} s, ratio {su / tu:.1f}")
    return 0


def run(args) -> tuple[dict, dict]:
    res, down = {}, {}
    for k in args.k:
        st, tb = [], []
        for _ in range(args.repeat):   # alternated, so both see the same machine
            st.append(time_stock(k))
            tb.append(time_testbed(k))
        su, sd = statistics.median(x[0] for x in st), statistics.median(x[1] for x in st)
        tu, td = statistics.median(x[0] for x in tb), statistics.median(x[1] for x in tb)
        res[k], down[k] = (su, tu), (sd, td)
        print(f"k={k}: stock up {su:.2f} s down {sd:.2f} s | testbed up {tu:.2f} s "
              f"down {td:.2f} s | bring-up ratio {su / tu:.1f}x", flush=True)
        if args.repeat > 1:
            for what, xs in (("stock", st), ("testbed", tb)):
                print(f"  {what} over {len(xs)} runs: up min {min(x[0] for x in xs):.2f} "
                      f"max {max(x[0] for x in xs):.2f} s, down min "
                      f"{min(x[1] for x in xs):.2f} max {max(x[1] for x in xs):.2f} s")
    return res, down


if __name__ == "__main__":
    sys.exit(main())
