"""Auto-scaling and auto-healing policies: plain logic that reads metrics and proposes actions.

A policy is any object with a ``name`` and ``evaluate(ctx) -> list[Action]`` (see ``Policy``);
it may also have ``notify(action, now)``, which the caller invokes after it carried out an
action (whoever proposed it), so that cooldowns and pending heals see every change. Policies
take ``now`` from the context and never read a clock, so a scenario replays the same way.

The caller (the NFVO's control loop or a scenario) turns actions into operations:
``scale_out``/``scale_in`` into one step of the VNF's scaling aspect (``nfvo.scale(ns, vnf,
"out")``, ``nfvo.scale(ns, vnf, "in", instance=action.instance)``), ``heal`` into
``nfvo.heal(ns, instance, mode)``; ``give_up`` is only recorded (a healer stopped healing a
VNF, see ``LivenessHealer``). Each action carries ``observed_at``, the time (the clock of
``ctx.now``) at which the condition that led to it began, so that the caller can split a
reaction into detection and decision (``decide_s = decided_at - observed_at``).

Policies may be evaluated on one thread and notified on another: each keeps its state
under a lock.

A researcher adds a policy by writing one class and, to pick it by name from a scenario's
parameters, adding it to ``POLICIES``; ``CompositePolicy`` runs several side by side.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mano.errors import MANOError
from mano.monitoring import TimeSeriesStore

SCALE_KINDS = ("scale_out", "scale_in")
ACTION_KINDS = SCALE_KINDS + ("heal", "give_up")
HEAL_MODES = ("restart", "recreate")


class PolicyError(MANOError, ValueError):
    """A policy was named or configured wrongly: the message says what would be valid."""


@dataclass(frozen=True)
class Action:
    """One change a policy proposes: scale a VNF out or in, heal one of its instances, or
    give up healing it (``give_up``: record it, do nothing else).

    ``observed_at`` is when the condition behind the action began, on the clock of
    ``PolicyContext.now`` (None if the policy cannot tell); each policy's docstring says
    which moment it is."""

    kind: str                      # one of ACTION_KINDS
    ns: str
    vnf: str                       # VNFD id
    instance: str | None = None    # the instance to heal, the one a scale-in should remove,
    #                                or the one whose heal was given up
    mode: str | None = None        # heal mode: "restart" | "recreate"
    reason: str = ""
    observed_at: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise PolicyError(f"action kind must be one of {', '.join(ACTION_KINDS)}, "
                              f"not {self.kind!r}")
        if self.kind == "heal" and not self.instance:
            raise PolicyError(f"a heal action on {self.ns}/{self.vnf} needs an instance")
        if self.kind == "heal" and self.mode not in (None,) + HEAL_MODES:
            raise PolicyError(f"heal mode must be one of {', '.join(HEAL_MODES)}, "
                              f"not {self.mode!r}")


@dataclass
class PolicyContext:
    """What a policy sees at one evaluation: the time, the metrics and the live topology."""

    now: float
    metrics: TimeSeriesStore
    ns: dict[str, dict[str, list[str]]]    # ns id -> vnfd id -> live instance ids, oldest first
    vnfds: dict[str, Any]                  # vnfd id -> VNFD (or anything with .scaling/.healing)
    chains: dict[str, list[str]] = field(default_factory=dict)  # ns id -> vnfd ids in order

    def chain(self, ns_id: str) -> list[str]:
        """The NS's VNFs in chain order (the order of ``ns`` when no chain is given)."""
        return list(self.chains.get(ns_id) or self.ns.get(ns_id, {}))


@runtime_checkable
class Policy(Protocol):
    """Anything with a name that turns a context into a list of actions."""

    name: str

    def evaluate(self, ctx: PolicyContext) -> list[Action]: ...


def notify(policy: Policy, action: Action, now: float) -> None:
    """Tell ``policy`` that ``action`` was carried out at ``now``, if it wants to know."""
    hook = getattr(policy, "notify", None)
    if hook is not None:
        hook(action, now)


class NoOpPolicy:
    """Never acts: the baseline to compare other policies against."""

    name = "noop"

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        return []


def _instance_window(ctx: PolicyContext, metric: str, since: float,
                     iid: str) -> list[tuple[float, float]]:
    """The (t, value) points of one instance's metric recorded at or after ``since``."""
    pts = [p for s in ctx.metrics.series(metric, instance=iid).values() for p in s
           if since <= p[0] <= ctx.now]
    return sorted(pts)


