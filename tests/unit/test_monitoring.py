"""The time-series store and the metrics poller (with a fake driver: pure logic)."""
from __future__ import annotations

import itertools
import time

import pytest

from mano import monitoring
from mano.errors import NotFoundError
from mano.monitoring import Monitor, TimeSeriesStore, Watched, labels_of
from mano.nfvi import InstanceMetrics


def test_store_keeps_order_filters_by_labels_and_bounds_memory():
    """Out-of-order points are placed in time order; label filters select series; old points
    beyond the bound are dropped."""
    s = TimeSeriesStore(max_points=3)
    a, b = labels_of(instance="fw1", ns="x"), labels_of(instance="fw2", ns="x")
    for t, v in [(1, 10), (3, 30), (2, 20), (4, 40)]:
        s.record("cpu_util", a, t, v)
    s.record("cpu_util", b, 5, 99)
    assert s.series("cpu_util", instance="fw1")[a] == [(2, 20), (3, 30), (4, 40)]
    assert set(s.series("cpu_util", ns="x")) == {a, b}
    assert s.latest("cpu_util", ns="x") == 99
    assert sorted(s.window("cpu_util", 3, ns="x")) == [30, 40, 99]


class FakeDriver:
    def __init__(self):
        self.cpu, self.pk = 0.0, 0
        self.gone: set[str] = set()

    def instance_metrics(self, iid):
        if iid in self.gone:
            raise NotFoundError(f"no instance {iid!r}")
        return InstanceMetrics(iid, 0.0, self.cpu, self.pk, self.pk * 100, True)


def test_monitor_turns_counters_into_rates_on_one_clock():
    """Two polls 2 s apart with 0.1 CPU-second and 1000 packets between them give
    cpu_cores 0.05, cpu_util 0.2 of a 0.25-vCPU quota and packets_rate 500, stamped with the
    injected clock."""
    now = [10.0]
    drv, store = FakeDriver(), TimeSeriesStore()
    mon = Monitor(drv, store, lambda: [Watched("fw1", {"ns": "web"}, 0.25)],
                  clock=lambda: now[0])
    mon.poll_once()
    drv.cpu, drv.pk, now[0] = 0.1, 1000, 12.0
    mon.poll_once()
    lb = labels_of(instance="fw1", ns="web")
    assert store.series("cpu_cores")[lb] == [(12.0, pytest.approx(0.05))]
    assert store.series("cpu_util")[lb] == [(12.0, pytest.approx(0.2))]
    assert store.series("packets_rate")[lb] == [(12.0, 500.0)]
    assert store.series("alive")[lb] == [(10.0, 1.0), (12.0, 1.0)]


def test_cpu_util_is_relative_to_each_instances_quota():
    """The same cores used are a larger cpu_util on a smaller quota; without a known quota
    only cpu_cores is recorded."""
    now = [0.0]
    drv, store = FakeDriver(), TimeSeriesStore()
    watched = [("big", {}, 1.0), ("small", {}, 0.25), ("unknown", {}, None)]
    mon = Monitor(drv, store, lambda: watched, clock=lambda: now[0])
    mon.poll_once()
    drv.cpu, now[0] = 0.5, 2.0
    mon.poll_once()
    assert store.latest("cpu_util", instance="big") == pytest.approx(0.25)
    assert store.latest("cpu_util", instance="small") == pytest.approx(1.0)
    assert store.latest("cpu_util", instance="unknown") is None
    assert store.latest("cpu_cores", instance="unknown") == pytest.approx(0.25)


def test_monitor_skips_an_instance_that_went_away_and_forgets_removed_ones():
    """An instance whose metrics raise NotFoundError is skipped while the others are
    recorded; once no longer watched, its last counters are dropped."""
    now = [0.0]
    drv, store = FakeDriver(), TimeSeriesStore()
    watched = [Watched("a", {}, 1.0), Watched("b", {}, 1.0)]
    mon = Monitor(drv, store, lambda: list(watched), clock=lambda: now[0])
    mon.poll_once()
    drv.gone.add("b")
    now[0] = 1.0
    mon.poll_once()
    assert store.latest("alive", instance="a") == 1.0
    assert [t for t, _ in store.series("alive", instance="b")[labels_of(instance="b")]] == [0.0]
    watched.pop()
    mon.poll_once()
    assert set(mon._last) == {"a"}


def test_mark_down_records_a_death_at_once_with_the_instances_labels():
    """A pushed death is an alive=0 sample stamped now, labelled like the polled ones, with
    no rate samples; an instance not watched records nothing."""
    store, now = TimeSeriesStore(), [10.0]
    mon = Monitor(None, store, lambda: [Watched("fw1", {"ns": "web"}, 1.0)],
                  clock=lambda: now[0])
    now[0] = 10.25
    assert mon.mark_down("fw1") is True
    assert store.series("alive") == {labels_of(instance="fw1", ns="web"): [(10.25, 0.0)]}
    assert store.series("packets_rate") == {}
    assert mon.mark_down("other") is False
    assert not mon.running


def test_a_new_instance_is_read_often_at_first_so_its_first_rates_come_soon():
    """With a 10 s poll interval, a new instance read once is read every FRESH_POLL_S for
    FRESH_FOR_S: rate samples come within a fraction of a second, then stop."""

    class Counting:
        n = 0

        def instance_metrics(self, iid):
            self.n += 100
            return InstanceMetrics(iid, 0.0, 0.0, self.n, self.n * 100, True)

    store = TimeSeriesStore()
    mon = Monitor(Counting(), store, lambda: [Watched("new", {"ns": "web"}, 1.0)],
                  interval=10.0)
    mon.start()
    try:
        mon.poll_once(only=["new"])
        time.sleep(monitoring.FRESH_FOR_S + 0.4)
    finally:
        mon.stop()
    rates = store.series("packets_rate")[labels_of(instance="new", ns="web")]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(rates)]
    assert 2 <= len(rates) <= monitoring.FRESH_FOR_S / monitoring.FRESH_POLL_S + 2
    assert all(g < 0.3 for g in gaps)
