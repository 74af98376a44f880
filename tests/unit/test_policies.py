"""Scaling and healing policies over a hand-filled time-series store (pure logic)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mano.descriptors import load_vnfd
from mano.monitoring import TimeSeriesStore, labels_of
from mano.policies import (
    POLICIES,
    Action,
    CompositePolicy,
    DataPathHealer,
    LivenessHealer,
    NoOpPolicy,
    Policy,
    PolicyContext,
    PolicyError,
    ThresholdScaler,
    make_policy,
)


def vnfd(lo=1, hi=3, step=1, mode="restart"):
    return SimpleNamespace(scaling=SimpleNamespace(min=lo, max=hi, step=step),
                           healing=SimpleNamespace(mode=mode))


def feed(store, metric, iid, points, ns="web", vnf="fw"):
    for t, v in points:
        store.record(metric, labels_of(instance=iid, ns=ns, vnf=vnf), t, v)


def ctx(store, now, instances=None, vnfds=None, chains=None):
    return PolicyContext(now=now, metrics=store,
                         ns={"web": instances if instances is not None else {"fw": ["fw-1"]}},
                         vnfds=vnfds or {"fw": vnfd()}, chains=chains or {})


def test_scale_out_only_after_a_whole_window_above_high():
    """One high sample, or a window mixing high and normal samples, does not scale; a window
    of high samples does, and the reason gives the numbers."""
    s, p = TimeSeriesStore(), ThresholdScaler(high=0.7, low=0.2, window_s=3.0)
    feed(s, "cpu_util", "fw-1", [(1, 0.5), (2, 0.5), (3, 0.9)])
    assert p.evaluate(ctx(s, 3.0)) == []           # 0.5 samples still in the window
    feed(s, "cpu_util", "fw-1", [(4, 0.9)])
    assert p.evaluate(ctx(s, 4.0)) == []           # 2.0 at 0.5 is inside [1, 4]
    feed(s, "cpu_util", "fw-1", [(5, 0.95)])
    assert p.evaluate(ctx(s, 5.0)) == []           # the window [2, 5] still holds 2.0
    [a] = p.evaluate(ctx(s, 5.5))
    assert (a.kind, a.ns, a.vnf) == ("scale_out", "web", "fw")
    assert "0.7" in a.reason and "1 -> 2" in a.reason


def test_needs_two_samples_in_the_window():
    """A single sample, however high, is not a sustained condition."""
    s, p = TimeSeriesStore(), ThresholdScaler(window_s=3.0)
    feed(s, "cpu_util", "fw-1", [(10, 2.0)])
    assert p.evaluate(ctx(s, 10.0)) == []


def test_no_flapping_between_high_and_low():
    """Load alternating around the middle, or between high and low, never triggers either
    action: every sample of the window must be beyond the threshold."""
    s, p = TimeSeriesStore(), ThresholdScaler(high=0.7, low=0.2, window_s=3.0, cooldown_s=0)
    two = {"fw": ["fw-1", "fw-2"]}
    for t in range(1, 30):
        v = 0.8 if t % 2 else 0.1
        feed(s, "cpu_util", "fw-1", [(t, v)])
        feed(s, "cpu_util", "fw-2", [(t + 0.01, v)])
        assert p.evaluate(ctx(s, t + 0.5, two)) == []
    s2 = TimeSeriesStore()
    feed(s2, "cpu_util", "fw-1", [(t, 0.45) for t in range(1, 10)])
    feed(s2, "cpu_util", "fw-2", [(t + 0.01, 0.45) for t in range(1, 10)])
    assert p.evaluate(ctx(s2, 9.5, two)) == []     # between low and high: hold


def test_average_and_sum_over_instances():
    """per_instance averages the VNF's instances; per_instance=False compares their sum."""
    s = TimeSeriesStore()
    two = {"fw": ["fw-1", "fw-2"]}
    feed(s, "packets_rate", "fw-1", [(1, 600), (2, 600), (3, 600)])
    feed(s, "packets_rate", "fw-2", [(1.1, 500), (2.1, 500), (3.1, 500)])
    avg = ThresholdScaler("packets_rate", high=1000, low=100, per_instance=True)
    tot = ThresholdScaler("packets_rate", high=1000, low=100, per_instance=False)
    assert avg.evaluate(ctx(s, 3.5, two)) == []
    [a] = tot.evaluate(ctx(s, 3.5, two))
    assert a.kind == "scale_out" and "total" in a.reason


