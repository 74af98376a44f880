"""What the emulated benches share: running a scenario when the machine's one emulation slot
is free, again when another process took it first or a busy machine failed its start."""
from __future__ import annotations

import time
from pathlib import Path

from testbed.emulator import registry
from testbed.errors import TestbedError
from testbed.experiment.engine import run_scenario

BUSY = "another testbed run is active"


def run_exclusive(scenario: Path, *, seed: int, duration: float, overrides: dict,
                  results: Path, attempts: int = 60) -> Path:
    """``run_scenario`` on the emulated NFVI once no other run holds the machine; its run
    folder. A run refused because another process took the slot first is repeated (up to
    ``attempts`` times); one that failed otherwise is repeated twice, saying why, then its
    ``TestbedError`` is raised."""
    for attempt in range(attempts):
        while registry.live_runs():
            time.sleep(2)
        try:
            return run_scenario(scenario, seed=seed, duration=duration, overrides=overrides,
                                results_dir=results)
        except TestbedError as exc:
            if attempt == attempts - 1 or (BUSY not in str(exc) and attempt >= 2):
                raise
            if BUSY not in str(exc):
                print(f"  (run failed, repeated: {str(exc).splitlines()[0][:160]})",
                      flush=True)
    raise AssertionError("unreachable")
