"""NS instantiation time of a 3-VNF chain on fat-tree k=4 (descriptors/nsd/chain3.yaml).

    sudo .venv/bin/python bench/instantiate.py [--reps 10] [--spares N]

Each repetition instantiates the NS through the NFVO (placement, three hosts with cgroup
limits, VNF programs started, forwarding graph installed and acknowledged by the switches),
checks with a short probe that traffic flows, then terminates it. The instantiation time
is the NFVO call alone. The emulated NFVI keeps its default spare hosts
(``testbed.emulator.spares``) unless ``--spares`` says otherwise (0: every host and VNF
program is started by its create). Last line: ``NS instantiation median s: X``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--spares", type=int, default=None,
                    help="spare hosts the emulated NFVI keeps (default: the driver's)")
    args = ap.parse_args()

    from mano.nfvo import NFVO
    from testbed import chain
    from testbed.emulator import Emulation
    from testbed.nfvi.emulated import EmulatedDriver
    from testbed.topology.builders import fat_tree

    times = []
    with tempfile.TemporaryDirectory() as tmp, Emulation(fat_tree(4)) as emu:
        drv = EmulatedDriver(emu) if args.spares is None else \
            EmulatedDriver(emu, spares=args.spares)
        nfvo = NFVO(drv, Path(tmp) / "nfvo.db")
        nfvo.onboard_nsd(ROOT / "descriptors" / "nsd" / "chain3.yaml",
                         sorted((ROOT / "descriptors" / "vnfd").glob("*.yaml")))
        for i in range(args.reps):
            t0 = time.monotonic()
            nfvo.instantiate("chain3", f"ns{i}")
            dt = time.monotonic() - t0
            res = chain.Probe(emu, "h1", "h16", port=5001, rate=500, duration=0.2,
                              tag=f"b{i}").start().wait()
            nfvo.terminate(f"ns{i}")
            times.append(dt)
            print(f"rep {i + 1:2d}: instantiated in {dt:.3f} s, probe {res['received']}/100",
                  flush=True)
        nfvo.close()
        drv.close()
    print(f"NS instantiation median s: {statistics.median(times):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
