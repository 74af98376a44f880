"""The baton that runs synchronous MANO code in modelled time: one runner at a time, work at
the modelled instants, errors through the future, workers ended on close."""
from __future__ import annotations

import threading

import pytest
import simpy

from testbed.nfvi.simulated.baton import Baton, NfviClosed, NfviStalled


def test_work_takes_modelled_time_while_other_processes_go_on():
    """A call that sleeps 1 s finishes at t = 1; a ticking process runs meanwhile, and the
    order of everything is fixed."""
    env, baton, log = simpy.Environment(), Baton(), []

    def op():
        log.append(("op start", env.now))
        baton.sleep(env, 1.0)
        log.append(("op slept", env.now))
        baton.sleep(env, 0.5)
        return "done"

    def ticker():
        for _ in range(4):
            yield env.timeout(0.4)
            log.append(("tick", env.now))

    def caller():
        fut = yield from baton.call(env, op)
        log.append(("result", env.now, fut.result()))

    env.process(ticker())
    env.process(caller())
    env.run()
    rounded = [(e[0], round(e[1], 9), *e[2:]) for e in log]
    assert rounded == [("op start", 0), ("tick", 0.4), ("tick", 0.8), ("op slept", 1.0),
                       ("tick", 1.2), ("result", 1.5, "done"), ("tick", 1.6)]


def test_two_calls_interleave_at_their_modelled_instants():
    """Two operations sleeping different times finish in modelled-time order."""
    env, baton, done = simpy.Environment(), Baton(), []

    def op(name, secs):
        baton.sleep(env, secs)
        done.append((name, env.now))

    def caller(name, secs):
        yield from baton.call(env, op, name, secs)

    env.process(caller("slow", 2.0))
    env.process(caller("fast", 0.5))
    env.run()
    assert done == [("fast", 0.5), ("slow", 2.0)]


def test_an_exception_reaches_the_caller_through_the_future():
    """What the work raises is the future's exception; the loop goes on."""
    env, baton, got = simpy.Environment(), Baton(), []

    def op():
        baton.sleep(env, 0.1)
        raise ValueError("boom")

    def caller():
        fut = yield from baton.call(env, op)
        got.append(fut.exception())

    env.process(caller())
    env.run()
    assert isinstance(got[0], ValueError) and str(got[0]) == "boom"


def test_sleep_outside_a_call_takes_no_time():
    """Code on the loop's own thread (set-up, tear-down) sleeps no modelled time."""
    env, baton = simpy.Environment(), Baton()
    baton.sleep(env, 5.0)
    assert env.now == 0 and not baton.in_worker()


def test_close_ends_a_worker_waiting_for_modelled_time():
    """Closing while an operation waits makes its sleep raise NfviClosed; the thread ends."""
    env, baton, seen = simpy.Environment(), Baton(), []

    def op():
        try:
            baton.sleep(env, 100.0)
        except NfviClosed as exc:
            seen.append(str(exc))
            raise

    def caller():
        yield from baton.call(env, op)

    env.process(caller())
    env.run(until=1.0)
    baton.close()
    assert seen and "closed" in seen[0]
    assert baton.active() == 0


def test_a_worker_blocked_by_a_lock_held_across_modelled_time_is_reported():
    """A worker waiting for a lock another worker holds while it waits for modelled time
    can never run: the loop raises NfviStalled instead of hanging; close() unwinds both."""
    env, baton = simpy.Environment(), Baton(stall_s=0.3)
    lock = threading.Lock()

    def holder():
        with lock:
            baton.sleep(env, 1.0)

    def blocked():
        with lock:
            return "got it"

    def call(fn, delay):
        yield env.timeout(delay)
        yield from baton.call(env, fn)

    env.process(call(holder, 0.0))
    env.process(call(blocked, 0.5))
    with pytest.raises(NfviStalled, match="blocked on something only another operation"):
        env.run()
    baton.close()
    assert baton.active() == 0


def test_a_worker_thread_takes_the_next_call_and_ends_on_close():
    """Calls one after another run on one thread; calls waiting at the same time each on
    its own; close() ends the idle worker threads."""
    env, baton = simpy.Environment(), Baton()
    seen: list[tuple[str, int]] = []

    def op(name, secs):
        seen.append((name, threading.get_ident()))
        baton.sleep(env, secs)

    def caller(name, secs, delay):
        yield env.timeout(delay)
        yield from baton.call(env, op, name, secs)

    for name, secs, delay in (("a", 1.0, 0.0), ("b", 1.0, 2.0), ("c", 1.0, 2.5)):
        env.process(caller(name, secs, delay))
    env.run()
    ids = dict(seen)
    assert ids["a"] == ids["b"] != ids["c"]     # b after a ended; c while b waited
    threads = [t for t in threading.enumerate() if t.ident in ids.values()]
    assert len(threads) == 2 and baton.active() == 0
    baton.close()
    assert not any(t.is_alive() for t in threads)
