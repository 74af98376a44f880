"""Run synchronous MANO code in modelled time: a baton between the SimPy loop and workers.

``Baton.call(env, fn, *args)`` (a SimPy process body, used with ``yield from``) runs
``fn(*args)`` on a worker thread running no other call (a worker's thread, once its call
has ended, takes the next one). Exactly one of the SimPy loop and the workers runs at any
moment: the loop hands the baton to a worker and waits until the worker hands
it back. A worker hands it back when it needs modelled time (``Baton.sleep(seconds)``: a
SimPy timeout is scheduled, and when it fires the loop hands the baton to that worker
again) or when ``fn`` returns. So MANO work happens at modelled instants, the loop keeps
stepping other processes while an operation waits, nothing runs concurrently and a run is
deterministic.

Outside a worker (set-up and tear-down code calling the driver directly on the loop's
thread) ``sleep`` takes no modelled time.

``close()`` ends the workers still waiting: their ``sleep`` raises ``NfviClosed`` so they
unwind, and the loop's thread waits for each to finish; idle workers (a worker thread runs
one call after another) end too.

A worker must not block on anything another worker holds across modelled time (a lock
taken before a driver call that waits): the holder cannot run until the loop resumes it,
and the loop waits for the blocked worker. Such a deadlock is reported, not hung: when a
worker has neither waited nor finished after ``stall_s`` seconds of wall time, the loop
raises ``NfviStalled``.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future

import simpy

from mano.errors import InfrastructureError
from testbed.errors import TestbedError

STALL_S = 300.0      # wall seconds a worker may run between two modelled waits


class NfviClosed(InfrastructureError):
    """The simulated NFVI closed while an operation waited for modelled time."""


class NfviStalled(TestbedError):
    """A worker neither waited for modelled time nor finished within ``stall_s``."""


class _Worker:
    """A worker thread and the two events that pass the baton (see the module doc). It
    runs one call at a time (``job``) and, once the call has ended, waits for the next
    one: a thread is started per worker, not per call (starting one cost more than most
    calls' own work)."""

    def __init__(self, baton: Baton):
        self.baton = baton
        self.job: tuple | None = None     # (fn, args, fut, done) of the call it runs
        self._go = threading.Event()      # set: the worker may run
        self._back = threading.Event()    # set: the loop may run
        self.thread = threading.Thread(target=self._main, name="simnfvi-call", daemon=True)
        self.thread.start()

    def resume(self) -> None:
        """On the loop's thread: let the worker run until it hands the baton back."""
        fn = self.job[0] if self.job is not None else None
        self._back.clear()
        self._go.set()
        if not self._back.wait(self.baton.stall_s):
            raise NfviStalled(
                f"simulated NFVI: an operation ({getattr(fn, '__qualname__', fn)}) "
                f"neither finished nor waited for modelled time in {self.baton.stall_s:g} s "
                f"of wall time: it is blocked on something only another operation can "
                f"release (a lock held across a driver call that takes modelled time?)")

    def pause(self) -> None:
        """On the worker's thread: hand the baton back and wait to be resumed."""
        self._go.clear()
        self._back.set()
        self._go.wait()

    def _main(self) -> None:
        self.baton._local.worker = self
        while True:
            self._go.wait()
            if self.job is None:           # ended by close() while idle
                return
            fn, args, fut, done = self.job
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                fut.set_exception(exc)
            finally:
                self.job = None
                baton = self.baton
                baton._running.discard(self)
                if not baton.closed:
                    baton._idle.append(self)
                # the loop's thread is blocked in resume(): scheduling on env is safe here
                done.succeed()
                self._go.clear()
                self._back.set()
            if self.baton.closed:
                return


class Baton:
    """The baton of one simulated NFVI (see the module docstring)."""

    def __init__(self, stall_s: float = STALL_S):
        self.stall_s = stall_s
        self._local = threading.local()
        self._running: set[_Worker] = set()      # running a call
        self._paused: dict[_Worker, None] = {}   # insertion order: deterministic close
        self._idle: list[_Worker] = []           # waiting for a call
        self.closed = False

    def call(self, env: simpy.Environment, fn, *args):
        """``fut = yield from baton.call(env, fn, *args)``: ``fn(*args)`` in modelled time;
        ``fut`` is a finished ``concurrent.futures.Future``."""
        fut: Future = Future()
        if self.closed:
            fut.set_exception(NfviClosed("the simulated NFVI is closed"))
            return fut
        done = env.event()
        w = self._idle.pop() if self._idle else _Worker(self)
        w.job = (fn, args, fut, done)
        self._running.add(w)
        w.resume()
        yield done
        return fut

    def in_worker(self) -> bool:
        """Whether the calling thread is a worker (so ``sleep`` takes modelled time)."""
        return getattr(self._local, "worker", None) is not None

    def sleep(self, env: simpy.Environment, seconds: float) -> None:
        """Let ``seconds`` of modelled time pass for the calling worker (no-op outside one
        or for ``seconds <= 0``). Raises ``NfviClosed`` if the NFVI closed meanwhile."""
        w = getattr(self._local, "worker", None)
        if w is None or seconds <= 0:
            return
        if self.closed:
            raise NfviClosed("the simulated NFVI is closed")
        ev = env.timeout(seconds)
        ev.callbacks.append(lambda _ev: self._wake(w))
        self._paused[w] = None
        w.pause()
        if self.closed:
            raise NfviClosed("the simulated NFVI closed while an operation waited")

    def _wake(self, w: _Worker) -> None:
        if w in self._paused:          # not woken already (by close)
            del self._paused[w]
            w.resume()

    def active(self) -> int:
        """How many calls have not finished (running or waiting for modelled time)."""
        return len(self._running)

    def close(self) -> None:
        """End every worker that waits for modelled time (on the loop's thread)."""
        self.closed = True
        while self._paused:
            w = next(iter(self._paused))
            self._wake(w)
        for w in list(self._running):
            w.thread.join(5)
        idle, self._idle = self._idle, []
        for w in idle:          # job None: the thread ends
            w._go.set()
            w.thread.join(5)