def test_cooldown_after_own_and_notified_actions():
    """After a scale-out the VNF is left alone for cooldown_s, also when the action came
    from elsewhere and was reported with notify."""
    s, p = TimeSeriesStore(), ThresholdScaler(window_s=3.0, cooldown_s=10.0)
    feed(s, "cpu_util", "fw-1", [(t, 0.9) for t in range(1, 40)])
    assert [a.kind for a in p.evaluate(ctx(s, 5.0))] == ["scale_out"]
    assert p.evaluate(ctx(s, 8.0)) == []
    assert p.evaluate(ctx(s, 14.9)) == []
    assert [a.kind for a in p.evaluate(ctx(s, 15.0))] == ["scale_out"]
    p.notify(Action("heal", "web", "fw", "fw-1", "restart"), 20.0)
    assert p.evaluate(ctx(s, 29.0)) == []
    assert len(p.evaluate(ctx(s, 30.0))) == 1


def test_min_and_max_respected():
    """No scale-out at max (counting the step), no scale-in at min."""
    s = TimeSeriesStore()
    feed(s, "cpu_util", "fw-1", [(t, 0.9) for t in range(1, 6)])
    feed(s, "cpu_util", "fw-2", [(t + 0.1, 0.9) for t in range(1, 6)])
    two = {"fw": ["fw-1", "fw-2"]}
    assert ThresholdScaler().evaluate(ctx(s, 5.5, two, {"fw": vnfd(1, 2)})) == []
    assert ThresholdScaler().evaluate(ctx(s, 5.5, two, {"fw": vnfd(1, 3, step=2)})) == []
    assert len(ThresholdScaler().evaluate(ctx(s, 5.5, two, {"fw": vnfd(1, 4, step=2)}))) == 1
    low = TimeSeriesStore()
    feed(low, "cpu_util", "fw-1", [(t, 0.01) for t in range(1, 6)])
    assert ThresholdScaler().evaluate(ctx(low, 5.5, None, {"fw": vnfd(1, 3)})) == []


def test_scale_in_names_the_newest_instance():
    """A window below low on a VNF above its min scales in, removing the newest instance."""
    s, p = TimeSeriesStore(), ThresholdScaler(high=0.7, low=0.2)
    three = {"fw": ["fw-1", "fw-2", "fw-3"]}
    for i, iid in enumerate(three["fw"]):
        feed(s, "cpu_util", iid, [(t + i / 10, 0.05) for t in range(1, 6)])
    [a] = p.evaluate(ctx(s, 5.5, three))
    assert (a.kind, a.instance) == ("scale_in", "fw-3")
    assert "0.2" in a.reason and "3 -> 2" in a.reason


def test_liveness_heal_uses_vnfd_mode_grace_and_pending():
    """A dead instance is healed in its VNFD's mode once down for grace_s, and not again
    within 5 s; a given mode overrides the VNFD's."""
    s = TimeSeriesStore()
    feed(s, "alive", "fw-1", [(1, 1), (2, 1), (3, 0), (4, 0)])
    feed(s, "alive", "fw-2", [(1, 1), (2, 1), (3, 1), (4, 1)])
    two = {"fw": ["fw-1", "fw-2"]}
    vnfds = {"fw": vnfd(mode="recreate")}
    p = LivenessHealer(grace_s=2.0)
    assert p.evaluate(ctx(s, 4.0, two, vnfds)) == []          # down for 1 s only
    [a] = p.evaluate(ctx(s, 5.0, two, vnfds))
    assert (a.kind, a.instance, a.mode) == ("heal", "fw-1", "recreate")
    assert p.evaluate(ctx(s, 9.9, two, vnfds)) == []          # pending
    assert len(p.evaluate(ctx(s, 10.0, two, vnfds))) == 1
    [b] = LivenessHealer(mode="restart").evaluate(ctx(s, 4.0, two, vnfds))
    assert b.mode == "restart"
    feed(s, "alive", "fw-1", [(11, 1)])
    assert LivenessHealer().evaluate(ctx(s, 11.0, two, vnfds)) == []


