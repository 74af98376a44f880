"""Spare hosts: a small, bounded pool of hosts started ahead for ``Emulation.add_host``.

A run-time host (a VNF instance) needs a shell in a new network namespace (``mnexec`` and
bash) and, for a VNF, its program's interpreter start-up: about 40 ms of CPU per instance
that the profile of an NS instantiation found on its critical path, three times over on a
2-core machine (bench/instantiate.py). A ``SparePool`` keeps up to ``size`` hosts started
ahead, each with an optional program already started in it (``prestart``: e.g. a VNF
program that imported its code and waits for its arguments on stdin); ``add_host`` takes
one instead of starting a shell.

What a spare is: an ordinary host of the run without a name (``~sN``) and without
interfaces, in a cgroup of its own without limits (its shell and program are placed there as
they start, so a spare's memory is charged to it from the start, and moving processes
between cgroups, which took up to 24 ms on a busy machine, is off the instantiation's path).
When taken it gets the host's name, its cgroup is renamed for the host and given the host's
limits before the program gets its arguments, then its link and port are made.

Clean-up: a spare's shell and program are in the run record from the moment they exist
(``spare host ~sN`` and ``~sN:WHAT``, relabelled when taken), so `testbed clean` ends them
after a SIGKILL; ``Emulation.stop`` and ``Emulation.keep_spares(0)`` end them (the
namespace goes with its shell).

Refill: one background thread starts spares one at a time, only once no ``add_host`` has run
for ``idle_s`` seconds, so that filling the pool does not compete for the CPU with the
creates it is there to speed up.

Cost: per spare, one bash and, with a pre-started VNF program, one idle Python interpreter
(about 10 MB resident), one network namespace and one cgroup; no CPU while idle. The CPU of
its start-up (about 40 ms) is counted in the cgroup's usage, which the host inherits.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from testbed.cgroups import Cgroup
from testbed.emulator.hosts import FastHost
from testbed.errors import EmulationError

log = logging.getLogger(__name__)

SPARE_PREFIX = "~s"   # a spare's name; "~" is in no host or switch name of a topology


@dataclass
class Spare:
    name: str                 # the spare's own (the host is renamed when taken)
    host: FastHost
    what: str                 # the pre-started program's label
    program: subprocess.Popen | None = None
    cgroup: Cgroup | None = None


class SparePool:
    """The spare hosts of one emulation (see the module docstring).

    ``emu`` is the ``Emulation``: the pool records processes in its run record and
    registers pre-started programs with it (``_adopt_process``) so that they are stopped
    like any program of the run. Thread-safe."""

    def __init__(self, emu, idle_s: float = 0.1):
        self.emu = emu
        self.size = 0
        self.prestart: Callable[[FastHost], subprocess.Popen] | None = None
        self.what = "program"
        self.idle_s = idle_s
        self._ready: list[Spare] = []
        self._cond = threading.Condition()
        self._busy = 0                      # add_host calls running now
        self._quiet_at = 0.0                # monotonic time refills may start again
        self._closed = False
        self._names = itertools.count()
        self._thread: threading.Thread | None = None

    # ---- configuration -------------------------------------------------------------------
    def configure(self, size: int, prestart: Callable[[FastHost], subprocess.Popen] | None,
                  what: str) -> None:
        """Keep ``size`` spares (0: none; the spares there are ended now). ``prestart(host)``
        starts the spare's program (None: a shell only), labelled ``what``."""
        if size < 0:
            raise ValueError(f"spare hosts: size must be >= 0, not {size}")
        with self._cond:
            changed = (prestart, what) != (self.prestart, self.what)
            self.size, self.prestart, self.what = size, prestart, what
            # spares made for another prestart, or past the new size, go
            gone = self._ready if changed else self._ready[size:]
            self._ready = [] if changed else self._ready[:size]
            if size and self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._refill, name="spare-hosts",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()
        for s in gone:
            self._end(s)

    @property
    def ready(self) -> int:
        """How many spares are ready to be taken now."""
        with self._cond:
            return len(self._ready)

    def pids(self) -> list[int]:
        """Process ids of the spares' shells and programs."""
        with self._cond:
            return [p for s in self._ready
                    for p in (s.host.pid, s.program.pid if s.program else None) if p]

    # ---- use -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def activity(self):
        """Around an ``add_host``: no refill starts while it runs nor ``idle_s`` after."""
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._quiet_at = time.monotonic() + self.idle_s
                self._cond.notify_all()

    def take(self) -> Spare | None:
        """A ready spare (removed from the pool), or None. A spare whose shell or program
        has ended meanwhile is ended and skipped."""
        while True:
            with self._cond:
                if not self._ready:
                    return None
                s = self._ready.pop(0)
                self._cond.notify_all()
            if s.host.shell.poll() is None and (s.program is None or s.program.poll() is None):
                return s
            self._end(s)

    def close(self) -> None:
        """Stop refilling and end every spare (at the emulation's stop); raises
        ``EmulationError`` naming what could not be ended, after trying all."""
        with self._cond:
            self._closed = True
            self.size = 0
            gone, self._ready = self._ready, []
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(15)
        with self._cond:        # one the thread finished while we waited
            gone += self._ready
            self._ready = []
        failed = [f for s in gone for f in self._end(s)]
        if failed:
            raise EmulationError("spare hosts not ended: " + "; ".join(failed))

    # ---- the refill thread -------------------------------------------------------------
    def _wanted(self) -> bool:
        return not self._closed and len(self._ready) < self.size

    def _refill(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    wait = self._quiet_at - time.monotonic()
                    if self._wanted() and not self._busy and wait <= 0:
                        break
                    self._cond.wait(wait if wait > 0 and not self._busy else None)
                prestart, what = self.prestart, self.what
                name = f"{SPARE_PREFIX}{next(self._names)}"
            try:
                s = self._start(name, prestart, what)
            except Exception as exc:   # noqa: BLE001 - add_host starts hosts itself then
                log.warning("spare host %s not started: %s", name, exc)
                with self._cond:
                    self._cond.wait(1.0)      # no busy loop on a lasting failure
                continue
            with self._cond:
                keep = self._wanted() and (prestart, what) == (self.prestart, self.what)
                if keep:
                    self._ready.append(s)
            if not keep:
                self._end(s)

    def _start(self, name: str, prestart, what: str) -> Spare:
        emu = self.emu
        h = FastHost(name)
        emu._record.add_process(h.pid, f"spare host {name}")
        s = Spare(name, h, what)
        try:
            s.cgroup = emu.cgroup_manager().create(name, cpu=None, memory_mb=None)
            s.cgroup.add(h.pid)
            h.wait_ready()
            if prestart is not None:
                s.program = prestart(h)
                emu._adopt_process(s.program, f"{name}:{what}")
                s.cgroup.add(s.program.pid)
        except BaseException:
            self._end(s)
            raise
        return s

    def _end(self, s: Spare) -> list[str]:
        """End a spare that is no host of the run: its program, then its shell, then its
        cgroup. Returns what failed (each step is tried; what is left stays recorded)."""
        emu, failed = self.emu, []
        if s.program is not None:
            try:
                emu._stop_proc(s.program, "spare program")
            except (OSError, subprocess.SubprocessError) as exc:
                failed.append(f"spare {s.name} program {s.program.pid}: {exc}")
            if s.program.stdin is not None:
                with contextlib.suppress(OSError):
                    s.program.stdin.close()
        try:
            s.host.terminate()
        except OSError as exc:
            failed.append(f"spare {s.name} shell {s.host.pid}: {exc}")
        else:
            emu._record.forget_process(s.host.pid)
        if s.cgroup is not None:
            try:
                emu.cgroups.remove(s.name)
            except EmulationError as exc:
                failed.append(str(exc))
        for f in failed:
            log.warning("spare host not ended: %s", f)
        return failed
