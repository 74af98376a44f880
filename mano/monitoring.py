"""Monitoring: a small time-series store and a poller of VNF instance metrics.

All samples carry times from one clock (``time.monotonic`` by default, injectable), so
infrastructure and service metrics line up. Series are keyed by a metric name and a label
tuple, e.g. ``("cpu_util", (("instance", "fw1"), ("ns", "web")))``.

Per VNF instance, at each poll ``t`` after the first, the ``Monitor`` records (``t0`` is the
instance's previous poll, counters are the driver's ``InstanceMetrics``):

- ``cpu_cores``: CPU cores used, ``(cpu_seconds(t) - cpu_seconds(t0)) / (t - t0)``, from
  cgroup CPU accounting;
- ``cpu_util``: the fraction of the instance's vCPU quota used, ``cpu_cores / vcpu`` where
  ``vcpu`` is the flavour's CPU quota in cores (the VNFD's ``vdu.flavour.vcpu``, as
  allocated). 0 is idle, 1 is the whole quota (the cgroup throttles there); a reading may
  exceed 1 by a few percent when the poll and the scheduler's quota period do not line up.
  Not clipped. Scaling thresholds on ``cpu_util`` are therefore in the same unit for
  every VNF, whatever its flavour;
- ``packets_rate`` and ``bytes_rate``: packets/s and bytes/s forwarded by the VNF program
  over the same interval;
- ``alive``: 1 if the program is running (and, where the NFVI can tell, not hung), else 0
  (recorded at every poll, the first too,
  and at once, outside the schedule, when the NFVI pushes an instance's death:
  ``Monitor.mark_down``).

Per NS, whoever measures the data path records ``latency_ms`` and ``loss_pct`` with
``record``.
"""
from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import NamedTuple

from mano.errors import MANOError

log = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]
FRESH_POLL_S = 0.1   # a new instance is read this often ...
FRESH_FOR_S = 0.5    # ... for this long after its first reading (its first rates)


def labels_of(**kw: str) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in kw.items()))


class TimeSeriesStore:
    """Append-only, in memory, bounded per series; safe across threads."""

    def __init__(self, max_points: int = 100_000):
        self.max_points = max_points
        self._data: dict[tuple[str, Labels], tuple[list[float], list[float]]] = \
            defaultdict(lambda: ([], []))
        self._lock = threading.Lock()

    def record(self, metric: str, labels: Labels, t: float, value: float) -> None:
        with self._lock:
            ts, vs = self._data[(metric, labels)]
            if ts and t < ts[-1]:
                i = bisect.bisect_right(ts, t)
                ts.insert(i, t)
                vs.insert(i, value)
            else:
                ts.append(t)
                vs.append(value)
            if len(ts) > self.max_points:
                del ts[: len(ts) - self.max_points]
                del vs[: len(vs) - self.max_points]

    def series(self, metric: str, since: float | None = None,
               **match: str) -> dict[Labels, list[tuple[float, float]]]:
        """Every series of ``metric`` whose labels include ``match``, as (t, value) lists in
        time order; with ``since``, only the points at ``t > since`` (found by bisection, so
        a caller that follows a long series pays only for what is new)."""
        want = {(k, str(v)) for k, v in match.items()}
        out = {}
        with self._lock:
            for (m, lb), (ts, vs) in self._data.items():
                if m != metric or not want <= set(lb):
                    continue
                i = 0 if since is None else bisect.bisect_right(ts, since)
                out[lb] = list(zip(ts[i:], vs[i:]))
        return out

    def latest(self, metric: str, **match: str) -> float | None:
        best = None
        for pts in self.series(metric, **match).values():
            if pts and (best is None or pts[-1][0] > best[0]):
                best = pts[-1]
        return None if best is None else best[1]

    def window(self, metric: str, since: float, **match: str) -> list[float]:
        """Values of matching series recorded at or after ``since``."""
        return [v for pts in self.series(metric, **match).values() for t, v in pts if t >= since]

    def metrics(self) -> list[str]:
        with self._lock:
            return sorted({m for m, _ in self._data})


class Watched(NamedTuple):
    """One instance the ``Monitor`` polls: its id, the labels of its series (e.g. ns, vnf)
    and its flavour's CPU quota in cores (``None``: unknown, then no ``cpu_util``)."""

    instance_id: str
    labels: dict[str, str]
    vcpu: float | None