def _aggregate(per_instance: dict[str, list[tuple[float, float]]],
               mean: bool) -> list[tuple[float, float]]:
    """Merge instance series into one: after each sample, once every instance has reported,
    (its time, the mean (or sum) of each instance's latest value)."""
    events = sorted((t, iid, v) for iid, pts in per_instance.items() for t, v in pts)
    last: dict[str, float] = {}
    out: list[tuple[float, float]] = []
    for t, iid, v in events:
        last[iid] = v
        if len(last) == len(per_instance):
            total = sum(last.values())
            out.append((t, total / len(last) if mean else total))
    return out


def _run_start(points: list[tuple[float, float]], beyond: Callable[[float], bool],
               floor: float) -> float | None:
    """The time of the first point of the run of points, after ``floor`` and ending with
    the last point, for which ``beyond(value)`` holds (None if the last does not)."""
    start = None
    for t, v in reversed(points):
        if t <= floor or not beyond(v):
            break
        start = t
    return start


class ThresholdScaler:
    """Scale a VNF out when its metric stays above ``high`` for a whole window, in when it
    stays below ``low``, within the VNFD's [min, max] and with a cooldown after any action.

    Units: the thresholds are in the metric's unit. The default metric, ``cpu_util``, is the
    fraction of each instance's vCPU quota in use (0-1: CPU cores used / flavour ``vcpu``,
    see ``mano.monitoring``), so ``high=0.7`` means "instances use 70 % of their quota"
    whatever their flavour. ``cpu_cores`` gives absolute cores instead.

    The metric is averaged over the VNF's instances (``per_instance=True``, e.g. CPU
    utilisation per instance) or summed (``per_instance=False``, e.g. the VNF's total
    packets/s). Hysteresis comes from the gap between ``high`` and ``low`` and from
    requiring every aggregated sample in the last ``window_s`` (at least two) to be beyond
    the threshold. A scale-in names the newest instance (``Action.instance``).

    ``observed_at`` is the crossing: the time of the first aggregated sample of the run of
    samples beyond the threshold that ends with the window, counting only samples after
    the VNF's last action (own or notified); so ``decide_s`` is at least the window.
    """

    def __init__(self, metric: str = "cpu_util", high: float = 0.7, low: float = 0.2,
                 window_s: float = 3.0, cooldown_s: float = 10.0, per_instance: bool = True):
        if not low < high:
            raise PolicyError(f"threshold scaler needs low < high, got low={low} high={high}")
        if window_s <= 0 or cooldown_s < 0:
            raise PolicyError(f"threshold scaler needs window_s > 0 and cooldown_s >= 0, "
                              f"got window_s={window_s} cooldown_s={cooldown_s}")
        self.metric, self.high, self.low = metric, high, low
        self.window_s, self.cooldown_s, self.per_instance = window_s, cooldown_s, per_instance
        self.name = f"threshold({metric} {low}..{high})"
        self._last_action: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def notify(self, action: Action, now: float) -> None:
        key = (action.ns, action.vnf)
        with self._lock:
            self._last_action[key] = max(now, self._last_action.get(key, now))

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        actions = []
        with self._lock:
            for ns_id, vnfs in ctx.ns.items():
                for vnf_id, iids in vnfs.items():
                    act = self._decide(ctx, ns_id, vnf_id, iids)
                    if act is not None:
                        self._last_action[(ns_id, vnf_id)] = ctx.now
                        actions.append(act)
        return actions

    def _decide(self, ctx: PolicyContext, ns_id: str, vnf_id: str,
                iids: list[str]) -> Action | None:
        vnfd = ctx.vnfds.get(vnf_id)
        if vnfd is None or not iids:
            return None
        last = self._last_action.get((ns_id, vnf_id))
        if last is not None and ctx.now - last < self.cooldown_s:
            return None
        since = ctx.now - self.window_s
        # Instances that have not reported yet (just created) are left out rather than
        # counted as zero, which would pull the average down and invite a scale-in.
        series = {i: pts for i in iids if (pts := _instance_window(ctx, self.metric, since, i))}
        agg_pts = _aggregate(series, mean=self.per_instance)
        agg = [v for _, v in agg_pts]
        if len(agg) < 2:
            return None
        lo, hi = vnfd.scaling.min, vnfd.scaling.max
        step = getattr(vnfd.scaling, "step", 1)
        n, what = len(iids), "per instance" if self.per_instance else "total"
        avg = sum(agg) / len(agg)
        if min(agg) > self.high and n + step <= hi:
            return Action("scale_out", ns_id, vnf_id, reason=(
                f"{self.metric} {what} {avg:.3g} (min {min(agg):.3g}) > {self.high} for "
                f"{self.window_s}s ({len(agg)} samples); {n} -> {n + step} of max {hi}"),
                observed_at=self._crossing(ctx, iids, lambda v: v > self.high, last,
                                           agg_pts[0][0]))
        if max(agg) < self.low and n - step >= lo:
            return Action("scale_in", ns_id, vnf_id, instance=iids[-1], reason=(
                f"{self.metric} {what} {avg:.3g} (max {max(agg):.3g}) < {self.low} for "
                f"{self.window_s}s ({len(agg)} samples); {n} -> {n - step} of min {lo}"),
                observed_at=self._crossing(ctx, iids, lambda v: v < self.low, last,
                                           agg_pts[0][0]))
        return None

    def _crossing(self, ctx: PolicyContext, iids: list[str], beyond: Callable[[float], bool],
                  last: float | None, first_in_window: float) -> float:
        """When the aggregated metric crossed the threshold (see the class docstring):
        never later than the window's first sample."""
        floor = float("-inf") if last is None else last
        series = {i: pts for i in iids if (pts := _instance_window(ctx, self.metric, floor, i))}
        start = _run_start(_aggregate(series, self.per_instance), beyond, floor)
        return first_in_window if start is None else min(start, first_in_window)


