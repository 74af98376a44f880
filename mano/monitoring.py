"""Monitoring: a small time-series store and a poller of VNF instance metrics.

All samples carry times from one clock (``time.monotonic`` by default, injectable), so
infrastructure and service metrics line up. Series are keyed by a metric name and a label
tuple, e.g. ``("cpu_util", (("instance", "fw1"), ("ns", "web")))``.

Per VNF instance the ``Monitor`` records ``cpu_util`` (cores, from cgroup CPU accounting),
``packets_rate`` and ``bytes_rate`` (from the VNF program's counters) and ``alive`` (1/0).
Per NS, whoever measures probes records ``latency_ms`` and ``loss_pct`` with ``record``.
"""
from __future__ import annotations

import bisect
import csv
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]


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

    def series(self, metric: str, **match: str) -> dict[Labels, list[tuple[float, float]]]:
        """Every series of ``metric`` whose labels include ``match``."""
        want = {(k, str(v)) for k, v in match.items()}
        with self._lock:
            return {lb: list(zip(ts, vs)) for (m, lb), (ts, vs) in self._data.items()
                    if m == metric and want <= set(lb)}

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

    def to_csv(self, path) -> int:
        """Write every point as a tidy row: time, metric, labels (k=v;...), value."""
        n = 0
        with self._lock:
            items = [(m, lb, list(zip(ts, vs))) for (m, lb), (ts, vs) in self._data.items()]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "metric", "labels", "value"])
            for m, lb, pts in sorted(items):
                lab = ";".join(f"{k}={v}" for k, v in lb)
                for t, v in pts:
                    w.writerow([f"{t:.6f}", m, lab, v])
                    n += 1
        return n


class Monitor:
    """Polls ``driver.instance_metrics`` for the instances ``instances()`` names."""

    def __init__(self, driver, store: TimeSeriesStore,
                 instances: Callable[[], Iterable[tuple[str, dict]]],
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.driver, self.store, self.instances = driver, store, instances
        self.interval, self.clock = interval, clock
        self._last: dict[str, tuple[float, float, int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> None:
        for iid, extra in list(self.instances()):
            try:
                m = self.driver.instance_metrics(iid)
            except Exception:
                continue  # the instance went away between listing and reading
            t = self.clock()
            lb = labels_of(instance=iid, **extra)
            self.store.record("alive", lb, t, 1.0 if m.alive else 0.0)
            prev = self._last.get(iid)
            self._last[iid] = (t, m.cpu_seconds, m.packets, m.bytes)
            if prev is None or t <= prev[0]:
                continue
            dt = t - prev[0]
            self.store.record("cpu_util", lb, t, max(0.0, (m.cpu_seconds - prev[1]) / dt))
            self.store.record("packets_rate", lb, t, max(0.0, (m.packets - prev[2]) / dt))
            self.store.record("bytes_rate", lb, t, max(0.0, (m.bytes - prev[3]) / dt))

    def forget(self, iid: str) -> None:
        self._last.pop(iid, None)

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