def test_datapath_heal_picks_the_hung_vnf():
    """With heavy loss and everything alive, the first VNF in chain order that forwards
    nothing while its upstream forwards is healed; downstream silence is not blamed."""
    s = TimeSeriesStore()
    chain = {"a": ["a-1"], "b": ["b-1"], "c": ["c-1"]}
    vnfds = {v: vnfd() for v in chain}
    for vnf, iid in (("a", "a-1"), ("b", "b-1"), ("c", "c-1")):
        feed(s, "alive", iid, [(9, 1), (10, 1)], vnf=vnf)
    feed(s, "packets_rate", "a-1", [(9.5, 1000), (10, 1000)], vnf="a")
    feed(s, "packets_rate", "b-1", [(9.5, 0), (10, 0)], vnf="b")
    feed(s, "packets_rate", "c-1", [(9.5, 0), (10, 0)], vnf="c")
    s.record("loss_pct", labels_of(ns="web", graph="g"), 9.8, 100.0)
    p = DataPathHealer(loss_pct=50, window_s=1.0)
    c = ctx(s, 10.0, chain, vnfds, {"web": ["a", "b", "c"]})
    [h] = p.evaluate(c)
    assert (h.kind, h.vnf, h.instance, h.mode) == ("heal", "b", "b-1", "recreate")
    assert "100" in h.reason
    assert p.evaluate(c) == []                                  # pending
    rev = ctx(s, 10.0, chain, vnfds, {"web": ["c", "b", "a"]})   # c is now at the ingress
    assert [a.instance for a in DataPathHealer().evaluate(rev)] == ["c-1"]


def test_datapath_leaves_dead_instances_and_low_loss_alone():
    """Low loss, or a dead instance (the liveness healer's case), proposes nothing."""
    s = TimeSeriesStore()
    chain = {"a": ["a-1"], "b": ["b-1"]}
    feed(s, "alive", "a-1", [(10, 1)], vnf="a")
    feed(s, "alive", "b-1", [(10, 1)], vnf="b")
    feed(s, "packets_rate", "a-1", [(10, 1000)], vnf="a")
    feed(s, "packets_rate", "b-1", [(10, 0)], vnf="b")
    s.record("loss_pct", labels_of(ns="web", graph="g"), 10, 10.0)
    vnfds = {v: vnfd() for v in chain}
    assert DataPathHealer().evaluate(ctx(s, 10.2, chain, vnfds, {"web": ["a", "b"]})) == []
    s.record("loss_pct", labels_of(ns="web", graph="g"), 10.1, 100.0)
    assert len(DataPathHealer().evaluate(ctx(s, 10.2, chain, vnfds, {"web": ["a", "b"]}))) == 1
    feed(s, "alive", "b-1", [(10.15, 0)], vnf="b")
    assert DataPathHealer().evaluate(ctx(s, 10.2, chain, vnfds, {"web": ["a", "b"]})) == []


def test_custom_policy_plugs_into_composite():
    """A researcher's one-class policy runs beside the built-ins; duplicate actions on the
    same instance or VNF are dropped and notify reaches every member."""

    class AlwaysRestart:
        name = "always-restart"

        def __init__(self):
            self.seen = []

        def evaluate(self, ctx):
            return [Action("heal", ns, vnf, iid, "restart", "custom")
                    for ns, vnfs in ctx.ns.items() for vnf, iids in vnfs.items() for iid in iids]

        def notify(self, action, now):
            self.seen.append((action.kind, now))

    s = TimeSeriesStore()
    feed(s, "alive", "fw-1", [(1, 0)])
    custom = AlwaysRestart()
    assert isinstance(custom, Policy)
    comp = CompositePolicy(custom, LivenessHealer(), NoOpPolicy())
    acts = comp.evaluate(ctx(s, 2.0))
    assert [(a.instance, a.reason) for a in acts] == [("fw-1", "custom")]
    assert comp.name == "always-restart+liveness+noop"
    comp.notify(acts[0], 2.0)
    assert custom.seen == [("heal", 2.0)]


