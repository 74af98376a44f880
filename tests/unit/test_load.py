"""Tests of the load profiles in ``testbed.experiment.load`` (pure: no packets, no clocks)."""

from __future__ import annotations

import math
import random

import pytest

from testbed import errors
from testbed.experiment.load import (
    PROFILES,
    Constant,
    Diurnal,
    FlashCrowd,
    PoissonFlows,
    ProfileError,
    Ramp,
    Step,
    Trace,
    make_profile,
    timeline,
)

# --------------------------------------------------------------------------- shapes


def test_constant():
    """A constant profile gives its rate at every time."""
    p = Constant(750)
    assert [p.rate_at(t) for t in (0, 1.5, 1e6)] == [750, 750, 750]


def test_step():
    """A step gives ``before`` until ``at`` and ``after`` from ``at`` on."""
    p = Step(before=300, after=1500, at=10)
    assert p.rate_at(0) == 300
    assert p.rate_at(9.99) == 300
    assert p.rate_at(10) == 1500
    assert p.rate_at(100) == 1500


def test_ramp():
    """A ramp holds its start before t0, rises linearly to t1 and holds its end after."""
    p = Ramp(start=100, end=1100, t0=5, t1=15)
    assert p.rate_at(0) == 100
    assert p.rate_at(5) == 100
    assert p.rate_at(10) == pytest.approx(600)
    assert p.rate_at(12.5) == pytest.approx(850)
    assert p.rate_at(15) == 1100 and p.rate_at(99) == 1100
    down = Ramp(start=1000, end=0, t0=0, t1=10)
    assert down.rate_at(2.5) == pytest.approx(750)
    instant = Ramp(start=1, end=2, t0=3, t1=3)
    assert instant.rate_at(2.9) == 1 and instant.rate_at(3) == 2


def test_diurnal():
    """A diurnal profile is mean + amplitude * sin(2 pi (t + phase) / period), never below 0."""
    p = Diurnal(mean=1000, amplitude=400, period_s=60)
    assert p.rate_at(0) == pytest.approx(1000)
    assert p.rate_at(15) == pytest.approx(1400)
    assert p.rate_at(30) == pytest.approx(1000)
    assert p.rate_at(45) == pytest.approx(600)
    assert p.rate_at(60) == pytest.approx(1000)
    shifted = Diurnal(mean=1000, amplitude=400, period_s=60, phase_s=15)
    assert shifted.rate_at(0) == pytest.approx(1400)
    clipped = Diurnal(mean=100, amplitude=300, period_s=40)
    assert clipped.rate_at(30) == 0.0
    assert min(r for _t, r in timeline(clipped, 40, 0.25)) == 0.0


def test_flash_crowd():
    """A flash crowd rises linearly from base to peak, holds, then decays linearly to base."""
    p = FlashCrowd(base=200, peak=2000, at=10, rise_s=2, hold_s=5, decay_s=4)
    assert p.rate_at(0) == 200 and p.rate_at(9.99) == 200
    assert p.rate_at(10) == 200
    assert p.rate_at(11) == pytest.approx(1100)
    assert p.rate_at(12) == 2000 and p.rate_at(16.9) == 2000
    assert p.rate_at(19) == pytest.approx(1100)
    assert p.rate_at(21) == 200 and p.rate_at(1000) == 200
    sudden = FlashCrowd(base=1, peak=9, at=1, rise_s=0, hold_s=1, decay_s=0)
    assert (sudden.rate_at(0.5), sudden.rate_at(1), sudden.rate_at(2)) == (1, 9, 1)


def test_timeline_samples_inclusive():
    """``timeline`` samples at 0, step, ... up to and including the duration."""
    tl = timeline(Step(1, 2, at=1), duration=2, step=0.5)
    assert tl == [(0.0, 1), (0.5, 1), (1.0, 2), (1.5, 2), (2.0, 2)]
    assert len(timeline(Constant(1), 10, 0.1)) == 101


def test_negative_or_nan_parameters_rejected():
    """Negative, non-finite or non-numeric parameters raise ProfileError naming them."""
    with pytest.raises(ProfileError, match="rate"):
        Constant(-1)
    with pytest.raises(ProfileError, match="period_s"):
        Diurnal(1, 1, 0)
    with pytest.raises(ProfileError, match="peak"):
        FlashCrowd(1, float("nan"), 1, 1, 1, 1)
    with pytest.raises(ProfileError, match="t1"):
        Ramp(1, 2, t0=5, t1=4)
    with pytest.raises(ProfileError, match="alpha"):
        PoissonFlows(1, 10, alpha=1.0, duration=10)


