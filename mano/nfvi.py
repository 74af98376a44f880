"""The NFVI driver interface: the only way ``mano`` reaches the infrastructure.

The VIM and the NFVO call a driver; ``testbed.nfvi.EmulatedDriver`` implements it on the
emulated data center (Mininet + OVS + controller), a simulated driver will implement it in
pure SimPy. Nothing here imports mininet or os_ken.

Lifecycle of an instance as the driver sees it: ``create_instance`` (a host on the compute
node's switch, cgroup limits from the flavour, the VNF program started) -> running ->
``delete_instance``. ``restart_instance`` restarts the program in place. Infrastructure
events (an instance died, a compute node failed, a link went down) reach subscribers as
``InfraEvent`` values.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ComputeNodeInfo:
    name: str
    switch: str
    vcpu: float
    memory_mb: int
    disk_gb: int
    up: bool = True


@dataclass(frozen=True)
class Flavour:
    vcpu: float          # CPU cores (fractions allowed): the cgroup CPU quota
    memory_mb: int       # the cgroup memory limit
    disk_gb: int = 0     # accounted only


@dataclass(frozen=True)
class Image:
    """A VNF program of the testbed and its parameters."""
    program: str                       # "forwarder" | "firewall" | "nat" | "lb"
    params: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str                   # unique; also the host name in the emulation
    compute_node: str
    switch: str
    ip: str
    mac: str
    alive: bool = True


@dataclass(frozen=True)
class InstanceMetrics:
    instance_id: str
    time: float                        # time.monotonic() of the reading (the one clock)
    cpu_seconds: float                 # cumulative, from cgroup accounting
    packets: int                       # forwarded by the VNF program (cumulative)
    bytes: int
    alive: bool


@dataclass(frozen=True)
class InfraEvent:
    kind: str                          # "instance_down" | "compute_down" | "compute_up" | "link_down" | "link_up"
    subject: str                       # instance id, compute node name or "a-b"
    time: float
    detail: dict = field(default_factory=dict, hash=False, compare=False)


@runtime_checkable
class NfviDriver(Protocol):
    def compute_nodes(self) -> list[ComputeNodeInfo]: ...
    def endpoints(self) -> dict[str, str]: ...          # endpoint name -> ip
    def switch_distance(self, a: str, b: str) -> float: ...  # hops (or delay) between switches

    def create_instance(self, instance_id: str, compute_node: str, flavour: Flavour,
                        image: Image) -> InstanceInfo: ...
    def delete_instance(self, instance_id: str) -> None: ...   # idempotent
    def restart_instance(self, instance_id: str) -> InstanceInfo: ...
    def list_instances(self) -> list[InstanceInfo]: ...     # what really exists (reconciliation)
    def instance_metrics(self, instance_id: str) -> InstanceMetrics: ...

    def put_graph(self, graph: dict) -> dict: ...   # controller forwarding graph (see testbed.controller)
    def delete_graph(self, name: str) -> None: ...  # idempotent
    def list_graphs(self) -> list[str]: ...
    def graph_stats(self, name: str) -> dict: ...

    def subscribe(self, callback: Callable[[InfraEvent], None]) -> None: ...

    # a probe of the data path: {"sent", "received", "loss_pct", "latency_ms", "max_gap_ms",
    # "time"} for UDP from endpoint src to dst:port
    def probe(self, src: str, dst: str, *, port: int, rate: int = 1000,
              duration: float = 1.0, src_port: int | None = None) -> dict: ...
