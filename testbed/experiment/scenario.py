"""What a scenario declares: topology, descriptors, network services, load, faults, policies.

A scenario is a plain Python file in ``scenarios/`` with a ``build(s)`` function::

    def build(s):
        s.topology("topologies/fat_tree4.yaml")
        s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
        s.instantiate("chain3", "web")
        s.load("web", profile={"type": "step", "before": 300, "after": 1500, "at": 10})
        s.fault(at=8, kind="link_down", target="auto", duration=4)
        s.policy("liveness")

``s.param(name, default)`` reads ``--set name=value`` (typed like the default). All
randomness comes from ``s.rng`` (seeded with ``--seed``), and the fault and load timeline
is computed from it before anything runs, so the same seed gives the same timeline.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError

ROOT = Path(__file__).resolve().parents[2]
FAULT_KINDS = ("link_down", "switch_down", "compute_down", "vnf_crash", "vnf_hang",
               "nfvo_restart", "controller_restart")


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
PARAM_KINDS = {bool: "true or false (also yes/no, on/off, 1/0)",
               int: "an integer (e.g. 400)", float: "a finite number (e.g. 6.0)"}


def convert_param(name: str, raw, default):
    """``raw`` (a ``--set`` value, usually a string) typed like ``default``; a
    ``TestbedError`` naming the parameter, the value and what would be valid otherwise.
    Numbers must be finite (no nan or inf)."""
    kind = type(default)
    if kind is bool:
        text = str(raw).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
    else:
        try:
            value = kind(raw)
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            if not isinstance(value, float) or math.isfinite(value):
                return value
    what = f"{kind.__name__}: {PARAM_KINDS[kind]}" if kind in PARAM_KINDS else kind.__name__
    raise TestbedError(f"--set {name}={raw!r}: expected {what}")


@dataclass
class LoadSpec:
    """Load on an NS: the profile's rate (packets/s) on each of its forwarding graphs, or on
    the one named by ``graph`` (the VNFFG id)."""

    ns: str
    profile: dict
    flows: int = 64                # UDP flows (source ports): balanced splits up to 8 instances
    port: int | None = None        # default: the graph's udp_dst, else one of its own
    graph: str | None = None


@dataclass
class FaultSpec:
    """A fault at ``at`` seconds: ``target`` is concrete or ``"auto"`` (resolved from the
    seed once the services are up, see ``testbed.experiment.targets``); ``ns`` restricts an
    ``auto`` or VNF-id target to one NS."""

    at: float
    kind: str
    target: str = "auto"
    duration: float | None = None  # None: permanent (until healed)
    ns: str | None = None


@dataclass
class StochasticFaults:
    kind: str
    targets: list[str]
    mtbf_s: float
    mttr_s: float
    ns: str | None = None


@dataclass
class Scenario:
    name: str
    seed: int
    duration: float
    params: dict = field(default_factory=dict)
    topology_path: str | None = None
    onboards: list[tuple[str, list[str], dict | None]] = field(default_factory=list)
    services: list[tuple[str, str]] = field(default_factory=list)
    service_params: dict[str, dict] = field(default_factory=dict)  # ns -> instantiation params
    loads: list[LoadSpec] = field(default_factory=list)
    faults: list[FaultSpec] = field(default_factory=list)
    stochastic: list[StochasticFaults] = field(default_factory=list)
    policies: list = field(default_factory=list)
    slas: dict = field(default_factory=dict)
    probe_rate: int = 1000           # packets/s: gaps of 2 ms are resolved (k = 2 intervals)
    probe_rates: dict[str, int] = field(default_factory=dict)   # ns -> packets/s
    warmup_s: float = 3.0            # policies start after this (start-up CPU is not load)
    settle_s: float = 5.0            # after the duration: faults undone, none new, policies on
    checks: dict = field(default_factory=dict)
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self._used_params: set[str] = set()

    # ---- declarations ------------------------------------------------------------------
    def param(self, name: str, default):
        """A parameter, overridable with ``--set name=value`` (converted to the default's type)."""
        self._used_params.add(name)
        if name not in self.params:
            self.params[name] = default
            return default
        value = convert_param(name, self.params[name], default)
        self.params[name] = value
        return value

    def topology(self, path: str) -> None:
        self.topology_path = str(path)

    def onboard(self, nsd: str, vnfds: list[str] = (), params: dict | None = None) -> None:
        """``nsd``: a path (any supported format); ``vnfds``: VNFD ids in descriptors/vnfd
        or paths, onboarded first; ``params``: input name -> value for a TOSCA NSD's
        ``topology_template.inputs`` (as a Tacker parameter file; checked at onboarding)."""
        if params is not None and not isinstance(params, dict):
            raise TestbedError(f"onboard({nsd!r}): params: expected a mapping of input "
                               f"names to values, got {type(params).__name__}")
        paths = [v if v.endswith(".yaml") else str(ROOT / "descriptors" / "vnfd" / f"{v}.yaml")
                 for v in vnfds]
        self.onboards.append((str(nsd), paths, dict(params) if params else None))

    def instantiate(self, nsd_id: str, ns: str, **params) -> None:
        """Instantiate NSD ``nsd_id`` as NS ``ns``. ``params`` are the NFVO's instantiation
        parameters (e.g. ``ingress="h2", egress="h15"`` to bind the NSD's endpoints to other
        hosts, ``protection=True``), see ``mano.nfvo.NFVO.instantiate``."""
        if ns in {n for _d, n in self.services}:
            raise TestbedError(f"NS {ns!r} is instantiated twice in this scenario")
        self.services.append((nsd_id, ns))
        if params:
            self.service_params[ns] = dict(params)

    def load(self, ns: str, profile: dict, flows: int = 64, port: int | None = None,
             graph: str | None = None) -> None:
        self.loads.append(LoadSpec(ns, dict(profile), flows, port, graph))

    def fault(self, at: float, kind: str, target: str = "auto",
              duration: float | None = None, ns: str | None = None) -> None:
        if kind not in FAULT_KINDS:
            raise TestbedError(f"fault kind {kind!r} unknown; known: {', '.join(FAULT_KINDS)}")
        if duration is not None and duration <= 0:
            raise TestbedError(f"fault {kind} at {at}: duration must be > 0 s or None "
                               f"(permanent), not {duration}")
        self.faults.append(FaultSpec(float(at), kind, target, duration, ns))

    def random_faults(self, kind: str, targets: list[str], mtbf_s: float, mttr_s: float,
                      ns: str | None = None) -> None:
        """Faults of ``kind`` on each target: exponential times between failures (mean
        mtbf_s) and to repair (mean mttr_s), drawn from the seed."""
        if kind not in FAULT_KINDS:
            raise TestbedError(f"fault kind {kind!r} unknown; known: {', '.join(FAULT_KINDS)}")
        if mtbf_s <= 0 or mttr_s <= 0:
            raise TestbedError(f"random faults {kind}: mtbf_s and mttr_s must be > 0 s, got "
                               f"{mtbf_s} and {mttr_s}")
        self.stochastic.append(StochasticFaults(kind, list(targets), mtbf_s, mttr_s, ns))

    def policy(self, policy, **params) -> None:
        """A policy object, or a name of ``mano.policies.POLICIES`` with its parameters."""
        self.policies.append((policy, params))

    def probe(self, rate: int, ns: str | None = None) -> None:
        """The probe rate (packets/s) of every NS, or of ``ns``. The probe's packets cross
        the chain like any others (a VNF with a CPU cost per packet pays for them too); at
        ``rate`` packets/s a gap of ``2000 / rate`` ms is the shortest resolved (k = 2)."""
        if not rate or rate <= 0:
            raise TestbedError(f"probe rate must be > 0 packets/s, not {rate!r}")
        if ns is None:
            self.probe_rate = int(rate)
        else:
            self.probe_rates[ns] = int(rate)

    def sla(self, ns: str, **targets) -> None:
        self.slas[ns] = targets

    def expect(self, **checks) -> None:
        """Plausibility checks on the summary (e.g. ``scale_out=True``, ``max_outage_ms=2000``,
        ``healthy_at_end=True``): a run that fails one fails."""
        self.checks.update(checks)

    # ---- the timeline -----------------------------------------------------------------------
    def timeline(self) -> list[FaultSpec]:
        """Every fault of the run in time order: scheduled ones and those drawn from the seed."""
        out = [f for f in self.faults if f.at < self.duration]
        for st in self.stochastic:
            for target in st.targets:
                t = self.rng.expovariate(1.0 / st.mtbf_s)
                while t < self.duration:
                    repair = max(0.5, self.rng.expovariate(1.0 / st.mttr_s))
                    out.append(FaultSpec(round(t, 3), st.kind, target, round(repair, 3),
                                         st.ns))
                    t += repair + self.rng.expovariate(1.0 / st.mtbf_s)
        return sorted(out, key=lambda f: (f.at, f.kind, f.target))
