"""Auto-scaling and auto-healing policies: plain logic that reads metrics and proposes actions.

A policy is any object with a ``name`` and ``evaluate(ctx) -> list[Action]`` (see ``Policy``);
it may also have ``notify(action, now)``, which the caller invokes after it carried out an
action (whoever proposed it), so that cooldowns and pending heals see every change. Policies
take ``now`` from the context and never read a clock, so a scenario replays the same way.

The caller (the NFVO's control loop or a scenario) turns actions into operations:
``scale_out``/``scale_in`` into one step of the VNF's scaling aspect (``nfvo.scale(ns, vnf,
"out"|"in")``) and ``heal`` into ``nfvo.heal(ns, instance, mode)``.

A researcher adds a policy by writing one class and, to pick it by name from a scenario's
parameters, adding it to ``POLICIES``; ``CompositePolicy`` runs several side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mano.errors import MANOError
from mano.monitoring import TimeSeriesStore

SCALE_KINDS = ("scale_out", "scale_in")
ACTION_KINDS = SCALE_KINDS + ("heal",)


class PolicyError(MANOError, ValueError):
    """A policy was named or configured wrongly: the message says what would be valid."""


@dataclass(frozen=True)
class Action:
    """One change a policy proposes: scale a VNF out or in, or heal one of its instances."""

    kind: str                      # one of ACTION_KINDS
    ns: str
    vnf: str                       # VNFD id
    instance: str | None = None    # the instance to heal, or the one a scale-in should remove
    mode: str | None = None        # heal mode: "restart" | "recreate"
    reason: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise PolicyError(f"action kind must be one of {', '.join(ACTION_KINDS)}, "
                              f"not {self.kind!r}")
        if self.kind == "heal" and not self.instance:
            raise PolicyError(f"a heal action on {self.ns}/{self.vnf} needs an instance")


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
               mean: bool) -> list[float]:
    """Merge instance series into one: after each sample, once every instance has reported,
    the mean (or sum) of each instance's latest value."""
    events = sorted((t, iid, v) for iid, pts in per_instance.items() for t, v in pts)
    last: dict[str, float] = {}
    out: list[float] = []
    for _t, iid, v in events:
        last[iid] = v
        if len(last) == len(per_instance):
            total = sum(last.values())
            out.append(total / len(last) if mean else total)
    return out


class ThresholdScaler:
    """Scale a VNF out when its metric stays above ``high`` for a whole window, in when it
    stays below ``low``, within the VNFD's [min, max] and with a cooldown after any action.

    The metric is averaged over the VNF's instances (``per_instance=True``, e.g. CPU cores
    per instance) or summed (``per_instance=False``, e.g. the VNF's total packets/s).
    Hysteresis comes from the gap between ``high`` and ``low`` and from requiring every
    aggregated sample in the last ``window_s`` (at least two) to be beyond the threshold.
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

    def notify(self, action: Action, now: float) -> None:
        key = (action.ns, action.vnf)
        self._last_action[key] = max(now, self._last_action.get(key, now))

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        actions = []
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
        agg = _aggregate(series, mean=self.per_instance)
        if len(agg) < 2:
            return None
        lo, hi = vnfd.scaling.min, vnfd.scaling.max
        step = getattr(vnfd.scaling, "step", 1)
        n, what = len(iids), "per instance" if self.per_instance else "total"
        avg = sum(agg) / len(agg)
        if min(agg) > self.high and n + step <= hi:
            return Action("scale_out", ns_id, vnf_id, reason=(
                f"{self.metric} {what} {avg:.3g} (min {min(agg):.3g}) > {self.high} for "
                f"{self.window_s}s ({len(agg)} samples); {n} -> {n + step} of max {hi}"))
        if max(agg) < self.low and n - step >= lo:
            return Action("scale_in", ns_id, vnf_id, instance=iids[-1], reason=(
                f"{self.metric} {what} {avg:.3g} (max {max(agg):.3g}) < {self.low} for "
                f"{self.window_s}s ({len(agg)} samples); {n} -> {n - step} of min {lo}"))
        return None


PENDING_HEAL_S = 5.0


def _heal_mode(ctx: PolicyContext, vnf_id: str, mode: str | None) -> str:
    """The given mode, else the VNFD's healing mode, else restart."""
    if mode:
        return mode
    healing = getattr(ctx.vnfds.get(vnf_id), "healing", None)
    return getattr(healing, "mode", None) or "restart"


class _Healer:
    """What the healers share: when each instance was last healed (by them or, through
    ``notify``, by anyone), so a heal in progress is not asked for twice."""

    _pending: dict[str, float]

    def notify(self, action: Action, now: float) -> None:
        if action.kind == "heal" and action.instance:
            self._pending[action.instance] = now


