"""What a run created, recorded so that it can be removed even after a crash.

Each run writes ``/run/testbed/<run-id>.json`` *before* it creates anything and keeps it up
to date. The record lists the OVS bridges, the root-namespace interfaces, the cgroups, and
the processes (pid plus kernel start time, so a recycled pid is never killed). On top of the
record, the things themselves carry the run's tag: bridges have
``external_ids:testbed-run=<run-id>``, root-namespace links the alias ``testbed:<run-id>``.
``testbed clean`` removes what belongs to runs whose owner process is gone, and nothing else.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REGISTRY_DIR = Path(os.environ.get("TESTBED_REGISTRY", "/run/testbed"))
LINK_ALIAS_PREFIX = "testbed:"
BRIDGE_TAG = "testbed-run"


def proc_start_time(pid: int) -> int | None:
    """The kernel start time of a process (clock ticks since boot); None if it has ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = data[data.rfind(")") + 2:].split()
    if fields and fields[0] in ("Z", "X"):
        return None  # a zombie has ended; only its parent's wait is missing
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


_SAVE_LOCK = threading.RLock()


@dataclass
class ProcRecord:
    pid: int
    start: int | None
    what: str


@dataclass
class RunRecord:
    run_id: str
    owner_pid: int
    owner_start: int | None
    created: float
    run_dir: str = ""
    owns_run_dir: bool = False    # a temporary folder of the run's own: removed with it
    bridges: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    processes: list[ProcRecord] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return REGISTRY_DIR / f"{self.run_id}.json"

    @classmethod
    def new(cls, run_id: str, run_dir: str, *, owns_run_dir: bool = False) -> RunRecord:
        pid = os.getpid()
        rec = cls(run_id, pid, proc_start_time(pid), time.time(), run_dir, owns_run_dir)
        rec.save()
        return rec

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        data = json.loads(path.read_text())
        procs = [ProcRecord(**p) for p in data.pop("processes", [])]
        return cls(processes=procs, **data)

    def save(self) -> None:
        """Write the record atomically. Threads of one run (operations, faults, the NFVI's
        watcher) save it concurrently: one at a time, each through a temporary file of its
        own (a shared one was renamed away under another thread: ENOENT)."""
        with _SAVE_LOCK:
            REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(asdict(self), indent=1))
            os.replace(tmp, self.path)

    def add_process(self, pid: int, what: str) -> None:
        with _SAVE_LOCK:
            self.processes.append(ProcRecord(pid, proc_start_time(pid), what))
            self.save()

    def relabel_processes(self, labels: dict[int, str]) -> None:
        """Change what the record says processes are (``{pid: what}``; a spare host taken),
        in one save."""
        with _SAVE_LOCK:
            for p in self.processes:
                p.what = labels.get(p.pid, p.what)
            self.save()

    def forget_process(self, pid: int) -> None:
        with _SAVE_LOCK:
            self.processes = [p for p in self.processes if p.pid != pid]
            self.save()

    def owner_alive(self) -> bool:
        return (self.owner_start is not None
                and proc_start_time(self.owner_pid) == self.owner_start)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def live_runs() -> list[RunRecord]:
    """Records of runs whose owner process still runs."""
    return [r for r in all_runs() if r.owner_alive()]


def all_runs() -> list[RunRecord]:
    if not REGISTRY_DIR.is_dir():
        return []
    out = []
    for p in sorted(REGISTRY_DIR.glob("*.json")):
        try:
            out.append(RunRecord.load(p))
        except (OSError, ValueError, TypeError):
            continue
    return out


def kill_recorded(procs: list[ProcRecord], grace: float = 2.0) -> list[int]:
    """SIGTERM then SIGKILL the recorded processes that are still the same processes."""
    alive = [p for p in procs if p.start is not None and proc_start_time(p.pid) == p.start]
    for p in alive:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = [p for p in alive if proc_start_time(p.pid) == p.start]
        if not alive:
            break
        time.sleep(0.02)
    for p in alive:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [p.pid for p in procs]