PENDING_HEAL_S = 5.0
HEALTHY_RESET_S = 30.0
DEFAULT_MAX_RESTARTS = 3


def _heal_mode(vnfds: dict[str, Any], vnf_id: str, mode: str | None) -> str:
    """The given mode, else the VNFD's healing mode, else restart."""
    if mode:
        return mode
    healing = getattr(vnfds.get(vnf_id), "healing", None)
    return getattr(healing, "mode", None) or "restart"


def _max_restarts(vnfds: dict[str, Any], vnf_id: str) -> int:
    """The VNFD's ``healing.max_restarts`` (3 if it has none)."""
    healing = getattr(vnfds.get(vnf_id), "healing", None)
    n = getattr(healing, "max_restarts", None)
    return DEFAULT_MAX_RESTARTS if n is None else int(n)


def _alive_points(ctx: PolicyContext, iid: str) -> list[tuple[float, float]]:
    return sorted(p for s in ctx.metrics.series("alive", instance=iid).values() for p in s
                  if p[0] <= ctx.now)


class _Healer:
    """What the healers share: pending heals and the ``healing.max_restarts`` rule.

    Pending: when each instance was last healed (by this healer or, through ``notify``, by
    anyone), so that a heal in progress is not asked for twice.

    The ``max_restarts`` rule (``n`` = the VNFD's ``healing.max_restarts``, default 3):

    - an instance is restarted at most ``n`` times (a restart keeps its id; restarts are
      counted per instance id and never forgotten); its next heal is a ``recreate``;
    - a VNF of an NS is recreated at most ``n`` times within one *run of failures*; the
      heal that would be its ``n + 1``-th recreate becomes, once, ``Action("give_up", ns,
      vnf, instance, reason=...)``, and the healer proposes no more heals for that VNF of
      that NS. ``n = 0`` means: never restart, give up at the first failure.
    - a run of failures ends (the recreate count goes back to 0) when every instance of
      the VNF has been alive (``alive == 1`` samples only) for ``healthy_reset_s``
      seconds and no heal of the VNF was made in that time.

    ``max_restarts`` (an int >= 0), when given, replaces every VNFD's value for this
    healer: a soak that injects faults every few seconds for hours sets it high, so that
    healing never stops; PolicyError if it is not an int >= 0.

    Counted are the heals this healer proposes (when it proposes them) and the heals and
    give-ups reported with ``notify`` (by whoever proposed them). A ``notify`` of a heal of
    an instance this healer proposed a heal for, and has not yet been told about, is that
    heal carried out: it is not counted twice, and if the caller carried it out in another
    mode (e.g. recreate because the node is down) the count follows the mode reported.
    A proposal the caller never carries out still counts.
    """

    def __init__(self, healthy_reset_s: float = HEALTHY_RESET_S,
                 max_restarts: int | None = None):
        if healthy_reset_s < 0:
            raise PolicyError(f"healer needs healthy_reset_s >= 0, got {healthy_reset_s}")
        if max_restarts is not None and (isinstance(max_restarts, bool) or
                                         not isinstance(max_restarts, int) or max_restarts < 0):
            raise PolicyError(f"healer needs max_restarts to be an integer >= 0 (or unset: "
                              f"each VNFD's healing.max_restarts), got {max_restarts!r}")
        self.healthy_reset_s = healthy_reset_s
        self.max_restarts = max_restarts
        self._pending: dict[str, float] = {}                 # instance -> last heal
        self._restarts: dict[str, int] = {}                  # instance -> restarts
        self._recreates: dict[tuple[str, str], int] = {}     # (ns, vnf) -> in this run
        self._last_heal: dict[tuple[str, str], float] = {}   # (ns, vnf) -> last heal
        self._given_up: set[tuple[str, str]] = set()
        self._unconfirmed: dict[str, Action] = {}            # own proposals, by instance
        self._vnfds: dict[str, Any] = {}                     # from the last context
        self._lock = threading.RLock()

    def restarts(self, instance_id: str) -> int:
        """How many restarts of ``instance_id`` this healer has counted."""
        with self._lock:
            return self._restarts.get(instance_id, 0)

    def recreates(self, ns_id: str, vnf_id: str) -> int:
        """Recreates of the VNF counted in its current run of failures."""
        with self._lock:
            return self._recreates.get((ns_id, vnf_id), 0)

    def given_up(self, ns_id: str, vnf_id: str) -> bool:
        """Whether this healer gave up on the VNF of the NS."""
        with self._lock:
            return (ns_id, vnf_id) in self._given_up

    def notify(self, action: Action, now: float) -> None:
        with self._lock:
            key = (action.ns, action.vnf)
            if action.kind == "give_up":
                self._given_up.add(key)
                return
            if action.kind != "heal" or not action.instance:
                return
            self._pending[action.instance] = now
            self._last_heal[key] = max(now, self._last_heal.get(key, now))
            own = self._unconfirmed.pop(action.instance, None)
            if own is None:
                self._count(action, +1)
            elif self._mode_of(own) != self._mode_of(action):
                self._count(own, -1)
                self._count(action, +1)

    def _mode_of(self, action: Action) -> str:
        return _heal_mode(self._vnfds, action.vnf, action.mode)

    def _count(self, action: Action, sign: int) -> None:
        if self._mode_of(action) == "restart":
            d, k = self._restarts, action.instance or ""
            d[k] = max(0, d.get(k, 0) + sign)
        else:
            r, key = self._recreates, (action.ns, action.vnf)
            r[key] = max(0, r.get(key, 0) + sign)

    def _begin(self, ctx: PolicyContext) -> None:
        """At the start of an evaluation: remember the VNFDs, end runs of failures of VNFs
        that have been healthy for ``healthy_reset_s``."""
        self._vnfds = dict(ctx.vnfds)
        for key, n in list(self._recreates.items()):
            iids = ctx.ns.get(key[0], {}).get(key[1])
            if not n or not iids:
                continue
            healthy_since = self._last_heal.get(key, float("-inf"))
            for iid in iids:
                up = _run_start(_alive_points(ctx, iid), lambda v: v == 1, float("-inf"))
                if up is None:
                    break
                healthy_since = max(healthy_since, up)
            else:
                if ctx.now - healthy_since >= self.healthy_reset_s:
                    self._recreates[key] = 0

    def _propose(self, ctx: PolicyContext, ns_id: str, vnf_id: str, iid: str, mode: str,
                 reason: str, observed_at: float | None) -> Action | None:
        """The heal of ``iid`` this healer wants, after the ``max_restarts`` rule: the heal
        in ``mode``, a recreate instead of a restart, a give-up, or None (given up)."""
        key = (ns_id, vnf_id)
        if key in self._given_up:
            return None
        limit = self.max_restarts if self.max_restarts is not None else \
            _max_restarts(ctx.vnfds, vnf_id)
        done = self._restarts.get(iid, 0)
        if mode == "restart" and done >= limit:
            mode = "recreate"
            reason += f"; restarted {done} times (max_restarts {limit}): recreate"
        recreated = self._recreates.get(key, 0)
        if mode == "recreate" and recreated >= limit:
            self._given_up.add(key)
            return Action("give_up", ns_id, vnf_id, iid, reason=(
                f"{reason}; {ns_id}/{vnf_id} recreated {recreated} times in this run of "
                f"failures (max_restarts {limit}): giving up"), observed_at=observed_at)
        action = Action("heal", ns_id, vnf_id, iid, mode, reason, observed_at)
        self._count(action, +1)
        self._unconfirmed[iid] = action
        self._pending[iid] = ctx.now
        self._last_heal[key] = ctx.now
        return action


