"""Load profiles: the packets/s a traffic generator is commanded to send at each moment.

Every profile has ``rate_at(t) -> float``: the rate (packets/s, >= 0) at ``t`` seconds
since the start of the run. Profiles are pure: nothing here sends packets or reads clocks.
Random profiles draw everything from the ``random.Random`` they are given, once, when they
are built, so the same seed gives the same rates.

==================  ==============================================================  =====
type (spec)         class and meaning                                                random
==================  ==============================================================  =====
``constant``        ``Constant(rate)``                                               no
``step``            ``Step(before, after, at)``: ``before`` until ``at``, then        no
                    ``after``
``ramp``            ``Ramp(start, end, t0, t1)``: ``start`` until t0, linear to       no
                    ``end`` at t1, then ``end``
``diurnal``         ``Diurnal(mean, amplitude, period_s, phase_s=0)``:               no
                    ``mean + amplitude * sin(2 pi (t + phase_s) / period_s)``,
                    clipped at 0
``flash_crowd``     ``FlashCrowd(base, peak, at, rise_s, hold_s, decay_s)``: base,   no
                    linear rise to ``peak`` from ``at`` over ``rise_s``, ``hold_s``
                    at the peak, linear decay back to base over ``decay_s``
``trace``           ``Trace.from_csv(path, interpolation="linear")``: a replayed     no
                    rate trace (CSV columns ``time_s,rate``)
``poisson_flows``   ``PoissonFlows(arrivals_per_s, mean_size_pkts, alpha=1.5,        yes
                    flow_rate=200, rng=..., duration=...)``: flows arrive as a
                    Poisson process with Pareto sizes; rate = flow_rate x active
==================  ==============================================================  =====

``make_profile({"type": "step", "before": 300, "after": 1500, "at": 10}, rng)`` builds one
from a scenario's spec (``PROFILES`` maps type names to classes); ``timeline(profile,
duration, step)`` samples one, e.g. to write it out so that two runs can be compared.
"""

from __future__ import annotations

import bisect
import csv
import inspect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import TestbedError


class ProfileError(TestbedError, ValueError):
    """A load profile spec or trace file is invalid; the message says which and why."""


def _check(name: str, value, *, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (> 0 if ``positive``), else ProfileError naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        need = "> 0" if positive else ">= 0"
        raise ProfileError(f"{name} must be a finite number {need}, got {value!r}")
    return x


class Profile:
    """Base of all load profiles: ``rate_at(t)`` in packets/s at ``t`` s since the start."""

    def rate_at(self, t: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, t: float) -> float:
        return self.rate_at(t)


@dataclass(frozen=True)
class Constant(Profile):
    """The same rate all the time."""

    rate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _check("rate", self.rate))

    def rate_at(self, t: float) -> float:
        return self.rate


@dataclass(frozen=True)
class Step(Profile):
    """``before`` for t < ``at``, ``after`` from ``at`` on."""

    before: float
    after: float
    at: float

    def __post_init__(self) -> None:
        for name in ("before", "after", "at"):
            object.__setattr__(self, name, _check(name, getattr(self, name)))

    def rate_at(self, t: float) -> float:
        return self.before if t < self.at else self.after


@dataclass(frozen=True)
class Ramp(Profile):
    """``start`` until ``t0``, linear to ``end`` at ``t1``, then ``end``."""

    start: float
    end: float
    t0: float
    t1: float

    def __post_init__(self) -> None:
        for name in ("start", "end", "t0", "t1"):
            object.__setattr__(self, name, _check(name, getattr(self, name)))
        if self.t1 < self.t0:
            raise ProfileError(f"ramp: t1 ({self.t1}) must be >= t0 ({self.t0})")

    def rate_at(self, t: float) -> float:
        if t < self.t0:
            return self.start
        if t >= self.t1:
            return self.end
        return self.start + (self.end - self.start) * (t - self.t0) / (self.t1 - self.t0)