class LivenessHealer(_Healer):
    """Heal an instance whose latest ``alive`` sample is 0 and has been 0 for ``grace_s``,
    in the given mode or the VNFD's; an instance is not healed again within 5 s."""

    def __init__(self, grace_s: float = 0.0, mode: str | None = None):
        if grace_s < 0:
            raise PolicyError(f"liveness healer needs grace_s >= 0, got {grace_s}")
        if mode not in (None, "restart", "recreate"):
            raise PolicyError(f"heal mode must be 'restart' or 'recreate', not {mode!r}")
        self.grace_s, self.mode = grace_s, mode
        self.name = "liveness"
        self._pending: dict[str, float] = {}

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        actions = []
        for ns_id, vnfs in ctx.ns.items():
            for vnf_id, iids in vnfs.items():
                for iid in iids:
                    since = self._down_since(ctx, iid)
                    if since is None or ctx.now - since < self.grace_s:
                        continue
                    pend = self._pending.get(iid)
                    # a run of zeros that began after the last heal is a new failure (a
                    # restarted instance keeps its id); an older one is that heal's stale view
                    if pend is not None and since <= pend and ctx.now - pend < PENDING_HEAL_S:
                        continue
                    self._pending[iid] = ctx.now
                    actions.append(Action(
                        "heal", ns_id, vnf_id, iid, _heal_mode(ctx, vnf_id, self.mode),
                        f"{iid} not alive for {ctx.now - since:.3g}s (grace {self.grace_s}s)"))
        return actions

    @staticmethod
    def _down_since(ctx: PolicyContext, iid: str) -> float | None:
        """When the instance's current run of ``alive == 0`` samples began (None if alive)."""
        pts = sorted(p for s in ctx.metrics.series("alive", instance=iid).values() for p in s
                     if p[0] <= ctx.now)
        if not pts or pts[-1][1] != 0:
            return None
        since = pts[-1][0]
        for t, v in reversed(pts):
            if v != 0:
                break
            since = t
        return since


class DataPathHealer(_Healer):
    """Heal an instance that is alive but not forwarding: when the NS loses more than
    ``loss_pct`` over the window and every instance is alive, the first instance in chain
    order that forwards < 1 pps while the VNF before it (or the ingress) forwards is hung."""

    IDLE_PPS = 1.0

    def __init__(self, loss_pct: float = 50.0, window_s: float = 1.0, mode: str = "recreate"):
        if window_s <= 0:
            raise PolicyError(f"data-path healer needs window_s > 0, got {window_s}")
        if mode not in ("restart", "recreate"):
            raise PolicyError(f"heal mode must be 'restart' or 'recreate', not {mode!r}")
        self.loss_pct, self.window_s, self.mode = loss_pct, window_s, mode
        self.name = "datapath"
        self._pending: dict[str, float] = {}

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        actions = []
        for ns_id, vnfs in ctx.ns.items():
            act = self._check_ns(ctx, ns_id, vnfs)
            if act is not None:
                self._pending[act.instance or ""] = ctx.now
                actions.append(act)
        return actions

    def _rate(self, ctx: PolicyContext, iid: str, since: float) -> float | None:
        """Mean packets/s of one instance over the window (None without samples)."""
        pts = _instance_window(ctx, "packets_rate", since, iid)
        return sum(v for _, v in pts) / len(pts) if pts else None

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
                    return Action("heal", ns_id, vnf_id, iid, self.mode, (
                        f"NS loss {loss:.3g}% > {self.loss_pct}% over {self.window_s}s; "
                        f"{iid} alive but forwards {r:.3g} pps ({before})"))
            upstream_pps = sum(r for r in rates.values() if r is not None)
        return None


class CompositePolicy:
    """Run several policies and concatenate their actions, keeping the first action per
    instance (heals) or per VNF (scaling); ``notify`` reaches every member."""

    def __init__(self, *policies: Policy):
        self.policies = list(policies)
        self.name = "+".join(p.name for p in policies) or "noop"

    def notify(self, action: Action, now: float) -> None:
        for p in self.policies:
            notify(p, action, now)

    def evaluate(self, ctx: PolicyContext) -> list[Action]:
        seen: set[tuple[str, str, str]] = set()
        out = []
        for p in self.policies:
            for a in p.evaluate(ctx):
                key = (("heal", a.ns, a.instance or "") if a.kind == "heal"
                       else ("scale", a.ns, a.vnf))
                if key not in seen:
                    seen.add(key)
                    out.append(a)
        return out


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