class LivenessHealer(_Healer):
    """Heal an instance whose latest ``alive`` sample is 0 and has been 0 for ``grace_s``,
    in the given mode or the VNFD's; an instance is not healed again within 5 s unless it
    fails anew after the heal. ``healing.max_restarts`` is enforced as ``_Healer`` says
    (restart, then recreate, then give up).

    ``observed_at`` is the time of the first sample of the instance's current run of
    ``alive == 0`` samples."""

    def __init__(self, grace_s: float = 0.0, mode: str | None = None,
                 healthy_reset_s: float = HEALTHY_RESET_S, max_restarts: int | None = None):
        if grace_s < 0:
            raise PolicyError(f"liveness healer needs grace_s >= 0, got {grace_s}")
        if mode not in (None,) + HEAL_MODES:
            raise PolicyError(f"heal mode must be 'restart' or 'recreate', not {mode!r}")
        super().__init__(healthy_reset_s, max_restarts)
        self.grace_s, self.mode = grace_s, mode
        self.name = "liveness"

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        actions = []
        with self._lock:
            self._begin(ctx)
            for ns_id, vnfs in ctx.ns.items():
                for vnf_id, iids in vnfs.items():
                    for iid in iids:
                        since = self._down_since(ctx, iid)
                        if since is None or ctx.now - since < self.grace_s:
                            continue
                        pend = self._pending.get(iid)
                        # a run of zeros that began after the last heal is a new failure (a
                        # restarted instance keeps its id); an older one is that heal's
                        # stale view
                        if pend is not None and since <= pend and \
                                ctx.now - pend < PENDING_HEAL_S:
                            continue
                        act = self._propose(
                            ctx, ns_id, vnf_id, iid, _heal_mode(ctx.vnfds, vnf_id, self.mode),
                            f"{iid} not alive for {ctx.now - since:.3g}s "
                            f"(grace {self.grace_s}s)", since)
                        if act is not None:
                            actions.append(act)
        return actions

    @staticmethod
    def _down_since(ctx: PolicyContext, iid: str) -> float | None:
        """When the instance's current run of ``alive == 0`` samples began (None if alive)."""
        return _run_start(_alive_points(ctx, iid), lambda v: v == 0, float("-inf"))