def test_registry_and_errors():
    """Policies are built by name with parameters; unknown names list the known ones."""
    assert set(POLICIES) >= {"threshold", "liveness", "datapath"}
    p = make_policy("threshold", metric="packets_rate", high=1000, low=100)
    assert isinstance(p, ThresholdScaler) and p.high == 1000
    with pytest.raises(PolicyError, match="datapath.*liveness.*threshold"):
        make_policy("magic")
    with pytest.raises(PolicyError, match="low < high"):
        make_policy("threshold", high=0.1, low=0.5)
    with pytest.raises(PolicyError, match="threshold"):
        make_policy("threshold", hgh=1)
    with pytest.raises(PolicyError):
        Action("reboot", "web", "fw")


def test_scale_out_observed_at_is_the_crossing_and_bounded_by_the_last_action():
    """observed_at of a scale-out is the first sample of the run above high (before the
    window if the run began earlier), but never before the VNF's last action."""
    s, p = TimeSeriesStore(), ThresholdScaler(high=0.7, low=0.2, window_s=2.0, cooldown_s=5.0)
    feed(s, "cpu_util", "fw-1", [(1, 0.3), (2, 0.3), (3, 0.8), (4, 0.9), (5, 0.9)])
    [a] = p.evaluate(ctx(s, 5.0))
    assert a.kind == "scale_out" and a.observed_at == 3
    feed(s, "cpu_util", "fw-1", [(t, 0.9) for t in range(6, 16)])
    [b] = p.evaluate(ctx(s, 15.0))            # still high since 3, but acted at 5
    assert b.observed_at == 6


def test_scale_in_observed_at_is_the_first_sample_below_low():
    """A scale-in's observed_at is when the averaged metric went below low."""
    s, p = TimeSeriesStore(), ThresholdScaler(high=0.7, low=0.2, window_s=2.0)
    two = {"fw": ["fw-1", "fw-2"]}
    for iid, dt in (("fw-1", 0), ("fw-2", 0.1)):
        feed(s, "cpu_util", iid, [(t + dt, 0.5 if t < 4 else 0.05) for t in range(1, 9)])
    [a] = p.evaluate(ctx(s, 8.5, two))
    assert (a.kind, a.instance) == ("scale_in", "fw-2")
    assert a.observed_at == 4.1               # both instances below low from 4.1 on


def test_default_threshold_scaler_scales_the_busy_vnf_under_a_flash_crowd():
    """With cpu_util as a fraction of the quota, the default scaler scales the shipped busy
    VNF (200 us per packet) out at 1,000 packets/s and holds at 200 packets/s."""
    busy = load_vnfd(Path(__file__).resolve().parents[2] / "descriptors" / "vnfd" / "busy.yaml")
    cost_s = busy.image.params["cost_us"] * 1e-6
    vcpu = busy.flavour.vcpu

    def util(pps):  # the per-packet cost alone: a lower bound of what the instance uses
        return min(1.0, pps * cost_s / vcpu)

    peak, base = TimeSeriesStore(), TimeSeriesStore()
    feed(peak, "cpu_util", "busy_1", [(t / 2, util(1000)) for t in range(1, 10)], vnf="busy")
    feed(base, "cpu_util", "busy_1", [(t / 2, util(200)) for t in range(1, 10)], vnf="busy")
    vnfds = {"busy": busy}
    one = {"busy": ["busy_1"]}
    assert [a.kind for a in ThresholdScaler().evaluate(ctx(peak, 4.5, one, vnfds))] == \
        ["scale_out"]
    assert ThresholdScaler().evaluate(ctx(base, 4.5, one, vnfds)) == []
    assert util(1000) >= 0.75 and util(200) <= 0.2      # a clear margin above high


def restart_vnfd(mode="restart", max_restarts=2):
    return SimpleNamespace(scaling=SimpleNamespace(min=1, max=3, step=1),
                           healing=SimpleNamespace(mode=mode, max_restarts=max_restarts))


def crash(store, iid, t, vnf="fw"):
    """The instance was alive just before ``t`` and is found dead at ``t``."""
    feed(store, "alive", iid, [(t - 0.5, 1), (t, 0)], vnf=vnf)


