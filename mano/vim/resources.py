"""Resource pools: the capacity of one compute node and what is allocated on it.

A ``ResourcePool`` is built from a ``ComputeNodeInfo`` (vCPU, memory, disk, up/down). An
allocation takes a flavour's vCPU, memory and disk under an id (the VNF instance id) and
gives them back on ``release``. vCPU is fractional (a cgroup CPU quota), so it is counted
internally in integer millionths of a core: 0.1 + 0.2 is exactly 0.3 here, and a thousand
allocate/release cycles leave the pool where it started.

The pool refuses what it cannot hold, loudly: over-commit and allocations on a node that is
down raise ``PlacementError`` naming the node and the resource that is short.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from mano.errors import ConflictError, PlacementError
from mano.nfvi import ComputeNodeInfo, Flavour

_MICRO = 1_000_000   # vCPU is counted in millionths of a core


def micro_cpu(vcpu: float) -> int:
    """vCPU as an integer number of millionths of a core (exact arithmetic)."""
    return round(vcpu * _MICRO)


def _cpu_of(micro: int) -> float:
    return round(micro / _MICRO, 6)


def fmt_cpu(vcpu: float) -> str:
    """0.5 -> '0.5', 2.0 -> '2', 0.30000000000000004 -> '0.3'."""
    return f"{round(vcpu, 6):g}"


def fmt_flavour(f: Flavour) -> str:
    return f"{fmt_cpu(f.vcpu)} vCPU, {f.memory_mb} MB, {f.disk_gb} GB"


@functools.lru_cache(maxsize=65536)   # placement sorts every node's name each time
@functools.lru_cache(maxsize=1 << 16)
def natural_key(name: str) -> tuple:
    """Sort key putting n2 before n10 (digit runs compare as numbers); remembered, since
    placement sorts every node by it for each instance."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


@dataclass(frozen=True)
class Resources:
    """An amount of vCPU (cores, rounded to 1e-6), memory (MB) and disk (GB)."""
    vcpu: float
    memory_mb: int
    disk_gb: int

    def as_dict(self) -> dict:
        return {"vcpu": self.vcpu, "memory_mb": self.memory_mb, "disk_gb": self.disk_gb}


@dataclass(frozen=True)
class Allocation:
    alloc_id: str          # the VNF instance id
    node: str
    flavour: Flavour
    vnf_id: str = ""


def check_flavour(flavour: Flavour) -> None:
    if flavour.vcpu < 0 or flavour.memory_mb < 0 or flavour.disk_gb < 0:
        raise ValueError(f"flavour with a negative amount: {flavour}")


def lacking(free: Resources, flavour: Flavour) -> tuple[bool, bool, bool]:
    """Whether ``free`` lacks what ``flavour`` needs of vCPU, memory and disk."""
    return (micro_cpu(flavour.vcpu) > micro_cpu(free.vcpu), flavour.memory_mb > free.memory_mb,
            flavour.disk_gb > free.disk_gb)


def shortfalls(free: Resources, capacity: Resources, flavour: Flavour) -> list[str]:
    """What ``flavour`` needs that ``free`` lacks (``lacking``), one phrase per resource
    ([] if it fits)."""
    out = []
    cpu, memory, disk = lacking(free, flavour)
    if cpu:
        out.append(f"needs {fmt_cpu(flavour.vcpu)} vCPU, "
                   f"{fmt_cpu(free.vcpu)} of {fmt_cpu(capacity.vcpu)} free")
    if memory:
        out.append(f"needs {flavour.memory_mb} MB memory, "
                   f"{free.memory_mb} of {capacity.memory_mb} MB free")
    if disk:
        out.append(f"needs {flavour.disk_gb} GB disk, "
                   f"{free.disk_gb} of {capacity.disk_gb} GB free")
    return out


class ResourcePool:
    """The vCPU, memory and disk of one compute node, and the allocations on it.

    Lifecycle of an allocation: ``allocate(id, flavour)`` -> held -> ``release(id)``
    (idempotent). A node that goes down keeps its allocations (the instances it hosted are
    gone, but whoever heals them releases them); it accepts no new ones until it is up again.
    """

    def __init__(self, info: ComputeNodeInfo):
        if info.vcpu < 0 or info.memory_mb < 0 or info.disk_gb < 0:
            raise ValueError(f"compute node {info.name}: negative capacity {info}")
        self.name = info.name
        self.switch = info.switch
        self.up = info.up
        self._cap = (micro_cpu(info.vcpu), info.memory_mb, info.disk_gb)
        self._used = [0, 0, 0]
        self._allocs: dict[str, Allocation] = {}
        # called with the node's name after each change of its allocations (the VIM's
        # snapshot list refreshes only the nodes that changed)
        self.on_change: Callable[[str], None] | None = None

    # -- views --------------------------------------------------------------------------
    @property
    def capacity(self) -> Resources:
        c, m, d = self._cap
        return Resources(_cpu_of(c), m, d)

    @property
    def used(self) -> Resources:
        c, m, d = self._used
        return Resources(_cpu_of(c), m, d)

    @property
    def free(self) -> Resources:
        return Resources(_cpu_of(self._cap[0] - self._used[0]),
                         self._cap[1] - self._used[1], self._cap[2] - self._used[2])

    @property
    def allocations(self) -> dict[str, Allocation]:
        return dict(self._allocs)

    def instances(self) -> dict[str, str]:
        """Instance id -> VNF id of everything allocated here."""
        return {a.alloc_id: a.vnf_id for a in self._allocs.values()}

    def fits(self, flavour: Flavour) -> bool:
        return self.up and not shortfalls(self.free, self.capacity, flavour)

    # -- changes ------------------------------------------------------------------------
    def allocate(self, alloc_id: str, flavour: Flavour, vnf_id: str = "", *,
                 allow_down: bool = False) -> Allocation:
        """Take ``flavour``'s resources for ``alloc_id``; all or nothing.

        Raises ``ConflictError`` if ``alloc_id`` is already allocated here, and
        ``PlacementError`` if the node is down (unless ``allow_down``: restoring records)
        or any resource is short.
        """
        check_flavour(flavour)
        if alloc_id in self._allocs:
            raise ConflictError(f"{self.name}: {alloc_id} is already allocated here")
        if not self.up and not allow_down:
            raise PlacementError(f"{self.name}: node is down, cannot host {alloc_id}")
        short = shortfalls(self.free, self.capacity, flavour)
        if short:
            raise PlacementError(f"{self.name}: cannot host {alloc_id}: " + "; ".join(short))
        self._used[0] += micro_cpu(flavour.vcpu)
        self._used[1] += flavour.memory_mb
        self._used[2] += flavour.disk_gb
        alloc = Allocation(alloc_id, self.name, flavour, vnf_id)
        self._allocs[alloc_id] = alloc
        self._changed()
        return alloc

    def release(self, alloc_id: str) -> Allocation | None:
        """Give back ``alloc_id``'s resources; returns what was released, None if nothing."""
        alloc = self._allocs.pop(alloc_id, None)
        if alloc is not None:
            self._used[0] -= micro_cpu(alloc.flavour.vcpu)
            self._used[1] -= alloc.flavour.memory_mb
            self._used[2] -= alloc.flavour.disk_gb
            self._changed()
        return alloc

    def clear(self) -> None:
        self._allocs.clear()
        self._used = [0, 0, 0]
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.name)

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return (f"<ResourcePool {self.name} ({state}) on {self.switch}: "
                f"free {self.free}, {len(self._allocs)} allocations>")