class DataPathHealer(_Healer):
    """Heal an instance that is alive but not forwarding: when the NS loses more than
    ``loss_pct`` over the window and every instance is alive, the first instance in chain
    order that forwards < 1 pps while the VNF before it (or the ingress) forwards is hung.
    ``healing.max_restarts`` is enforced as ``_Healer`` says.

    ``observed_at`` is the time of the first ``loss_pct`` sample of the NS above
    ``loss_pct`` in the run of such samples that reaches into the window (samples after
    the NS's last heal only), or the window's first sample above it."""

    IDLE_PPS = 1.0

    def __init__(self, loss_pct: float = 50.0, window_s: float = 1.0, mode: str = "recreate",
                 healthy_reset_s: float = HEALTHY_RESET_S, max_restarts: int | None = None):
        if window_s <= 0:
            raise PolicyError(f"data-path healer needs window_s > 0, got {window_s}")
        if mode not in HEAL_MODES:
            raise PolicyError(f"heal mode must be 'restart' or 'recreate', not {mode!r}")
        super().__init__(healthy_reset_s, max_restarts)
        self.loss_pct, self.window_s, self.mode = loss_pct, window_s, mode
        self.name = "datapath"

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        actions = []
        with self._lock:
            self._begin(ctx)
            for ns_id, vnfs in ctx.ns.items():
                act = self._check_ns(ctx, ns_id, vnfs)
                if act is not None:
                    actions.append(act)
        return actions

    def _rate(self, ctx: PolicyContext, iid: str, since: float) -> float | None:
        """Mean packets/s of one instance over the window (None without samples)."""
        pts = _instance_window(ctx, "packets_rate", since, iid)
        return sum(v for _, v in pts) / len(pts) if pts else None

    def _loss_began(self, ctx: PolicyContext, ns_id: str, vnfs: dict[str, list[str]],
                    since: float) -> float | None:
        """``observed_at`` (see the class docstring)."""
        pts = sorted(p for s in ctx.metrics.series("loss_pct", ns=ns_id).values() for p in s
                     if p[0] <= ctx.now)
        above = [t for t, v in pts if t >= since and v > self.loss_pct]
        floor = max((self._last_heal.get((ns_id, v), float("-inf")) for v in vnfs),
                    default=float("-inf"))
        start = _run_start(pts, lambda v: v > self.loss_pct, floor)
        if not above:
            return start
        return above[0] if start is None else min(start, above[0])

    def _check_ns(self, ctx: PolicyContext, ns_id: str,
                  vnfs: dict[str, list[str]]) -> Action | None:
        since = ctx.now - self.window_s
        losses = ctx.metrics.window("loss_pct", since, ns=ns_id)
        if not losses or sum(losses) / len(losses) <= self.loss_pct:
            return None
        loss = sum(losses) / len(losses)
        # A dead instance is the liveness healer's business; with one down, downstream
        # silence says nothing about a hang.
        if any(ctx.metrics.latest("alive", instance=i) != 1
               for iids in vnfs.values() for i in iids):
            return None
        upstream_pps: float | None = None     # None: the ingress, which always qualifies
        for vnf_id in ctx.chain(ns_id):
            rates = {i: self._rate(ctx, i, since) for i in vnfs.get(vnf_id, [])}
            if upstream_pps is None or upstream_pps > 0:
                for iid, r in rates.items():
                    if r is None or r >= self.IDLE_PPS:
                        continue
                    pend = self._pending.get(iid)
                    if pend is not None and ctx.now - pend < PENDING_HEAL_S:
                        return None
                    before = ("ingress" if upstream_pps is None
                              else f"upstream {upstream_pps:.3g} pps")
                    return self._propose(
                        ctx, ns_id, vnf_id, iid, self.mode,
                        f"NS loss {loss:.3g}% > {self.loss_pct}% over {self.window_s}s; "
                        f"{iid} alive but forwards {r:.3g} pps ({before})",
                        self._loss_began(ctx, ns_id, vnfs, since))
            upstream_pps = sum(r for r in rates.values() if r is not None)
        return None