@dataclass(frozen=True)
class Diurnal(Profile):
    """A day-like sine: ``mean + amplitude * sin(2 pi (t + phase_s) / period_s)``, >= 0.

    At t = -phase_s the rate is ``mean`` and rising; it peaks a quarter period later. An
    ``amplitude`` above ``mean`` is allowed: the rate is clipped at 0 (quiet nights).
    """

    mean: float
    amplitude: float
    period_s: float
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _check("mean", self.mean))
        object.__setattr__(self, "amplitude", _check("amplitude", self.amplitude))
        object.__setattr__(self, "period_s", _check("period_s", self.period_s, positive=True))
        try:
            phase = float(self.phase_s)
        except (TypeError, ValueError):
            raise ProfileError(f"phase_s must be a number, got {self.phase_s!r}") from None
        if not math.isfinite(phase):
            raise ProfileError(f"phase_s must be finite, got {self.phase_s!r}")
        object.__setattr__(self, "phase_s", phase)

    def rate_at(self, t: float) -> float:
        x = self.mean + self.amplitude * math.sin(2 * math.pi * (t + self.phase_s) / self.period_s)
        return max(0.0, x)


@dataclass(frozen=True)
class FlashCrowd(Profile):
    """``base``; from ``at`` a linear rise to ``peak`` over ``rise_s``; ``hold_s`` at the
    peak; then a linear decay back to ``base`` over ``decay_s``; then ``base`` again."""

    base: float
    peak: float
    at: float
    rise_s: float
    hold_s: float
    decay_s: float

    def __post_init__(self) -> None:
        for name in ("base", "peak", "at", "rise_s", "hold_s", "decay_s"):
            object.__setattr__(self, name, _check(name, getattr(self, name)))

    def rate_at(self, t: float) -> float:
        u = t - self.at
        if u < 0:
            return self.base
        if u < self.rise_s:
            return self.base + (self.peak - self.base) * u / self.rise_s
        u -= self.rise_s
        if u < self.hold_s:
            return self.peak
        u -= self.hold_s
        if u < self.decay_s:
            return self.peak + (self.base - self.peak) * u / self.decay_s
        return self.base


