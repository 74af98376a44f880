"""The time-series store and the metrics poller (with a fake driver: pure logic)."""
from __future__ import annotations

import csv

from mano.monitoring import Monitor, TimeSeriesStore, labels_of
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


def test_store_writes_tidy_csv(tmp_path):
    """Every point becomes one row: time, metric, labels, value."""
    s = TimeSeriesStore()
    s.record("alive", labels_of(instance="fw1"), 1.5, 1.0)
    s.record("alive", labels_of(instance="fw1"), 2.5, 0.0)
    assert s.to_csv(tmp_path / "m.csv") == 2
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert rows[1] == {"time": "2.500000", "metric": "alive", "labels": "instance=fw1",
                       "value": "0.0"}


class FakeDriver:
    def __init__(self):
        self.cpu, self.pk = 0.0, 0

    def instance_metrics(self, iid):
        return InstanceMetrics(iid, 0.0, self.cpu, self.pk, self.pk * 100, True)


def test_monitor_turns_counters_into_rates_on_one_clock():
    """Two polls 2 s apart with 1 CPU-second and 1000 packets between them give cpu_util 0.5
    and packets_rate 500, stamped with the injected clock."""
    now = [10.0]
    drv, store = FakeDriver(), TimeSeriesStore()
    mon = Monitor(drv, store, lambda: [("fw1", {"ns": "web"})], clock=lambda: now[0])
    mon.poll_once()
    drv.cpu, drv.pk, now[0] = 1.0, 1000, 12.0
    mon.poll_once()
    lb = labels_of(instance="fw1", ns="web")
    assert store.series("cpu_util")[lb] == [(12.0, 0.5)]
    assert store.series("packets_rate")[lb] == [(12.0, 500.0)]
    assert store.series("alive")[lb] == [(10.0, 1.0), (12.0, 1.0)]
