"""The simulated NFVI driver: ``mano.nfvi.NfviDriver`` on the flow-level model.

Operations take modelled time (``calibration.json``): ``create_instance`` waits
``instance_create_s`` and then the instance runs; ``restart_instance`` stops it, waits
``instance_restart_s`` and starts it; ``put_graph`` hands the graph to the controller's
path logic (``testbed.controller.logic.Fabric``) at once and the switches hold its flows
``graph_program_s`` later. The waiting is done through the NFVI's baton (see ``baton.py``),
so MANO's operation occurrences move at the modelled instants.

Infrastructure events: ``instance_down`` ``instance_down_detect_s`` after an instance's
program died (the emulated driver's watcher interval), ``compute_down``/``compute_up`` at
once. Errors cross the seam as ``mano.errors`` classes, as in the emulated driver.
"""
from __future__ import annotations

import bisect
import contextlib
import ipaddress
import logging
from collections.abc import Callable

import simpy

from mano.errors import ConflictError, InfrastructureError, NotFoundError
from mano.nfvi import Flavour, Image, InfraEvent, InstanceInfo, InstanceMetrics
from testbed.controller.specs import ForwardingGraphSpec
from testbed.errors import TestbedError
from testbed.nfvi.driverbase import NoInstance, TopologyInventory, translated
from testbed.nfvi.simulated.baton import Baton
from testbed.nfvi.simulated.calibration import PROGRAMS, Calibration
from testbed.nfvi.simulated.model import FlowModel, Instance, Stream

log = logging.getLogger(__name__)
INSTANCE_NET = ipaddress.IPv4Network("10.1.0.0/16")   # addresses of VNF instances


def deny_ports(image: Image) -> frozenset:
    """The UDP destination ports a firewall image drops: its ``deny`` rules that name a
    ``dport`` (and ``proto`` udp or none). Other rule fields are not modelled."""
    if image.program != "firewall":
        return frozenset()
    out = set()
    for rule in image.params.get("rules") or []:
        if rule.get("action") == "deny" and rule.get("proto", "udp") == "udp" \
                and rule.get("dport") is not None:
            out.add(int(rule["dport"]))
    return frozenset(out)


