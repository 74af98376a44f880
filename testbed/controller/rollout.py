"""Sending Changes to the switches stage by stage: make before break across switches.

A switch carries out the messages of its OpenFlow connection in order, but nothing orders
two switches: ovs-vswitchd serves its bridges' connections one after the other in its main
loop, so of two messages written to two switches either may be carried out first. A
classifier switched to a new path before another switch holds that path's transit flows,
or a path's flows deleted while packets are still on it, drop packets: after a
fast-failover switch-over, the controller's reroute lost a second burst of a chain's
packets that way (5-10 ms at 2,000 packets/s, ``bench/outage.py``).

``Rollouts`` sends each Changes' stages (``Changes.stages()``: make, switch, break) one at a
time. A stage's batches go to their switches, each followed by a barrier request, and the
next stage is sent once every barrier is answered (or its switch disconnected). Before the
break stage it waits ``drain_s`` more after the switch stage was answered, so that packets
already on the old paths leave them before their flows go (a Changes submitted meanwhile
cuts the wait short). Rollouts are carried out one at a time, in the order they were
submitted: a later one may add again a flow or group an earlier one deletes.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LOG = logging.getLogger("testbed.controller")

# Seconds between the switch stage being carried out and the old paths' deletion (config
# key "drain_s"). A packet crosses a path's switches in well under 10 ms here (a chain's
# median one-way latency, VNFs included, is about 4.5 ms); 50 ms leaves room for a busy host.
DRAIN_S = 0.05
# Seconds a stage waits for a barrier reply before it goes on without it (logged).
BARRIER_TIMEOUT_S = 5.0


@dataclass
class Rollout:
    """One Changes being sent. ``stages`` is ``Encoder.encode``'s list of ``(stage,
    batches)``. ``started`` is set once the first stage is written, ``live`` once the make
    and switch stages are carried out on every switch they went to (the new state forwards
    packets; at once when there are none), ``done`` once every stage is; ``sent`` maps a
    stage to the ``time.monotonic()`` second its last batch was written; ``dpids`` are the
    switches written to."""

    reason: str
    stages: list
    on_live: Callable[[Rollout], object] | None = None
    started: threading.Event = field(default_factory=threading.Event)
    live: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    sent: dict[str, float] = field(default_factory=dict)
    dpids: set[int] = field(default_factory=set)

    @property
    def mods(self) -> int:
        """The flow and group mods of all stages."""
        return sum(len(b.ops) for _, batches in self.stages for b in batches)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every stage is carried out; False if ``timeout`` s passed first."""
        return self.done.wait(timeout)


class Rollouts:
    """Carries out submitted rollouts one at a time on a thread of its own.

    ``write(batch)`` writes a ``Batch`` to its switch and returns False when the switch is
    not connected (it gets its whole state when it connects); ``barrier(dpid)`` sends a
    barrier request and returns an event set by its reply or by the switch's
    disconnection (None if the switch is not connected). ``drain_s``: see the module."""

    def __init__(self, write: Callable[[object], bool],
                 barrier: Callable[[int], threading.Event | None], *,
                 drain_s: float = DRAIN_S, barrier_timeout_s: float = BARRIER_TIMEOUT_S):
        if drain_s < 0:
            raise ValueError(f"drain_s must be >= 0 seconds, got {drain_s}")
        self.write, self.barrier = write, barrier
        self.drain_s, self.barrier_timeout_s = drain_s, barrier_timeout_s
        self._queue: collections.deque[Rollout] = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rollouts", daemon=True)
        self._thread.start()

    def submit(self, stages: list, reason: str = "",
               on_live: Callable[[Rollout], object] | None = None) -> Rollout:
        """Queue ``stages`` (``Encoder.encode``'s result) after the rollouts already
        submitted; ``on_live(rollout)`` is called on the rollouts' thread once it is live.
        Nothing to send (no stages) is done at once (``on_live`` called here) and queues
        nothing: it must not cut another rollout's drain short (the port status of a
        link's second end changes nothing and comes right after the first).
        Raises RuntimeError after ``close``."""
        r = Rollout(reason, stages, on_live)
        with self._cv:
            if self._closed:
                raise RuntimeError("the rollouts are closed")
            if stages:
                self._queue.append(r)
                self._cv.notify_all()
                return r
        r.started.set()
        self._live(r)
        r.done.set()
        return r

    def idle(self) -> bool:
        """Whether every submitted rollout is done."""
        with self._cv:
            return not self._queue

    def close(self) -> None:
        """Stop after the rollout being carried out; queued ones are dropped."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                r = self._queue[0]
            try:
                self._carry_out(r)
            except Exception:   # a broken rollout must not stop the ones after it
                LOG.exception("sending changes (%s) failed", r.reason)
            finally:
                with self._cv:
                    self._queue.popleft()
                r.started.set()
                r.live.set()
                r.done.set()

    def _carry_out(self, r: Rollout) -> None:
        switched = None
        for stage, batches in r.stages:
            if stage == "break":
                if not r.live.is_set():
                    self._live(r)
                if switched is not None:
                    self._drain(switched)
            self._stage(r, stage, batches)
            if stage == "switch":
                switched = time.monotonic()
        if not r.live.is_set():
            self._live(r)

    def _live(self, r: Rollout) -> None:
        r.live.set()
        if r.on_live is not None:
            try:
                r.on_live(r)
            except Exception:   # a report must not stop the changes (the break stage)
                LOG.exception("reporting changes (%s) live failed", r.reason)

    def _drain(self, since: float) -> None:
        """Wait until ``drain_s`` after ``since``, or until another rollout is queued."""
        deadline = since + self.drain_s
        with self._cv:
            while len(self._queue) < 2 and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cv.wait(left)

    def _stage(self, r: Rollout, stage: str, batches: list) -> None:
        written = [b.dpid for b in batches if self.write(b)]
        r.sent[stage] = time.monotonic()
        r.started.set()
        r.dpids.update(written)
        waits = [(d, ev) for d in written if (ev := self.barrier(d)) is not None]
        deadline = time.monotonic() + self.barrier_timeout_s
        for dpid, ev in waits:
            if not ev.wait(max(0.0, deadline - time.monotonic())):
                LOG.warning("no barrier reply from dpid %d within %.1f s after the %s stage "
                            "(%s); going on", dpid, self.barrier_timeout_s, stage, r.reason)
