"""The VIM: compute resources of the NFVI, placement, and events about both.

- ``resources``: one ``ResourcePool`` per compute node (vCPU, memory, disk; up/down).
- ``placement``: the strategies that choose a node (first-fit, best-fit, latency-aware,
  anti-affinity) behind one ``PlacementStrategy`` interface.
- ``VIM`` (here): holds the pools and a strategy, places and releases instances, tracks
  node health, and reports, as in the ETSI split:
  resource changes (``ResourceEvent``: allocated / released) to "resource" subscribers (the
  VNFM), infrastructure status (``mano.nfvi.InfraEvent``: compute_down / compute_up, and any
  other event the NFVI driver reports) to "infra" subscribers (the NFVO).

The VIM books resources; it does not create hosts (the VNFM asks the NFVI driver for that
once a node is chosen). Every event is stamped with the VIM's one clock (``time.monotonic``
by default, injectable). Subscribers are called after the VIM's state has changed and its
lock is released, in subscription order; an exception in a subscriber propagates (loud).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mano.errors import ConflictError, NotFoundError, PlacementError
from mano.nfvi import ComputeNodeInfo, Flavour, InfraEvent, NfviDriver
from mano.vim.placement import (
    STRATEGIES,
    AntiAffinity,
    BestFit,
    FirstFit,
    LatencyAware,
    NodeState,
    PlacementContext,
    PlacementRequest,
    PlacementStrategy,
    allowed_nodes,
    graph_distance,
    make_strategy,
)
from mano.vim.resources import Allocation, ResourcePool, Resources, natural_key

__all__ = [
    "STRATEGIES",
    "VIM",
    "Allocation",
    "AntiAffinity",
    "BestFit",
    "FirstFit",
    "LatencyAware",
    "NodeState",
    "PlacementContext",
    "PlacementRequest",
    "PlacementStrategy",
    "ResourceEvent",
    "ResourcePool",
    "Resources",
    "allowed_nodes",
    "graph_distance",
    "make_strategy",
]

SUBSCRIPTION_KINDS = ("resource", "infra")


@dataclass(frozen=True)
class ResourceEvent:
    kind: str              # "allocated" | "released"
    instance_id: str
    node: str
    flavour: Flavour
    time: float
    vnf_id: str = ""


class VIM:
    """Compute nodes, their allocations, a placement strategy and an event bus.

    ``place`` chooses and allocates under one lock, so two concurrent placements never
    over-commit a node. ``node_down`` keeps the failed node's allocations (their instances
    are lost; whoever heals them calls ``release``) and returns their instance ids.
    """

    def __init__(self, nodes: Iterable[ComputeNodeInfo],
                 strategy: PlacementStrategy | str = "first_fit", *,
                 clock: Callable[[], float] = time.monotonic,
                 distance: Callable[[str, str], float] | None = None):
        self._pools: dict[str, ResourcePool] = {}
        for info in nodes:
            if info.name in self._pools:
                raise ConflictError(f"compute node {info.name} is listed twice")
            self._pools[info.name] = ResourcePool(info)
        self._where: dict[str, str] = {}          # instance id -> node
        self._names = sorted(self._pools, key=natural_key)
        # every node's snapshot in node order, taken again only where the node changed
        # (its pool reports allocations, _set_up its state): placement looks at every
        # node, and most have not changed since the last placement
        self._list: list[NodeState] | None = None
        self._index = {n: i for i, n in enumerate(self._names)}
        self._dirty: set[str] = set()
        for pool in self._pools.values():
            pool.on_change = self._dirty.add
        self.strategy = strategy                  # type: ignore[assignment]  (setter)
        self.clock = clock
        self.distance = distance
        self._subs: dict[str, list[Callable]] = {k: [] for k in SUBSCRIPTION_KINDS}
        self._lock = threading.RLock()

    @classmethod
    def from_driver(cls, driver: NfviDriver, strategy: PlacementStrategy | str = "first_fit",
                    *, clock: Callable[[], float] = time.monotonic) -> VIM:
        """A VIM over ``driver``'s compute nodes, its switch distances, and its events."""
        vim = cls(driver.compute_nodes(), strategy, clock=clock,
                  distance=driver.switch_distance)
        driver.subscribe(vim.on_infra_event)
        return vim

    # -- strategy --------------------------------------------------------------------------
    @property
    def strategy(self) -> PlacementStrategy:
        return self._strategy

    @strategy.setter
    def strategy(self, value: PlacementStrategy | str) -> None:
        self._strategy = make_strategy(value) if isinstance(value, str) else value

    def context(self, **neighbours: str | None) -> PlacementContext:
        """A placement context with this VIM's distances; ``neighbours`` are
        prev_switch, next_switch, ingress_switch, egress_switch."""
        if self.distance is None:
            return PlacementContext(**neighbours)
        return PlacementContext(distance=self.distance, **neighbours)

    # -- events ----------------------------------------------------------------------------
    def subscribe(self, kind: str, callback: Callable) -> None:
        """``kind`` "resource" receives ``ResourceEvent``s, "infra" ``InfraEvent``s."""
        if kind not in self._subs:
            raise ValueError(f"unknown event kind {kind!r}; known: "
                             f"{', '.join(SUBSCRIPTION_KINDS)}")
        self._subs[kind].append(callback)

    def _emit(self, kind: str, events: list) -> None:
        for ev in events:
            for cb in list(self._subs[kind]):
                cb(ev)

    # -- views -----------------------------------------------------------------------------
    def _pool(self, name: str) -> ResourcePool:
        try:
            return self._pools[name]
        except KeyError:
            raise NotFoundError(f"unknown compute node {name!r}; known: "
                                f"{', '.join(self.node_names())}") from None

    def node_names(self) -> list[str]:
        return list(self._names)

    @staticmethod
    def _snapshot(p: ResourcePool) -> NodeState:
        return NodeState(p.name, p.switch, p.capacity, p.free, p.up, p.instances())

    def _snapshots(self) -> list[NodeState]:
        """The snapshot list, brought up to date (call holding ``self._lock``)."""
        if self._list is None:
            self._list = [self._snapshot(self._pools[n]) for n in self._names]
        else:
            for n in self._dirty:
                self._list[self._index[n]] = self._snapshot(self._pools[n])
        self._dirty.clear()
        return self._list

    def nodes(self) -> list[NodeState]:
        """Snapshots of every compute node, in natural name order."""
        with self._lock:
            return list(self._snapshots())

    def node(self, name: str) -> NodeState:
        with self._lock:
            self._pool(name)                      # NotFoundError naming the known nodes
            return self._snapshots()[self._index[name]]

    def where(self, instance_id: str) -> str:
        """The compute node holding ``instance_id``."""
        with self._lock:
            try:
                return self._where[instance_id]
            except KeyError:
                raise NotFoundError(f"no resources allocated for instance "
                                    f"{instance_id!r}") from None

    def allocations(self) -> list[Allocation]:
        with self._lock:
            return [a for n in self.node_names() for a in self._pools[n].allocations.values()]

    def active_servers(self) -> int:
        """Up compute nodes hosting at least one instance."""
        with self._lock:
            return sum(1 for p in self._pools.values() if p.up and p.instances())

    def usage(self) -> dict:
        """``{"nodes": {name: {up, switch, capacity, used, free, instances}},
        "active_servers": n}``; amounts as dicts of vcpu, memory_mb, disk_gb."""
        with self._lock:
            nodes = {}
            for n in self.node_names():
                p = self._pools[n]
                nodes[n] = {"up": p.up, "switch": p.switch, "capacity": p.capacity.as_dict(),
                            "used": p.used.as_dict(), "free": p.free.as_dict(),
                            "instances": sorted(p.instances(), key=natural_key)}
            return {"nodes": nodes, "active_servers": self.active_servers()}

    # -- placement -------------------------------------------------------------------------
    def place(self, request: PlacementRequest, ctx: PlacementContext | None = None) -> str:
        """Choose a node for ``request`` with the strategy and allocate on it, atomically.
        The request's own constraints (``anti_affinity``) restrict the nodes the strategy
        sees. Emits "allocated". Raises ``PlacementError`` if nothing fits, ``ConflictError``
        if the instance already holds resources."""
        with self._lock:
            if request.instance_id in self._where:
                raise ConflictError(f"instance {request.instance_id} already holds resources "
                                    f"on {self._where[request.instance_id]}")
            nodes = allowed_nodes(request, self.nodes())
            chosen = self._strategy.choose(request, nodes, ctx or self.context())
            if chosen not in self._pools:
                raise PlacementError(f"strategy {self._strategy.name} chose unknown compute "
                                     f"node {chosen!r} for {request.instance_id}")
            alloc = self._pools[chosen].allocate(request.instance_id, request.flavour,
                                                 request.vnf_id)
            self._where[request.instance_id] = chosen
            ev = ResourceEvent("allocated", request.instance_id, chosen, request.flavour,
                               self.clock(), request.vnf_id)
        self._emit("resource", [ev])
        return alloc.node

    def release(self, instance_id: str) -> Allocation | None:
        """Give back ``instance_id``'s resources (idempotent: None if it held none).
        Emits "released" when something was released."""
        with self._lock:
            node = self._where.pop(instance_id, None)
            if node is None:
                return None
            alloc = self._pools[node].release(instance_id)
            assert alloc is not None, f"{instance_id} recorded on {node} but not allocated there"
            ev = ResourceEvent("released", instance_id, node, alloc.flavour, self.clock(),
                               alloc.vnf_id)
        self._emit("resource", [ev])
        return alloc

    # -- node health -----------------------------------------------------------------------
    def _set_up(self, name: str, up: bool, when: float | None,
                detail: dict | None = None) -> list[str]:
        with self._lock:
            p = self._pool(name)
            affected = sorted(p.instances(), key=natural_key)
            changed = p.up != up
            p.up = up
            self._dirty.add(name)
            ev = InfraEvent("compute_up" if up else "compute_down", name,
                            self.clock() if when is None else when,
                            {**(detail or {}), "instances": affected})
        if changed:   # repeated reports of the same state are not news
            self._emit("infra", [ev])
        return affected

    def node_down(self, name: str) -> list[str]:
        """Mark ``name`` down: it is never chosen again until ``node_up``. Emits
        "compute_down" to infra subscribers (once per transition) and returns the ids of
        the instances that were on it (their allocations stay until released)."""
        return self._set_up(name, False, None)

    def node_up(self, name: str) -> list[str]:
        """Mark ``name`` up again; emits "compute_up" and returns the instance ids still
        recorded on it (the NFVO decides whether they survived)."""
        return self._set_up(name, True, None)

    def on_infra_event(self, ev: InfraEvent) -> None:
        """Subscribe this to the NFVI driver: compute node failures and recoveries update
        the pools (keeping the driver's time stamp); other events pass to infra
        subscribers as they are."""
        if ev.kind in ("compute_down", "compute_up") and ev.subject in self._pools:
            self._set_up(ev.subject, ev.kind == "compute_up", ev.time, dict(ev.detail))
        else:
            self._emit("infra", [ev])

    # -- restart ---------------------------------------------------------------------------
    def restore(self, allocations: Iterable[tuple[str, str, str, Flavour]]) -> None:
        """Replace every allocation with ``(instance_id, vnf_id, node, flavour)`` records
        (from the NFVO's database after a restart). Nodes may be down (their records are
        kept); unknown nodes, duplicates and over-commit raise and leave the VIM unchanged.
        Emits no events: nothing changed in the infrastructure."""
        records = list(allocations)
        with self._lock:
            saved = {n: p.allocations for n, p in self._pools.items()}
            saved_where = dict(self._where)
            try:
                for p in self._pools.values():
                    p.clear()
                self._where.clear()
                for instance_id, vnf_id, node, flavour in records:
                    if instance_id in self._where:
                        raise ConflictError(f"restore: instance {instance_id} listed twice "
                                            f"({self._where[instance_id]} and {node})")
                    self._pool(node).allocate(instance_id, flavour, vnf_id, allow_down=True)
                    self._where[instance_id] = node
            except Exception:
                for n, allocs in saved.items():
                    p = self._pools[n]
                    p.clear()
                    for a in allocs.values():
                        p.allocate(a.alloc_id, a.flavour, a.vnf_id, allow_down=True)
                self._where = saved_where
                raise
