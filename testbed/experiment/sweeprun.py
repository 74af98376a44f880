"""A sweep's runs as tasks on ``dask.distributed``: one task per (parameters, seed).

``run_sweep(specs, nfvi=..., scheduler=None)`` submits every ``RunSpec`` to a cluster and
returns each run's outcome in the order of ``specs`` (whatever order they finish in, so the
aggregate does not depend on the cluster):

- no ``scheduler``: a ``LocalCluster`` on this machine, made for the sweep and closed after
  it (one single-threaded worker process per core for the simulated NFVI; one worker for
  the emulated one, which holds the machine's only emulation);
- ``scheduler="tcp://HOST:PORT"``: an existing cluster. Its workers need the project
  installed and the scenario, topology and descriptor files at the same paths (the run's
  results go to the same absolute folder on the worker).

An emulated run asks for the worker resource ``emulation`` (``EMULATION``): only workers
started with ``--resources emulation=1`` take one, one at a time, so a machine holds one
emulation at a time (start one such worker per machine). Simulated runs take any worker.

A run that fails with a ``TestbedError`` is an outcome (``ok`` False, its message); any
other exception is a bug and is raised here once every task has ended. Progress is shown
with ``rich``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import dask
from dask.distributed import Client, LocalCluster, as_completed
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from testbed.errors import TestbedError
from testbed.experiment.engine import run_scenario

EMULATION = "emulation"      # the worker resource an emulated run needs, one unit


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: the scenario file (absolute), the swept values ``combo`` (strings,
    as on the command line), the seed, and what every run of the sweep shares."""

    scenario: str
    combo: dict
    seed: int
    nfvi: str
    results: str
    duration: float | None = None
    overrides: dict = field(default_factory=dict)
    calibration: str | None = None     # the simulated NFVI's calibration file (absolute)


def run_one(spec: RunSpec) -> dict:
    """Run one (parameters, seed) of a sweep (on a worker): ``{"ok": True, "summary": the
    run's summary.json with ``params`` = combo + seed, "run_dir"}`` or ``{"ok": False,
    "error"}`` when the run failed with a ``TestbedError``."""
    try:
        run_dir = run_scenario(spec.scenario, seed=spec.seed, duration=spec.duration,
                               overrides={**spec.overrides, **spec.combo},
                               results_dir=spec.results, nfvi=spec.nfvi,
                               calibration=spec.calibration)
    except TestbedError as exc:
        return {"ok": False, "error": str(exc)}
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    summary["params"] = {**spec.combo, "seed": spec.seed}
    return {"ok": True, "summary": summary, "run_dir": str(run_dir)}


def local_cluster(nfvi: str, workers: int | None = None,
                  local_directory: str | None = None) -> LocalCluster:
    """A cluster on this machine: ``workers`` single-threaded worker processes (default: one
    per core) for the simulated NFVI, one worker holding the ``emulation`` resource for
    the emulated one (a machine holds one emulation at a time). ``local_directory``: the
    workers' scratch space (dask's default is a shared folder in the temporary folder,
    which it leaves behind)."""
    if nfvi == "emulated":
        return LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                            resources={EMULATION: 1}, dashboard_address=None,
                            local_directory=local_directory)
    if workers is not None and workers < 1:
        raise TestbedError(f"--workers must be >= 1, not {workers}")
    n = workers or os.cpu_count() or 1
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                        dashboard_address=None, local_directory=local_directory)


def run_sweep(specs: list[RunSpec], *, nfvi: str, scheduler: str | None = None,
              workers: int | None = None, show_progress: bool = True) -> list[dict]:
    """Run every spec as a task (see the module docstring); outcomes in the order of
    ``specs``. Raises ``TestbedError`` when the scheduler cannot be reached."""
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("distributed").setLevel(logging.WARNING)   # its INFO is chatty
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            # dask's scratch space and lock files go in a folder of ours, removed after
            # (its default is a shared folder in the temporary folder, left behind)
            scratch = tempfile.mkdtemp(prefix="testbed-dask-")
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            stack.enter_context(dask.config.set({"temporary-directory": scratch}))
            cluster = local_cluster(nfvi, workers, scratch)
            stack.callback(cluster.close)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise TestbedError(f"--scheduler {scheduler}: no dask scheduler answers "
                                   f"there ({exc}); start one with `dask scheduler` and "
                                   f"workers with `dask worker {scheduler}`") from None
        with client:
            return _submit_all(client, specs, nfvi, show_progress)


def _submit_all(client: Client, specs: list[RunSpec], nfvi: str,
                show_progress: bool) -> list[dict]:
    resources = {EMULATION: 1} if nfvi == "emulated" else None
    futures = [client.submit(run_one, s, key=f"run-{i}-seed{s.seed}", pure=False,
                             resources=resources) for i, s in enumerate(specs)]
    index = {f.key: i for i, f in enumerate(futures)}
    columns = (TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("", total=len(futures))
        for fut in as_completed(futures):
            s = specs[index[fut.key]]
            state = "failed" if fut.status == "error" or not fut.result().get("ok") else "done"
            progress.update(task, advance=1,
                            description=f"{s.combo or ''} seed {s.seed}: {state}")
    return [f.result() for f in futures]
