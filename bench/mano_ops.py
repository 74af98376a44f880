"""MANO throughput: create, instantiate, terminate and delete NS cycles through the NFVO.

    .venv/bin/python bench/mano_ops.py [--cycles 1000] [--reps 10]

The NFVO (with its real SQLite file, in a temporary directory) drives the simulated NFVI
(fat-tree k=4, chain3: three VNFs, one forwarding graph). The driver is called on the
SimPy loop's own thread, so its operations take no modelled time: what is timed is the
MANO stack's own work (NFVO, VNFM, VIM, operation occurrences, grants, SQLite commits)
plus the simulated driver's bookkeeping and the controller logic's path computation.
One operation = one NFVO call (create_ns, instantiate, terminate, delete_ns): a cycle is
four. Each repetition runs ``--cycles`` cycles on a fresh NFVO and store. Last line:
``mano ops/s: X (N cycles, median of R; min A, max B)``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mano.nfvo import NFVO
from testbed.nfvi import open_nfvi
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[1]
OPS_PER_CYCLE = 4


def run(cycles: int) -> tuple[float, float]:
    """(operations per second of wall time, CPU seconds of this process) of ``cycles``
    cycles on a fresh NFVO over the simulated NFVI."""
    with tempfile.TemporaryDirectory() as tmp, \
            open_nfvi("simulated", load_topology(ROOT / "topologies/fat_tree4.yaml"),
                      Path(tmp) / "run") as nfvi:
        nfvo = NFVO(nfvi.driver, Path(tmp) / "nfvo.db")
        try:
            nfvo.onboard_nsd(ROOT / "descriptors" / "nsd" / "chain3.yaml",
                             sorted((ROOT / "descriptors" / "vnfd").glob("*.yaml")))
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(cycles):
                ns = f"ns{i}"
                nfvo.create_ns("chain3", ns)
                op = nfvo.instantiate("chain3", ns)
                if op["state"] != "COMPLETED":
                    raise RuntimeError(f"cycle {i}: instantiate ended {op['state']}: "
                                       f"{op.get('error')}")
                op = nfvo.terminate(ns)
                if op["state"] != "COMPLETED":
                    raise RuntimeError(f"cycle {i}: terminate ended {op['state']}: "
                                       f"{op.get('error')}")
                nfvo.delete_ns(ns)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            if nfvi.driver.list_instances() or nfvi.driver.list_graphs():
                raise RuntimeError("instances or graphs left after the cycles")
        finally:
            nfvo.close()
    return cycles * OPS_PER_CYCLE / dt, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    rates = []
    for r in range(args.reps):
        rate, cpu = run(args.cycles)
        rates.append(rate)
        # CPU time too: on a busy machine the wall-clock rate says more about the others
        print(f"rep {r + 1:2d}: {rate:.1f} ops/s ({cpu:.2f} s CPU, "
              f"{args.cycles * OPS_PER_CYCLE / cpu:.1f} ops per CPU-second)", flush=True)
    print(f"mano ops/s: {statistics.median(rates):.1f} ({args.cycles} cycles, median of "
          f"{args.reps}; min {min(rates):.1f}, max {max(rates):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