class CompositePolicy:
    """Run several policies and concatenate their actions, keeping the first action per
    instance (heals and give-ups) or per VNF (scaling); ``notify`` reaches every member.
    A give-up is final and needs no carrying out: the other members are told at once, and
    heals of that VNF proposed in the same evaluation are dropped."""

    def __init__(self, *policies: Policy):
        self.policies = list(policies)
        self.name = "+".join(p.name for p in policies) or "noop"

    def notify(self, action: Action, now: float) -> None:
        for p in self.policies:
            notify(p, action, now)

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        seen: set[tuple[str, str, str]] = set()
        out: list[Action] = []
        for p in self.policies:
            for a in p.evaluate(ctx):
                key = (("heal", a.ns, a.instance or "") if a.kind in ("heal", "give_up")
                       else ("scale", a.ns, a.vnf))
                if key not in seen:
                    seen.add(key)
                    out.append(a)
                if a.kind == "give_up":
                    for other in self.policies:
                        if other is not p:
                            notify(other, a, ctx.now)
        gave_up = {(a.ns, a.vnf) for a in out if a.kind == "give_up"}
        return [a for a in out if a.kind != "heal" or (a.ns, a.vnf) not in gave_up]


POLICIES: dict[str, type] = {
    "noop": NoOpPolicy,
    "threshold": ThresholdScaler,
    "liveness": LivenessHealer,
    "datapath": DataPathHealer,
}


def make_policy(name: str, **params: Any) -> Policy:
    """Build the policy registered as ``name`` with ``params``; names the known ones if not."""
    cls = POLICIES.get(name)
    if cls is None:
        raise PolicyError(f"unknown policy {name!r}; known policies: {', '.join(sorted(POLICIES))}")
    try:
        return cls(**params)
    except TypeError as e:
        raise PolicyError(f"policy {name!r}: {e}") from e
