"""``testbed clean``: remove what killed runs left behind, and only what is ours.

What counts as ours: runs recorded in ``/run/testbed`` whose owner process is gone, and
bridges or links that carry a testbed run tag whose run is not alive. Processes are ended
only by the pids recorded for such a run (checked against their start time), never by name.
"""
from __future__ import annotations

import os
import shutil

from testbed.emulator import registry
from testbed.emulator.net import remove_tagged, tagged_bridges, tagged_links


def clean(*, dry_run: bool = False) -> list[str]:
    """Remove leftovers of dead runs; return a line per thing removed (or to remove)."""
    done: list[str] = []
    live = {r.run_id for r in registry.live_runs()}
    dead_runs = [r for r in registry.all_runs() if r.run_id not in live]
    for rec in dead_runs:
        procs = [p for p in rec.processes
                 if p.start is not None and registry.proc_start_time(p.pid) == p.start]
        done += [f"run {rec.run_id}: process {p.pid} ({p.what})" for p in procs]
        if rec.owns_run_dir and os.path.isdir(rec.run_dir):
            done.append(f"run {rec.run_id}: folder {rec.run_dir}")
        if not dry_run:
            registry.kill_recorded(procs)
    run_ids = {r.run_id for r in dead_runs}
    for rid, brs in tagged_bridges().items():
        if rid not in live:
            run_ids.add(rid)
            done += [f"run {rid}: bridge {b}" for b in brs]
    for alias, links in tagged_links().items():
        rid = alias[len(registry.LINK_ALIAS_PREFIX):]
        if rid not in live:
            run_ids.add(rid)
            done += [f"run {rid}: link {i}" for i in links]
    from testbed import cgroups
    for base in cgroups.run_bases():
        rid = base[len(cgroups.PREFIX):]
        if rid not in live:
            run_ids.add(rid)
            done.append(f"run {rid}: cgroup {base}")
    if not dry_run:
        for rid in sorted(run_ids):
            remove_tagged(rid)
            cgroups.remove_base(cgroups.PREFIX + rid)
        for rec in dead_runs:
            if rec.owns_run_dir and rec.run_dir:
                shutil.rmtree(rec.run_dir, ignore_errors=True)
            rec.remove()
    return done
