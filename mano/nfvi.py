"""The NFVI driver interface: the only way ``mano`` reaches the infrastructure.

The VIM and the NFVO call a driver; ``testbed.nfvi.emulated.EmulatedDriver`` implements it on the
emulated data center (Mininet + OVS + controller), a simulated driver will implement it in
pure SimPy. Nothing here imports mininet or os_ken.

Lifecycle of an instance as the driver sees it: ``create_instance`` (a host on the compute
node's switch, cgroup limits from the flavour, the VNF program started) -> running ->
``delete_instance``. ``restart_instance`` restarts the program in place. Infrastructure
events (an instance died, a compute node failed, a link went down) reach subscribers as
``InfraEvent`` values.
"""
from __future__ import annotations

import functools
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
    """Every call the NFVO, VNFM, VIM and ``Monitor`` make on the infrastructure.

    Units: CPU in cores (fractions allowed), memory in MiB, disk in GB, times in seconds of
    ``time.monotonic`` (the one clock), rates in packets/s, latencies in milliseconds.

    Errors: a driver raises only ``mano.errors`` classes across this seam, so that the MANO
    stack's own fallbacks (which catch ``MANOError``) run: ``NotFoundError`` for an unknown
    instance, graph, endpoint or compute node; ``InfrastructureError`` when the
    infrastructure failed to do what was asked (a host not created, a controller that
    refused a graph, a process that did not start); other ``MANOError`` subclasses where
    they fit (``ConflictError`` for an instance id that exists already). Calls may come
    from several threads at once (the NFVO runs operations on different NSs in parallel
    and its monitor polls meanwhile): a driver serialises what must be serialised.

    Optional attribute ``create_concurrency`` (int, default 1 when absent): how many
    ``create_instance`` calls the VNFM may make at once when it instantiates several
    instances (``VNFM.instantiate_many``); a driver sets it above 1 only if overlapping
    creates are faster and safe for it (the simulated NFVI, whose operations take modelled
    time on one worker at a time, leaves it at 1).
    """

    def compute_nodes(self) -> list[ComputeNodeInfo]:
        """Every compute node with its capacity (vcpu cores, memory MiB, disk GB), its
        switch and whether it is up."""
        ...

    def endpoints(self) -> dict[str, str]:
        """Endpoint (traffic source/sink host) name -> IPv4 address."""
        ...

    def endpoint_switches(self) -> dict[str, str]:
        """Endpoint name -> the switch it is attached to (placement puts VNFs near it)."""
        ...

    def switch_distance(self, a: str, b: str) -> float:
        """Distance between two switches (hops, or delay in ms; 0 for ``a == b``), used
        by latency-aware placement. ``NotFoundError`` for an unknown switch."""
        ...

    def create_instance(self, instance_id: str, compute_node: str, flavour: Flavour,
                        image: Image) -> InstanceInfo:
        """Create the instance on ``compute_node``, limited to ``flavour`` (cgroup CPU
        quota ``vcpu`` cores, memory ``memory_mb`` MiB), running ``image``'s program;
        return once the program runs. ``ConflictError`` if the id exists, ``NotFoundError``
        for an unknown node, ``InfrastructureError`` if it could not be made (then nothing
        of it is left)."""
        ...

    def delete_instance(self, instance_id: str) -> None:
        """Remove the instance and everything it holds; idempotent (an unknown id is not
        an error). ``InfrastructureError`` if it could not be removed, and while a
        forwarding graph names it (the controller refuses that; the instance is then kept
        whole): reprogram or delete the graph first."""
        ...

    def restart_instance(self, instance_id: str) -> InstanceInfo:
        """Restart the instance's program in place (same id, host, addresses).
        ``NotFoundError`` for an unknown id, ``InfrastructureError`` if it did not start."""
        ...

    def list_instances(self) -> list[InstanceInfo]:
        """What really exists in the infrastructure (reconciliation), with ``alive``."""
        ...

    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        """What the infrastructure holds of one instance: its ``list_instances`` item
        (with ``alive``), or None when it holds no instance ``instance_id`` (not an
        error). Costs one lookup, not a listing of every instance.
        ``InfrastructureError`` if the infrastructure cannot be asked."""
        ...

    def instance_metrics(self, instance_id: str) -> InstanceMetrics:
        """Cumulative counters of one instance: CPU seconds (cgroup accounting), packets
        and bytes forwarded, and whether its program is alive. ``NotFoundError`` for an
        unknown id."""
        ...

    def put_graph(self, graph: dict) -> dict:
        """Install or replace a forwarding graph ``{"name", "match", "hops", "protection",
        ["rewrites"]}`` (hops: ingress endpoint, instance id or list of ids per VNF,
        egress endpoint); returns the controller's answer (the paths it chose).
        ``InfrastructureError`` if the controller refused it or is unreachable."""
        ...

    def delete_graph(self, name: str) -> None:
        """Remove a forwarding graph; idempotent. ``InfrastructureError`` on failure."""
        ...

    def list_graphs(self) -> list[str]:
        """Names of the forwarding graphs installed now."""
        ...

    def graph_stats(self, name: str) -> dict:
        """The controller's counters of one graph. ``NotFoundError`` for an unknown one."""
        ...

    def subscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        """Call ``callback`` (from any thread) with every ``InfraEvent`` from now on."""
        ...

    def unsubscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        """Stop calling ``callback`` (a closed NFVO's VIM); unknown callbacks are ignored."""
        ...

    def probe(self, src: str, dst: str, *, port: int, rate: int = 1000,
              duration: float = 1.0, src_port: int | None = None) -> dict:
        """Send a UDP probe from endpoint ``src`` to ``dst``:``port`` at ``rate`` packets/s
        for ``duration`` s; returns ``{"sent", "received", "loss_pct" (0-100),
        "latency_ms" (median, or None), "max_gap_ms", "time" (monotonic s)}``.
        ``NotFoundError`` for an unknown endpoint."""
        ...


#: The driver calls that change the infrastructure (the others only read it).
CHANGES = ("create_instance", "delete_instance", "restart_instance", "put_graph",
           "delete_graph")


class CommitBeforeChange:
    """An ``NfviDriver`` seen through ``store``: before each call that changes the
    infrastructure (``CHANGES``) the store commits what its ``batch()`` left pending, so
    every record a crash recovery relies on is durable before the step it protects is
    taken. Reads go straight to the driver; so do attributes, which are read from and
    set on the driver itself (a test replacing ``driver.create_instance`` replaces the
    driver's, and the commit still comes first)."""

    def __init__(self, driver: NfviDriver, store) -> None:
        object.__setattr__(self, "_driver", driver)
        object.__setattr__(self, "_store", store)

    def __getattr__(self, name: str):
        attr = getattr(self._driver, name)
        if name not in CHANGES:
            return attr
        store = self._store

        @functools.wraps(attr)
        def committed(*args, **kwargs):
            store.commit()
            return attr(*args, **kwargs)
        return committed

    def __setattr__(self, name: str, value) -> None:
        setattr(self._driver, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._driver, name)