def test_liveness_restarts_max_restarts_times_then_recreates():
    """An instance that keeps failing is restarted max_restarts times (same id), then
    recreated; observed_at is the start of its dead run."""
    s, p = TimeSeriesStore(), LivenessHealer()
    vnfds = {"fw": restart_vnfd(max_restarts=2)}
    modes = []
    for t in (1.0, 10.0, 20.0):
        crash(s, "fw-1", t)
        [a] = p.evaluate(ctx(s, t + 0.2, None, vnfds))
        assert a.observed_at == t
        modes.append(a.mode)
    assert modes == ["restart", "restart", "recreate"]
    assert "restarted 2 times (max_restarts 2)" in a.reason
    assert p.restarts("fw-1") == 2 and p.recreates("web", "fw") == 1


def test_crash_looping_vnf_is_given_up_once():
    """Recreated instances that keep failing: max_restarts recreates, then one give_up
    action, then no more heals of that VNF."""
    s, p = TimeSeriesStore(), LivenessHealer()
    vnfds = {"fw": restart_vnfd(mode="recreate", max_restarts=2)}
    kinds = []
    for n, t in enumerate((1.0, 5.0, 9.0), start=1):
        crash(s, f"fw-{n}", t)
        kinds += [(a.kind, a.instance) for a in p.evaluate(ctx(s, t + 0.1, {"fw": [f"fw-{n}"]},
                                                                vnfds))]
    assert kinds == [("heal", "fw-1"), ("heal", "fw-2"), ("give_up", "fw-3")]
    assert p.given_up("web", "fw")
    crash(s, "fw-3", 20.0)
    assert p.evaluate(ctx(s, 30.0, {"fw": ["fw-3"]}, vnfds)) == []
    Action("give_up", "web", "fw", "fw-3", reason="x")      # a valid action kind


def test_policy_max_restarts_overrides_the_vnfds_and_bad_values_are_refused():
    """A healer's own max_restarts replaces the VNFD's: with 5 the crash loop that gave up
    at the third failure under the VNFD's 2 is healed five times; bad values are refused."""
    assert DataPathHealer(max_restarts=5).max_restarts == 5
    s, p = TimeSeriesStore(), LivenessHealer(max_restarts=5)
    vnfds = {"fw": restart_vnfd(mode="recreate", max_restarts=2)}
    kinds = []
    for n, t in enumerate((1.0, 5.0, 9.0, 13.0, 17.0, 21.0), start=1):
        crash(s, f"fw-{n}", t)
        kinds += [a.kind for a in p.evaluate(ctx(s, t + 0.1, {"fw": [f"fw-{n}"]}, vnfds))]
    assert kinds == ["heal"] * 5 + ["give_up"]
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(PolicyError, match="max_restarts to be an integer >= 0"):
            LivenessHealer(max_restarts=bad)


def test_zero_max_restarts_gives_up_at_the_first_failure():
    """max_restarts 0: no restart, no recreate, the first failure is a give-up."""
    s, p = TimeSeriesStore(), LivenessHealer()
    crash(s, "fw-1", 1.0)
    [a] = p.evaluate(ctx(s, 1.1, None, {"fw": restart_vnfd(max_restarts=0)}))
    assert a.kind == "give_up" and "giving up" in a.reason


def test_a_healthy_period_ends_the_run_of_failures():
    """After the VNF's instances have been alive for healthy_reset_s, its recreate count
    starts again from zero; a shorter healthy period does not reset it."""
    s, p = TimeSeriesStore(), LivenessHealer(healthy_reset_s=10.0)
    vnfds = {"fw": restart_vnfd(mode="recreate", max_restarts=1)}
    crash(s, "fw-1", 1.0)
    [a] = p.evaluate(ctx(s, 1.1, None, vnfds))
    assert a.kind == "heal" and p.recreates("web", "fw") == 1
    feed(s, "alive", "fw-2", [(t, 1) for t in range(2, 8)])
    p.evaluate(ctx(s, 7.0, {"fw": ["fw-2"]}, vnfds))
    assert p.recreates("web", "fw") == 1                    # alive 5 s only
    feed(s, "alive", "fw-2", [(t, 1) for t in range(8, 14)])
    p.evaluate(ctx(s, 13.0, {"fw": ["fw-2"]}, vnfds))
    assert p.recreates("web", "fw") == 0                    # alive 11 s >= 10 s
    crash(s, "fw-2", 20.0)
    [b] = p.evaluate(ctx(s, 20.1, {"fw": ["fw-2"]}, vnfds))
    assert b.kind == "heal"