class SimulatedDriver(TopologyInventory):
    """The NFVI of a simulated data center (implements ``mano.nfvi.NfviDriver``).

    ``env`` is the run's SimPy environment (its ``now`` is the one clock), ``baton`` lets
    operations take modelled time; every call runs on the SimPy loop's thread or on a
    worker holding the baton, so there is never more than one caller at a time."""

    def __init__(self, model: FlowModel, cal: Calibration, env: simpy.Environment,
                 baton: Baton):
        self.model, self.cal, self.env, self.baton = model, cal, env, baton
        self.topology = model.topology
        self._subscribers: list[Callable[[InfraEvent], None]] = []
        self._info: dict[str, InstanceInfo] = {}
        self._incarnation: dict[str, int] = {}
        self._next_addr = 1
        self._taken: set[str] | None = None
        self._init_inventory()
        self.controller_back_at = 0.0        # the controller restarts until then
        # list_instances' answer: the rows (InstanceInfo with alive) by id in id order,
        # made again only for the instances changed since (_changed)
        self._listed: list[InstanceInfo] | None = None
        self._rows: dict[str, InstanceInfo] = {}
        self._order: list[str] = []
        self._stale: set[str] = set()

    # ---- time -----------------------------------------------------------------------------
    def now(self) -> float:
        return float(self.env.now)

    def wait(self, seconds: float) -> None:
        """Modelled time passes for the calling operation (none outside ``call``)."""
        self.baton.sleep(self.env, seconds)

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the SimPy loop ``seconds`` from now."""
        self.env.timeout(max(0.0, seconds)).callbacks.append(lambda _ev: fn())

    def refresh(self) -> None:
        """Recompute the model's rates now (after a change)."""
        self.model.update(self.now())

    # ---- instances ---------------------------------------------------------------------------
    def _address(self) -> tuple[str, str]:
        # the endpoints' addresses (the model's, fixed with the topology): a set made once
        if self._taken is None:
            self._taken = set(self.model.ips.values())
        taken = self._taken
        while True:
            n = self._next_addr
            self._next_addr += 1
            ip = str(INSTANCE_NET.network_address + n)
            if ip not in taken:
                return ip, "02:00:00:10:" + f"{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"

    @translated
    def create_instance(self, instance_id: str, compute_node: str, flavour: Flavour,
                        image: Image) -> InstanceInfo:
        if image.program not in PROGRAMS:
            raise TestbedError(f"instance {instance_id}: unknown VNF program "
                               f"{image.program!r}; known: {', '.join(PROGRAMS)}")
        node = self.topology.computes.get(compute_node)
        if node is None:
            raise NotFoundError(f"instance {instance_id}: unknown compute node "
                                f"{compute_node!r}")
        if instance_id in self._info:
            raise ConflictError(f"instance {instance_id} exists already")
        cost_us = float(image.params.get("cost_us", 0) or 0)
        cost_s = (self.cal.base_cost_us(image.program) + cost_us) * 1e-6
        self.wait(self.cal.instance_create_s)
        if instance_id in self._info:      # made meanwhile by another operation
            raise ConflictError(f"instance {instance_id} exists already")
        ip, mac = self._address()
        self.model.advance(self.now())
        self.model.add_instance(Instance(instance_id, compute_node, node.switch,
                                         image.program, float(flavour.vcpu), cost_s,
                                         deny_ports(image)))
        info = InstanceInfo(instance_id, compute_node, node.switch, ip, mac)
        self._info[instance_id] = info
        self._incarnation[instance_id] = self._incarnation.get(instance_id, 0) + 1
        self._changed(instance_id)
        self.refresh()
        return info

    @translated
    def delete_instance(self, instance_id: str) -> None:
        if instance_id not in self._info:
            return
        users = self.model.fabric.users_of(instance_id)
        if users:       # as the controller refuses it on the emulated NFVI
            raise TestbedError(f"controller refused to remove attachment {instance_id!r}: "
                               f"it is used by forwarding graph(s) {', '.join(users)}; "
                               f"remove them first")
        # removing an instance whose program is dead (crashed, or its node failed) has no
        # program to stop: it takes instance_delete_dead_s, not instance_delete_s
        inst = self.model.instances.get(instance_id)
        dead = inst is not None and not inst.alive
        self.model.advance(self.now())
        self.model.remove_instance(instance_id)
        del self._info[instance_id]
        self._changed(instance_id)
        self._incarnation[instance_id] = self._incarnation.get(instance_id, 0) + 1
        self.refresh()
        self.wait(self.cal.instance_delete_dead_s if dead else self.cal.instance_delete_s)

    def _get(self, instance_id: str) -> Instance:
        inst = self.model.instances.get(instance_id)
        if inst is None:
            raise NoInstance(f"no instance {instance_id!r}")
        return inst

    @translated
    def restart_instance(self, instance_id: str) -> InstanceInfo:
        inst = self._get(instance_id)
        self.model.advance(self.now())
        inst.alive, inst.hung = False, False
        self._changed(instance_id)
        inc = self._incarnation[instance_id] = self._incarnation.get(instance_id, 0) + 1
        self.refresh()
        self.wait(self.cal.instance_restart_s)
        if self._incarnation.get(instance_id) != inc or instance_id not in self.model.instances:
            raise InfrastructureError(f"restart_instance: {instance_id} was removed or "
                                      f"restarted again while it restarted")
        self.model.advance(self.now())
        inst.alive = True
        self._changed(instance_id)
        self.refresh()
        return self._info[instance_id]

    @translated
    def kill_instance(self, instance_id: str) -> None:
        """Fault injection: the VNF program dies; reported ``instance_down_detect_s`` later."""
        inst = self._get(instance_id)
        if not inst.alive:
            return
        self.model.advance(self.now())
        inst.alive = False
        self._changed(instance_id)
        inc = self._incarnation.get(instance_id, 0)
        self.refresh()
        self.later(self.cal.instance_down_detect_s,
                   lambda: self._report_down(instance_id, inc))

    def _report_down(self, instance_id: str, inc: int) -> None:
        inst = self.model.instances.get(instance_id)
        if inst is None or inst.alive or self._incarnation.get(instance_id) != inc:
            return
        self._emit(InfraEvent("instance_down", instance_id, self.now(),
                              {"exit_code": -9, "compute_node": inst.node}))

    @translated
    def hang_instance(self, instance_id: str, hung: bool = True) -> None:
        """Fault injection: the instance stops forwarding (alive) or goes on."""
        inst = self._get(instance_id)
        self.model.advance(self.now())
        inst.hung = hung and inst.alive
        self.refresh()

    @translated
    def fail_compute_node(self, node: str) -> list[str]:
        """Fault injection: a compute node fails; its instances die; no placement on it
        until ``recover_compute_node``."""
        if node not in self.topology.computes:
            raise TestbedError(f"unknown compute node {node!r}")
        self._down_nodes.add(node)
        victims = sorted(i for i, inst in self.model.instances.items() if inst.node == node)
        for iid in victims:
            self.kill_instance(iid)
        self._emit(InfraEvent("compute_down", node, self.now(), {"instances": victims}))
        return victims

    @translated
    def recover_compute_node(self, node: str) -> None:
        self._down_nodes.discard(node)
        self._emit(InfraEvent("compute_up", node, self.now(), {}))

    @translated
    def list_instances(self) -> list[InstanceInfo]:
        # MANO asks for every instance often (rollbacks, heals): answered from rows made
        # again only for the instances that came, went, died or restarted (``_changed``)
        if self._listed is None:
            for iid in self._stale:
                info = self._info.get(iid)
                if info is None:
                    if self._rows.pop(iid, None) is not None:
                        del self._order[bisect.bisect_left(self._order, iid)]
                    continue
                if iid not in self._rows:
                    bisect.insort(self._order, iid)
                self._rows[iid] = InstanceInfo(**{**vars(info),
                                                  "alive": self.model.instances[iid].alive})
            self._stale.clear()
            self._listed = [self._rows[iid] for iid in self._order]
        return list(self._listed)

    @translated
    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        info = self._info.get(instance_id)
        if info is None:
            return None
        row = self._rows.get(instance_id)
        if row is None or instance_id in self._stale:
            row = InstanceInfo(**{**vars(info), "alive": self.model.instances[instance_id].alive})
        return row

    def _changed(self, instance_id: str) -> None:
        self._listed = None
        self._stale.add(instance_id)

    @translated
    def instance_metrics(self, instance_id: str) -> InstanceMetrics:
        inst = self._get(instance_id)
        cpu, packets = self.model.instance_counters(instance_id, self.now())
        return InstanceMetrics(instance_id, self.now(), cpu, int(packets),
                               int(packets * self.cal.packet_bytes), inst.alive)

    # ---- forwarding graphs ---------------------------------------------------------------------
    def _controller_up(self) -> None:
        """An operation on the controller waits while it restarts."""
        if self.controller_back_at > self.now():
            self.wait(self.controller_back_at - self.now())

    @translated
    def put_graph(self, graph: dict) -> dict:
        spec = ForwardingGraphSpec.from_dict(graph)
        self._controller_up()
        self.model.fabric.add_graph(spec)
        self.wait(self.cal.graph_program_s)
        name = spec.name
        if not self.model.fabric.has_graph(name):
            raise InfrastructureError(f"put_graph: graph {name} was removed while it was "
                                      f"programmed")
        self.model.advance(self.now())
        self.model.install(name, self.model.fabric.graph_spec(name))
        self.model.switch_over()
        self.refresh()
        return self._view(name)

    def _view(self, name: str) -> dict:
        f = self.model.fabric
        return {"spec": f.graph_spec(name).to_dict(), "paths": f.graph_paths(name),
                "status": f.graph_status(name)}

    @translated
    def delete_graph(self, name: str) -> None:
        if not self.model.fabric.has_graph(name):
            return
        self._controller_up()
        self.model.fabric.remove_graph(name)
        self.wait(self.cal.graph_delete_s)
        self.model.advance(self.now())
        self.model.uninstall(name)
        self.refresh()

    @translated
    def list_graphs(self) -> list[str]:
        return self.model.fabric.graph_names()

    @translated
    def graph_stats(self, name: str) -> dict:
        if not self.model.fabric.has_graph(name):
            raise NotFoundError(f"no forwarding graph {name!r}")
        return {"graph": name, **self._view(name)}

    # ---- events --------------------------------------------------------------------------------
    def unsubscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    def subscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        self._subscribers.append(callback)

    def _emit(self, ev: InfraEvent) -> None:
        for cb in list(self._subscribers):
            try:
                cb(ev)
            except Exception:  # a subscriber's bug must not stop the model
                log.exception("NFVI event subscriber failed on %s", ev)

    # ---- probe ---------------------------------------------------------------------------------
    @translated
    def probe(self, src: str, dst: str, *, port: int, rate: int = 1000,
              duration: float = 1.0, src_port: int | None = None) -> dict:
        """What a UDP probe of ``rate`` packets/s for ``duration`` s would meet, from the
        model's state when it starts (it takes ``duration`` of modelled time)."""
        st = Stream("probe-once", src, dst, (int(src_port or port),), int(port))
        for name in (src, dst):
            if name not in self.model.endpoints:
                raise NotFoundError(f"no endpoint {name!r}")
        frac, lat = self.model.would_deliver(st)
        self.wait(duration)
        sent = round(rate * duration)
        received = int(sent * frac)
        gap = None if received else duration * 1000.0
        return {"sent": sent, "received": received,
                "loss_pct": 100.0 * (1 - received / sent) if sent else 100.0,
                "latency_ms": lat * 1000.0 if received else None, "max_gap_ms": gap,
                "time": self.now()}

    def close(self) -> None:
        self._subscribers.clear()
