"""Placement strategies: which compute node hosts a new VNF instance.

Every strategy has one method, ``choose(request, nodes, ctx) -> node name``, and sees only
snapshots (``NodeState``) and a ``PlacementContext``; it changes nothing. The VIM then
allocates on the chosen node (``VIM.place`` does both under one lock).

- ``FirstFit``: the first node with room, in natural name order (n1, n2, ..., n10).
- ``BestFit``: consolidates. Prefers nodes already hosting instances (so fewer servers are
  active), then the tightest fit: the least capacity left free after placing (the sum over
  vCPU, memory and disk of the fraction of the node's capacity left free).
- ``LatencyAware``: minimises distance(previous hop's switch, node's switch) +
  distance(node's switch, next hop's switch), i.e. the node's share of the chain's length.
  Without a previous (next) hop, the ingress (egress) endpoint's switch stands in.
- ``AntiAffinity(inner)``: never two instances of the same VNF on one node; ``inner``
  chooses among the nodes that remain.

Nodes that are down are never chosen. When nothing fits, every strategy raises the same
``PlacementError`` saying which resource is short and where. A request's own constraint
(``anti_affinity``, from the VNFD) is applied by ``allowed_nodes`` before any strategy
chooses.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import networkx as nx

from mano.errors import NotFoundError, PlacementError
from mano.nfvi import Flavour
from mano.vim.resources import (
    Resources,
    fmt_cpu,
    fmt_flavour,
    micro_cpu,
    natural_key,
    shortfalls,
)


@dataclass(frozen=True)
class PlacementRequest:
    vnf_id: str
    instance_id: str
    flavour: Flavour
    chain_position: int | None = None     # index of the VNF in its forwarding graph
    # a constraint of the VNFD (placement.anti_affinity, ETSI AntiAffinityRule): never on a
    # node that already hosts an instance of ``vnf_id``, whatever the strategy
    anti_affinity: bool = False


@dataclass(frozen=True)
class NodeState:
    """A snapshot of one compute node as strategies see it."""
    name: str
    switch: str
    capacity: Resources
    free: Resources
    up: bool
    instances: dict[str, str] = field(default_factory=dict, hash=False)  # instance -> VNF

    @property
    def active(self) -> bool:
        """Hosts at least one instance (a server that must stay powered)."""
        return bool(self.instances)

    def __post_init__(self) -> None:
        # the free vCPU in millionths of a core, once (fits runs for every node of every
        # placement)
        object.__setattr__(self, "_free_micro", micro_cpu(self.free.vcpu))
        # and its natural name key (latency-aware placement compares it between nodes)
        object.__setattr__(self, "_name_key", natural_key(self.name))

    def fits(self, flavour: Flavour) -> bool:
        """Up, with room for every resource of ``flavour`` (what ``resources.lacking`` checks)."""
        free = self.free
        return (self.up and flavour.memory_mb <= free.memory_mb and flavour.disk_gb <= free.disk_gb
                and micro_cpu(flavour.vcpu) <= self._free_micro)

    def hosts_vnf(self, vnf_id: str) -> bool:
        return vnf_id in self.instances.values()


INF = float("inf")


def _no_distance(a: str, b: str) -> float:
    return 0.0


@dataclass(frozen=True)
class PlacementContext:
    """What a strategy may know beyond the nodes: distances between switches (the NFVI
    driver's ``switch_distance``, or ``graph_distance`` over a topology) and the switches of
    the instance's neighbours in its chain."""
    distance: Callable[[str, str], float] = _no_distance
    prev_switch: str | None = None
    next_switch: str | None = None
    ingress_switch: str | None = None
    egress_switch: str | None = None

    def anchors(self) -> tuple[str | None, str | None]:
        """The switches traffic comes from and goes to (hops, else the chain's endpoints)."""
        return (self.prev_switch or self.ingress_switch,
                self.next_switch or self.egress_switch)

    def path_cost(self, switch: str) -> float:
        """Chain length through ``switch``: from the previous anchor and to the next one."""
        before, after = self.anchors()
        cost = 0.0
        if before is not None:
            cost += self.distance(before, switch)
        if after is not None:
            cost += self.distance(switch, after)
        return cost


def graph_distance(graph: nx.Graph, weight: str | None = None) -> Callable[[str, str], float]:
    """A ``distance(a, b)`` over a topology graph: hop count, or the sum of edge attribute
    ``weight`` (e.g. a delay); ``inf`` if unreachable. Shortest paths are cached per source."""
    cache: dict[str, dict[str, float]] = {}

    def distance(a: str, b: str) -> float:
        if a not in cache:
            cache[a] = dict(nx.single_source_dijkstra_path_length(graph, a, weight=weight)
                            if weight else nx.single_source_shortest_path_length(graph, a))
        return float(cache[a].get(b, float("inf")))
    return distance


@runtime_checkable
class PlacementStrategy(Protocol):
    name: str

    def choose(self, request: PlacementRequest, nodes: list[NodeState],
               ctx: PlacementContext) -> str: ...


# -- the shared part: which nodes could host it at all ---------------------------------------

def no_fit_error(request: PlacementRequest, nodes: list[NodeState]) -> PlacementError:
    """Why no node can host ``request``, resource by resource."""
    f = request.flavour
    head = f"no compute node can host {request.instance_id} ({fmt_flavour(f)})"
    ordered = sorted(nodes, key=lambda n: natural_key(n.name))
    up = [n for n in ordered if n.up]
    down = [n.name for n in ordered if not n.up]
    if not ordered:
        return PlacementError(f"{head}: there are no compute nodes")
    if not up:
        return PlacementError(f"{head}: no compute node is up ({', '.join(down)} down)")
    parts = []
    dims = [("vCPU", lambda r: micro_cpu(r.vcpu), micro_cpu(f.vcpu),
             lambda r: f"vCPU {fmt_cpu(r.vcpu)}"),
            ("memory", lambda r: r.memory_mb, f.memory_mb, lambda r: f"memory {r.memory_mb} MB"),
            ("disk", lambda r: r.disk_gb, f.disk_gb, lambda r: f"disk {r.disk_gb} GB")]
    all_ok = True
    for label, amount, need, show in dims:
        best = max(up, key=lambda n: amount(n.free))   # first in name order among equals
        if amount(best.free) >= need:
            parts.append(f"{label} ok")
        else:
            all_ok = False
            parts.append(f"largest free {show(best.free)} on {best.name}")
    if all_ok:
        # Each resource fits somewhere, but never all on one node: say what each node lacks.
        lacks = [f"{n.name} {', '.join(shortfalls(n.free, n.capacity, f))}" for n in up]
        parts = ["each resource fits somewhere but no node has all: " + "; ".join(lacks)]
    if down:
        parts.append(f"down: {', '.join(down)}")
    return PlacementError(f"{head}: " + "; ".join(parts))


def feasible(request: PlacementRequest, nodes: list[NodeState]) -> list[NodeState]:
    """The up nodes with room for ``request``, in natural name order; raises if none."""
    ok = sorted((n for n in nodes if n.fits(request.flavour)), key=lambda n: natural_key(n.name))
    if not ok:
        raise no_fit_error(request, nodes)
    return ok


def allowed_nodes(request: PlacementRequest, nodes: list[NodeState]) -> list[NodeState]:
    """The nodes ``request``'s own constraints allow: with ``anti_affinity``, those not
    hosting an instance of its VNF. Raises ``PlacementError`` when the constraint leaves
    no node with room (naming the nodes that have room but host one already)."""
    if not request.anti_affinity:
        return nodes
    allowed = [n for n in nodes if not n.hosts_vnf(request.vnf_id)]
    if not any(n.fits(request.flavour) for n in allowed):
        roomy = [n.name for n in sorted(nodes, key=lambda n: natural_key(n.name))
                 if n.fits(request.flavour)]
        if roomy:
            raise PlacementError(
                f"anti-affinity of VNF {request.vnf_id}: no compute node with room for "
                f"{request.instance_id} is free of its instances (hosting one already: "
                f"{', '.join(roomy)})")
        raise no_fit_error(request, nodes)
    return allowed


# -- the strategies --------------------------------------------------------------------------

class FirstFit:
    name = "first_fit"

    def choose(self, request: PlacementRequest, nodes: list[NodeState],
               ctx: PlacementContext) -> str:
        return feasible(request, nodes)[0].name


def leftover_fraction(node: NodeState, flavour: Flavour) -> float:
    """Sum over vCPU, memory and disk of the fraction of capacity left free after placing."""
    total = 0.0
    for cap, free, need in ((micro_cpu(node.capacity.vcpu), micro_cpu(node.free.vcpu),
                             micro_cpu(flavour.vcpu)),
                            (node.capacity.memory_mb, node.free.memory_mb, flavour.memory_mb),
                            (node.capacity.disk_gb, node.free.disk_gb, flavour.disk_gb)):
        if cap > 0:
            total += (free - need) / cap
    return total


class BestFit:
    name = "best_fit"

    def choose(self, request: PlacementRequest, nodes: list[NodeState],
               ctx: PlacementContext) -> str:
        ok = feasible(request, nodes)
        return min(ok, key=lambda n: (not n.active, leftover_fraction(n, request.flavour),
                                      natural_key(n.name))).name


class LatencyAware:
    name = "latency_aware"

    def choose(self, request: PlacementRequest, nodes: list[NodeState],
               ctx: PlacementContext) -> str:
        # The node with room of least (path cost, natural name key), the first of equals
        # met: what min() by cost over feasible()'s natural name order gives, in one pass
        # that checks room only on a node that would beat the best so far (most nodes of
        # a large data center cost more than one found already).
        flavour = request.flavour
        cost: dict[str, float] = {}       # per switch: many nodes share one
        best: NodeState | None = None
        best_cost, best_name = INF, ()
        for n in nodes:
            c = cost.get(n.switch)
            if c is None:
                c = cost[n.switch] = ctx.path_cost(n.switch)
            if best is not None and (c > best_cost or
                                     (c == best_cost and n._name_key >= best_name)):
                continue
            if n.fits(flavour):
                best, best_cost, best_name = n, c, n._name_key
        if best is None:
            raise no_fit_error(request, nodes)
        return best.name


class AntiAffinity:
    """Wraps ``inner`` (default first-fit): it only sees nodes not hosting this VNF yet."""

    def __init__(self, inner: PlacementStrategy | None = None):
        self.inner = inner if inner is not None else FirstFit()
        self.name = f"anti_affinity({self.inner.name})"

    def choose(self, request: PlacementRequest, nodes: list[NodeState],
               ctx: PlacementContext) -> str:
        ok = feasible(request, nodes)
        allowed = [n for n in ok if not n.hosts_vnf(request.vnf_id)]
        if not allowed:
            raise PlacementError(
                f"anti-affinity: every node with room already hosts an instance of "
                f"{request.vnf_id}: {', '.join(n.name for n in ok)}")
        return self.inner.choose(request, allowed, ctx)


STRATEGIES: dict[str, Callable[[], PlacementStrategy]] = {
    "first_fit": FirstFit,
    "best_fit": BestFit,
    "latency_aware": LatencyAware,
    "anti_affinity": AntiAffinity,
}


def make_strategy(name: str) -> PlacementStrategy:
    """A strategy by registry name; ``anti_affinity:INNER`` wraps another one
    (``anti_affinity`` alone wraps first-fit)."""
    outer, sep, inner = name.partition(":")
    if sep and outer == "anti_affinity" and inner in STRATEGIES and inner != "anti_affinity":
        return AntiAffinity(STRATEGIES[inner]())
    if not sep and name in STRATEGIES:
        return STRATEGIES[name]()
    raise NotFoundError(f"unknown placement strategy {name!r}; known: {', '.join(STRATEGIES)} "
                     f"(and anti_affinity:<one of the others>)")