def test_counts_see_heals_of_others_and_do_not_double_count_own_heals():
    """A heal reported by notify counts; the notify of the healer's own proposal does not
    count it again, and a restart carried out as a recreate is counted as a recreate."""
    s, p = TimeSeriesStore(), LivenessHealer()
    vnfds = {"fw": restart_vnfd(max_restarts=3)}
    p.evaluate(ctx(s, 0.0, None, vnfds))
    p.notify(Action("heal", "web", "fw", "fw-1", "restart", "by another healer"), 1.0)
    assert p.restarts("fw-1") == 1
    crash(s, "fw-1", 10.0)
    [a] = p.evaluate(ctx(s, 10.1, None, vnfds))
    assert p.restarts("fw-1") == 2
    p.notify(a, 11.0)
    assert p.restarts("fw-1") == 2
    crash(s, "fw-1", 20.0)
    [b] = p.evaluate(ctx(s, 20.1, None, vnfds))
    p.notify(Action("heal", "web", "fw", "fw-1", "recreate", b.reason), 21.0)
    assert p.restarts("fw-1") == 2 and p.recreates("web", "fw") == 1
    p.notify(Action("give_up", "web", "fw", "fw-1", reason="elsewhere"), 22.0)
    crash(s, "fw-1", 30.0)
    assert p.evaluate(ctx(s, 30.1, None, vnfds)) == []


def test_composite_passes_a_give_up_to_every_member():
    """A give-up from one healer reaches the others at once, and their heals of that VNF
    in the same evaluation are dropped."""
    s = TimeSeriesStore()
    crash(s, "fw-1", 1.0)
    live, other = LivenessHealer(), LivenessHealer()
    comp = CompositePolicy(live, other)
    acts = comp.evaluate(ctx(s, 1.1, None, {"fw": restart_vnfd(max_restarts=0)}))
    assert [a.kind for a in acts] == ["give_up"]
    assert other.given_up("web", "fw")


def test_datapath_observed_at_is_the_start_of_the_loss_run():
    """The data-path healer's observed_at is the first loss sample above its threshold in
    the run that reaches into the window; max_restarts applies to its recreates too."""
    s = TimeSeriesStore()
    chain = {"a": ["a-1"], "b": ["b-1"]}
    vnfds = {"a": restart_vnfd(max_restarts=0), "b": restart_vnfd(max_restarts=1)}
    for vnf, iid in (("a", "a-1"), ("b", "b-1")):
        feed(s, "alive", iid, [(9, 1), (10, 1)], vnf=vnf)
    feed(s, "packets_rate", "a-1", [(9.5, 1000), (10, 1000)], vnf="a")
    feed(s, "packets_rate", "b-1", [(9.5, 0), (10, 0)], vnf="b")
    for t, v in ((7.0, 0.0), (8.0, 60.0), (9.0, 100.0), (9.8, 100.0)):
        s.record("loss_pct", labels_of(ns="web", graph="g"), t, v)
    p = DataPathHealer(loss_pct=50, window_s=1.0)
    [h] = p.evaluate(ctx(s, 10.0, chain, vnfds, {"web": ["a", "b"]}))
    assert (h.kind, h.instance, h.observed_at) == ("heal", "b-1", 8.0)
    feed(s, "alive", "a-1", [(16, 1)], vnf="a")
    feed(s, "alive", "b-2", [(16, 1)], vnf="b")
    feed(s, "packets_rate", "a-1", [(15.5, 1000), (16, 1000)], vnf="a")
    feed(s, "packets_rate", "b-2", [(15.5, 0), (16, 0)], vnf="b")
    s.record("loss_pct", labels_of(ns="web", graph="g"), 15.5, 100.0)
    chain = {"a": ["a-1"], "b": ["b-2"]}
    [g] = p.evaluate(ctx(s, 16.0, chain, vnfds, {"web": ["a", "b"]}))
    assert g.kind == "give_up"