class Trace(Profile):
    """A replayed rate trace: points (time_s, rate) with strictly increasing times.

    ``interpolation="linear"`` (the default) joins the points with straight lines;
    ``"step"`` holds each point's rate until the next point's time. Before the first point
    the first rate applies, after the last point the last rate.
    """

    INTERPOLATIONS = ("linear", "step")

    def __init__(
        self,
        points: list[tuple[float, float]],
        interpolation: str = "linear",
        source: str = "trace",
    ) -> None:
        if interpolation not in self.INTERPOLATIONS:
            raise ProfileError(
                f"{source}: interpolation must be one of {', '.join(self.INTERPOLATIONS)}, "
                f"got {interpolation!r}"
            )
        if not points:
            raise ProfileError(f"{source}: a trace needs at least one (time_s, rate) point")
        times, values = [], []
        for k, (t, r) in enumerate(points):
            t = _check(f"{source}: point {k} time_s", t)
            r = _check(f"{source}: point {k} rate", r)
            if times and t <= times[-1]:
                raise ProfileError(
                    f"{source}: point {k}: time_s {t} is not after the previous {times[-1]}"
                )
            times.append(t)
            values.append(r)
        self.times = times
        self.rates = values
        self.interpolation = interpolation
        self.source = source

    def __repr__(self) -> str:
        return (
            f"Trace({self.source!r}, {len(self.times)} points, "
            f"interpolation={self.interpolation!r})"
        )

    @classmethod
    def from_csv(cls, path, interpolation: str = "linear") -> Trace:
        """Read a trace from a CSV file with columns ``time_s,rate``.

        A header line (``time_s,rate``) is optional; blank lines and lines starting with
        ``#`` are skipped; extra columns are ignored. A bad row raises ProfileError naming
        the file and line: ``trace.csv:7: rate 'abc' is not a number``.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ProfileError(f"{path}: cannot read trace: {e.strerror or e}") from None
        points: list[tuple[float, float]] = []
        last_t = None
        first = True
        for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            was_first, first = first, False
            if was_first and _is_header(cells):
                if [c.lower() for c in cells[:2]] != ["time_s", "rate"]:
                    raise ProfileError(
                        f"{path}:{lineno}: expected the header 'time_s,rate', got {','.join(cells)!r}"
                    )
                continue
            if len(cells) < 2:
                raise ProfileError(
                    f"{path}:{lineno}: expected two columns time_s,rate, got {','.join(cells)!r}"
                )
            vals = []
            for name, cell in (("time_s", cells[0]), ("rate", cells[1])):
                try:
                    x = float(cell)
                except ValueError:
                    raise ProfileError(
                        f"{path}:{lineno}: {name} {cell!r} is not a number"
                    ) from None
                if not math.isfinite(x) or x < 0:
                    raise ProfileError(
                        f"{path}:{lineno}: {name} must be a finite number >= 0, got {cell!r}"
                    )
                vals.append(x)
            t, r = vals
            if last_t is not None and t <= last_t:
                raise ProfileError(
                    f"{path}:{lineno}: time_s {cells[0]} is not after the previous time {last_t:g}"
                )
            last_t = t
            points.append((t, r))
        if not points:
            raise ProfileError(f"{path}: no data rows (expected lines 'time_s,rate')")
        return cls(points, interpolation=interpolation, source=str(path))

    def rate_at(self, t: float) -> float:
        times = self.times
        if t <= times[0]:
            return self.rates[0]
        if t >= times[-1]:
            return self.rates[-1]
        k = bisect.bisect_right(times, t) - 1  # times[k] <= t < times[k + 1]
        if self.interpolation == "step":
            return self.rates[k]
        t0, t1 = times[k], times[k + 1]
        r0, r1 = self.rates[k], self.rates[k + 1]
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0)


def _is_header(cells: list[str]) -> bool:
    """A first row whose first cell is not a number is taken as a header."""
    try:
        float(cells[0])
    except ValueError:
        return True
    return False


class PoissonFlows(Profile):
    """Flows arriving as a Poisson process, with heavy-tailed (Pareto) sizes.

    Flows arrive at ``arrivals_per_s`` on average (exponential inter-arrival times) from
    t = 0 until ``duration``. Each has a size in packets drawn from a Pareto distribution
    with shape ``alpha`` (> 1) and mean ``mean_size_pkts`` (scale = mean (alpha-1)/alpha;
    sizes are rounded to whole packets, at least 1), and sends at ``flow_rate`` packets/s
    until its size is sent, so it lasts size / flow_rate seconds (possibly past
    ``duration``). ``rate_at(t) = flow_rate * (flows active at t)``.

    ``flows`` lists (start, end, size) in arrival order. Everything is drawn from ``rng``
    when the profile is built (inter-arrival then size, flow after flow), so the flows of a
    shorter duration are a prefix of those of a longer one with the same seed.
    """

    def __init__(
        self,
        arrivals_per_s: float,
        mean_size_pkts: float,
        alpha: float = 1.5,
        flow_rate: float = 200.0,
        rng: random.Random | None = None,
        duration: float = 600.0,
        seed: int | None = None,
    ) -> None:
        self.arrivals_per_s = _check("arrivals_per_s", arrivals_per_s, positive=True)
        self.mean_size_pkts = _check("mean_size_pkts", mean_size_pkts, positive=True)
        self.alpha = _check("alpha", alpha)
        if self.alpha <= 1:
            raise ProfileError(
                f"alpha must be > 1 (a Pareto with alpha <= 1 has no mean), got {alpha!r}"
            )
        self.flow_rate = _check("flow_rate", flow_rate, positive=True)
        self.duration = _check("duration", duration)
        if rng is None:
            rng = random.Random(seed if seed is not None else 0)
        elif seed is not None:
            raise ProfileError("give either rng or seed, not both")
        scale = self.mean_size_pkts * (self.alpha - 1) / self.alpha
        flows: list[tuple[float, float, int]] = []
        t = 0.0
        while True:
            t += rng.expovariate(self.arrivals_per_s)
            if t >= self.duration:
                break
            size = max(1, round(scale * rng.paretovariate(self.alpha)))
            flows.append((t, t + size / self.flow_rate, size))
        self.flows = flows
        self._starts = [f[0] for f in flows]
        self._ends = sorted(f[1] for f in flows)

    def __repr__(self) -> str:
        return (
            f"PoissonFlows(arrivals_per_s={self.arrivals_per_s}, "
            f"mean_size_pkts={self.mean_size_pkts}, alpha={self.alpha}, "
            f"flow_rate={self.flow_rate}, duration={self.duration}, flows={len(self.flows)})"
        )

    def active_at(self, t: float) -> int:
        """Number of flows active at ``t`` (start <= t < end)."""
        return bisect.bisect_right(self._starts, t) - bisect.bisect_right(self._ends, t)

    def rate_at(self, t: float) -> float:
        return self.flow_rate * self.active_at(t)


def timeline(profile: Profile, duration: float, step: float = 0.5) -> list[tuple[float, float]]:
    """Sample ``profile`` at t = 0, step, 2 step, ... up to and including ``duration``."""
    duration = _check("duration", duration)
    step = _check("step", step, positive=True)
    n = math.floor(duration / step + 1e-9)
    out = []
    for k in range(n + 1):
        t = round(k * step, 9)
        out.append((t, profile.rate_at(t)))
    return out


def _trace_from_spec(path, interpolation: str = "linear") -> Trace:
    return Trace.from_csv(path, interpolation=interpolation)


PROFILES: dict[str, Callable[..., Profile]] = {
    "constant": Constant,
    "step": Step,
    "ramp": Ramp,
    "diurnal": Diurnal,
    "flash_crowd": FlashCrowd,
    "trace": _trace_from_spec,
    "poisson_flows": PoissonFlows,
}
RANDOM_PROFILES = frozenset({"poisson_flows"})


def make_profile(
    spec: dict,
    rng: random.Random | None = None,
    *,
    duration: float | None = None,
    base_dir=None,
) -> Profile:
    """Build a profile from a scenario's spec, e.g. ``{"type": "step", "before": 300, ...}``.

    The other keys are the class's parameters (see the module table); ``type`` is
    case-insensitive and ``-`` may stand for ``_`` (``flash-crowd``). For ``trace`` give
    ``path`` (relative paths are resolved against ``base_dir`` if given) and optionally
    ``interpolation``. Random profiles take a child generator seeded with one draw from
    ``rng`` (so they use up the same amount of ``rng`` whatever they generate), unless
    the spec gives its own ``seed``; ``duration`` is the default for a spec without one.
    Unknown types, unknown or missing parameters raise ProfileError.
    """
    if not isinstance(spec, dict):
        raise ProfileError(f"a load profile is a dict with a 'type', got {spec!r}")
    params = dict(spec)
    kind = params.pop("type", None)
    if not isinstance(kind, str):
        raise ProfileError(
            f"load profile {spec!r} has no 'type'; known types: {', '.join(sorted(PROFILES))}"
        )
    name = kind.strip().lower().replace("-", "_")
    if name not in PROFILES:
        raise ProfileError(
            f"unknown load profile type {kind!r}; known types: {', '.join(sorted(PROFILES))}"
        )
    factory = PROFILES[name]
    sig = inspect.signature(factory)
    internal = {"rng", "seed"} if name in RANDOM_PROFILES else set()
    allowed = [p for p in sig.parameters if p not in {"rng", "source"}]
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        raise ProfileError(
            f"load profile {name!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}"
        )
    if name in RANDOM_PROFILES:
        if "seed" not in params:
            if rng is None:
                raise ProfileError(f"load profile {name!r} is random: give an rng or a 'seed'")
            params["rng"] = random.Random(rng.getrandbits(64))
        if "duration" not in params and duration is not None:
            params["duration"] = duration
    if name == "trace" and base_dir is not None and "path" in params:
        p = Path(params["path"])
        params["path"] = p if p.is_absolute() else Path(base_dir) / p
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty and p.name not in params and p.name not in internal
    ]
    if missing:
        raise ProfileError(
            f"load profile {name!r}: missing parameter(s) {', '.join(missing)}; "
            f"allowed: {', '.join(allowed)}"
        )
    try:
        return factory(**params)
    except ProfileError as e:
        raise ProfileError(f"load profile {name!r}: {e}") from None