class Monitor:
    """Polls ``driver.instance_metrics`` every ``interval`` s for the instances
    ``instances()`` names (``Watched`` values, or ``(id, labels, vcpu)`` tuples) and records
    the metrics listed in the module docstring into ``store``, stamped with ``clock()``.
    An instance whose metrics cannot be read (it went away between listing and reading)
    is skipped for that poll."""

    def __init__(self, driver, store: TimeSeriesStore,
                 instances: Callable[[], Iterable[tuple[str, dict, float | None]]],
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.driver, self.store, self.instances = driver, store, instances
        self.interval, self.clock = interval, clock
        self._last: dict[str, tuple[float, float, int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self._fresh: dict[str, float] = {}   # new instance -> when it was first read
        self._kick = threading.Event()       # wakes the poller (a new instance, or stop)

    def poll_once(self, only: Iterable[str] | None = None) -> None:
        """Read every watched instance (or only those of ``only``) once and record its
        samples. An instance read for the first time has no rates yet: the poller reads it
        every ``FRESH_POLL_S`` for ``FRESH_FOR_S``, so that a new instance's first rates
        (e.g. when a scale-out's instance starts carrying its share) are known to that
        resolution, not a whole ``interval`` later."""
        with self._poll_lock:
            watched = list(self.instances())
            wanted = None if only is None else set(only)
            for iid, extra, vcpu in watched:
                if wanted is not None and iid not in wanted:
                    continue
                self._read(iid, extra, vcpu)
            if wanted is None:
                # instances no longer watched (removed) leave no state behind
                keep = {w[0] for w in watched}
                for iid in [i for i in self._last if i not in keep]:
                    del self._last[iid]
                for iid in [i for i in self._fresh if i not in keep]:
                    del self._fresh[iid]

    def _read(self, iid: str, extra: dict, vcpu: float | None) -> None:
        try:
            m = self.driver.instance_metrics(iid)
        except MANOError:
            return  # the instance went away between listing and reading
        t = self.clock()
        lb = labels_of(instance=iid, **extra)
        self.store.record("alive", lb, t, 1.0 if m.alive else 0.0)
        prev = self._last.get(iid)
        self._last[iid] = (t, m.cpu_seconds, m.packets, m.bytes)
        if prev is None:
            self._fresh[iid] = time.monotonic()
            self._kick.set()
        if prev is None or t <= prev[0]:
            return
        dt = t - prev[0]
        cores = max(0.0, (m.cpu_seconds - prev[1]) / dt)
        self.store.record("cpu_cores", lb, t, cores)
        if vcpu:
            self.store.record("cpu_util", lb, t, cores / vcpu)
        self.store.record("packets_rate", lb, t, max(0.0, (m.packets - prev[2]) / dt))
        self.store.record("bytes_rate", lb, t, max(0.0, (m.bytes - prev[3]) / dt))

    def mark_down(self, instance_id: str) -> bool:
        """Record ``alive`` = 0 for a watched instance now, outside the poll schedule (the
        NFVI told of its death: healing need not wait for the next poll). No rates are
        recorded (an interval of a few ms would make them noise). Returns False when the
        instance is not watched."""
        for iid, extra, _vcpu in list(self.instances()):
            if iid == instance_id:
                self.store.record("alive", labels_of(instance=iid, **extra), self.clock(), 0.0)
                return True
        return False

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_full = time.monotonic() + self.interval
        while True:
            now = time.monotonic()
            wait = next_full - now
            with self._poll_lock:
                for iid in [i for i, t0 in self._fresh.items() if now - t0 > FRESH_FOR_S]:
                    del self._fresh[iid]
                fresh = list(self._fresh)
            if fresh:
                wait = min(wait, FRESH_POLL_S)
            woken = self._kick.wait(max(0.0, wait))
            self._kick.clear()
            if self._stop.is_set():
                return
            if woken:
                continue   # a new instance was read: wait again, FRESH_POLL_S for it
            try:
                if time.monotonic() >= next_full:
                    next_full += self.interval
                    if next_full <= time.monotonic():   # fell behind: no burst of polls
                        next_full = time.monotonic() + self.interval
                    self.poll_once()
                else:
                    self.poll_once(only=fresh)
            except Exception:   # a bug here must not end monitoring for the whole run
                log.exception("monitor: poll failed")

    @property
    def running(self) -> bool:
        """Whether the poller was started and not stopped."""
        return self._thread is not None and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(2)