# --------------------------------------------------------------------------- traces


def _write(tmp_path, text: str, name: str = "trace.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_trace_linear_and_step(tmp_path):
    """A CSV trace interpolates linearly by default, or holds each rate with "step"."""
    path = _write(tmp_path, "time_s,rate\n0,100\n10,200\n# comment\n\n20,0\n")
    lin = Trace.from_csv(path)
    assert lin.rate_at(-1) == 100 and lin.rate_at(0) == 100
    assert lin.rate_at(5) == pytest.approx(150)
    assert lin.rate_at(15) == pytest.approx(100)
    assert lin.rate_at(20) == 0 and lin.rate_at(50) == 0
    st = Trace.from_csv(path, interpolation="step")
    assert st.rate_at(5) == 100 and st.rate_at(10) == 200 and st.rate_at(19.9) == 200


def test_trace_without_header(tmp_path):
    """The header line is optional; extra columns are ignored."""
    t = Trace.from_csv(_write(tmp_path, "0,5,x\n2,7,y\n"))
    assert t.rate_at(1) == pytest.approx(6)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("time_s,rate\n0,100\n1,abc\n", 3, "rate 'abc' is not a number"),
        ("time_s,rate\n0,100\nx,1\n", 3, "time_s 'x' is not a number"),
        ("time_s,rate\n0,100\n1\n", 3, "two columns"),
        ("time_s,rate\n0,100\n2,1\n1,1\n", 4, "not after the previous"),
        ("time_s,rate\n0,-5\n", 2, ">= 0"),
        ("when,how\n0,1\n", 1, "header"),
    ],
)
def test_trace_bad_rows_name_file_and_line(tmp_path, text, line, what):
    """A bad CSV row raises ProfileError with ``path:line:`` and what is wrong."""
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as exc:
        Trace.from_csv(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{line}:"), msg
    assert what in msg


def test_trace_missing_or_empty_file(tmp_path):
    """A missing file or one without data rows raises ProfileError naming the file."""
    with pytest.raises(ProfileError, match="nope.csv"):
        Trace.from_csv(tmp_path / "nope.csv")
    empty = _write(tmp_path, "time_s,rate\n", "empty.csv")
    with pytest.raises(ProfileError, match="empty.csv: no data rows"):
        Trace.from_csv(empty)
    with pytest.raises(ProfileError, match="interpolation"):
        Trace.from_csv(_write(tmp_path, "0,1\n"), interpolation="cubic")


# --------------------------------------------------------------------------- Poisson flows


def test_poisson_flows_rate_is_flow_rate_times_active():
    """rate_at(t) is flow_rate times the number of flows with start <= t < end."""
    p = PoissonFlows(5, 100, alpha=1.5, flow_rate=200, rng=random.Random(3), duration=60)
    assert p.flows
    for t in (0.0, 1.0, 7.3, 30.0, 59.9, 70.0):
        active = sum(1 for s, e, _n in p.flows if s <= t < e)
        assert p.rate_at(t) == 200 * active
    for s, e, n in p.flows:
        assert 0 < s < 60
        assert e == pytest.approx(s + n / 200)
        assert n >= 1 and isinstance(n, int)


def test_poisson_flows_statistics():
    """Arrivals average arrivals_per_s; sizes are heavy-tailed with about the given mean."""
    p = PoissonFlows(50, 100, alpha=2.5, flow_rate=1000, rng=random.Random(7), duration=400)
    n = len(p.flows)
    assert n == pytest.approx(50 * 400, rel=0.05)
    sizes = sorted(f[2] for f in p.flows)
    assert sum(sizes) / n == pytest.approx(100, rel=0.1)
    median = sizes[n // 2]
    assert median < 100  # right-skewed
    assert sizes[-1] > 10 * median  # a heavy tail
    assert min(sizes) >= round(100 * 1.5 / 2.5) - 1  # Pareto scale: mean (alpha-1)/alpha


def test_poisson_flows_same_seed_same_flows():
    """The same seed gives the same flows and timeline; a different seed gives others."""

    def build(seed, duration=30):
        return PoissonFlows(3, 200, rng=random.Random(seed), duration=duration)

    a, b, c = build(42), build(42), build(43)
    assert a.flows == b.flows
    assert timeline(a, 30) == timeline(b, 30)
    assert a.flows != c.flows
    assert timeline(a, 30) != timeline(c, 30)
    longer = build(42, duration=60)
    assert longer.flows[: len(a.flows)] == a.flows  # a shorter run is a prefix


# --------------------------------------------------------------------------- make_profile


def test_make_profile_builds_every_type(tmp_path):
    """make_profile builds each registered type from a spec dict."""
    trace = _write(tmp_path, "0,10\n10,20\n")
    specs = {
        "constant": {"rate": 5},
        "step": {"before": 1, "after": 2, "at": 3},
        "ramp": {"start": 0, "end": 10, "t0": 0, "t1": 10},
        "diurnal": {"mean": 10, "amplitude": 5, "period_s": 60},
        "flash_crowd": {"base": 1, "peak": 9, "at": 2, "rise_s": 1, "hold_s": 1, "decay_s": 1},
        "trace": {"path": str(trace), "interpolation": "step"},
        "poisson_flows": {"arrivals_per_s": 1, "mean_size_pkts": 50, "duration": 10},
    }
    assert set(specs) == set(PROFILES)
    for kind, params in specs.items():
        prof = make_profile({"type": kind, **params}, random.Random(1))
        assert math.isfinite(prof.rate_at(5.0)) and prof.rate_at(5.0) >= 0
    assert make_profile({"type": "step", "before": 1, "after": 2, "at": 3}, None).rate_at(4) == 2
    assert make_profile({"type": "Flash-Crowd", **specs["flash_crowd"]}, None).rate_at(3) == 9


def test_make_profile_trace_relative_to_base_dir(tmp_path):
    """A relative trace path is resolved against base_dir."""
    _write(tmp_path, "0,10\n10,20\n", "t.csv")
    prof = make_profile({"type": "trace", "path": "t.csv"}, None, base_dir=tmp_path)
    assert prof.rate_at(5) == pytest.approx(15)


def test_make_profile_random_is_seeded_by_rng():
    """A random spec draws from the given rng: same seed same rates, other seed other rates."""
    spec = {"type": "poisson_flows", "arrivals_per_s": 2, "mean_size_pkts": 300}
    a = make_profile(spec, random.Random(5), duration=30)
    b = make_profile(spec, random.Random(5), duration=30)
    c = make_profile(spec, random.Random(6), duration=30)
    assert a.flows == b.flows and a.flows != c.flows
    assert timeline(a, 30) == timeline(b, 30) != timeline(c, 30)
    # One draw from the scenario's rng whatever the duration: later draws are unaffected.
    r1, r2 = random.Random(9), random.Random(9)
    make_profile(spec, r1, duration=10)
    make_profile(spec, r2, duration=100)
    assert r1.random() == r2.random()
    # A spec may carry its own seed.
    s1 = make_profile({**spec, "seed": 11, "duration": 20}, random.Random(1))
    s2 = make_profile({**spec, "seed": 11, "duration": 20}, random.Random(2))
    assert s1.flows == s2.flows


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"type": "tsunami"}, "unknown load profile type 'tsunami'; known types: constant"),
        ({"rate": 1}, "has no 'type'"),
        ({"type": "step", "before": 1, "at": 2}, "missing parameter.*after"),
        ({"type": "step", "before": 1, "after": 2, "at": 3, "when": 4}, "unknown parameter.*when"),
        ({"type": "constant", "rate": "lots"}, "rate must be a number"),
        ({"type": "poisson_flows", "arrivals_per_s": 1}, "missing parameter.*mean_size_pkts"),
    ],
)
def test_make_profile_errors(spec, match):
    """Unknown types and unknown, missing or bad parameters raise a clear ProfileError."""
    with pytest.raises(ProfileError, match=match) as exc:
        make_profile(spec, random.Random(1))
    assert isinstance(exc.value, errors.TestbedError) and isinstance(exc.value, ValueError)


def test_make_profile_random_needs_rng_or_seed():
    """A random profile without an rng or a seed is refused rather than silently seeded."""
    with pytest.raises(ProfileError, match="rng"):
        make_profile({"type": "poisson_flows", "arrivals_per_s": 1, "mean_size_pkts": 5}, None)
