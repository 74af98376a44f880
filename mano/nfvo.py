"""NFV Orchestrator: the NSD catalogue and the lifecycle of network services.

- Catalogue: VNFDs and NSDs are onboarded (checked against each other and the NFVI's
  compute nodes and endpoints), enabled/disabled, deleted (refused while in use).
- NS lifecycle: instantiate (VNFs through the VNFM, forwarding graphs through the NFVI's
  controller), scale, heal, terminate; each an NS-level operation occurrence whose VNF-level
  occurrences point to it as parent. The NFVO grants the VNFM's resource requests.
- Persistence: every record lives in SQLite (``mano.store``). ``reconcile()`` runs at start:
  occurrences left STARTING are rolled back, PROCESSING ones go to FAILED_TEMP (retry or
  roll back), the VIM's allocations are rebuilt, and instances or graphs that exist in the
  infrastructure but in no record (orphans) are removed.
"""
from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from mano import descriptors as D
from mano.errors import ConflictError, MANOError, NotFoundError
from mano.nfvi import Flavour
from mano.opocc import OpOccManager, OpState
from mano.store import Store
from mano.vim import VIM
from mano.vnfm import INSTANTIATED, TERMINATED, VNFM

log = logging.getLogger(__name__)
NOT_INSTANTIATED = "NOT_INSTANTIATED"
REWRITING_PROGRAMS = ("nat", "lb")


class NFVO:
    def __init__(self, driver, db_path: str | Path, *, strategy: str = "latency_aware",
                 auto_rollback: bool = True, reconcile: bool = True):
        self.driver = driver
        self.store = Store(db_path)
        self.ops = OpOccManager(self.store)
        self.vim = VIM.from_driver(driver, strategy)
        self.vnfm = VNFM(driver, self.vim, self.store, self.ops, self._grant,
                         auto_rollback=auto_rollback)
        self.vnfm.before_remove = self._drain
        self.auto_rollback = auto_rollback
        self._endpoint_switch = dict(getattr(driver, "endpoint_switches", dict)())
        self.events: list = []           # infrastructure status reported by the VIM
        self.vim.subscribe("infra", self._on_infra_event)
        from mano.monitoring import Monitor, TimeSeriesStore
        self.metrics = TimeSeriesStore()
        self.monitor = Monitor(driver, self.metrics, self._monitored)
        if reconcile:
            self.reconcile()

    def _monitored(self):
        return [(r["id"], {"ns": r["ns_id"] or "", "vnf": r["vnfd_id"]})
                for r in self.store.list_vnf_instances(state=INSTANTIATED)]

    def start_monitoring(self, interval: float = 1.0) -> None:
        """Poll every instance's CPU, packet and liveness metrics into ``self.metrics``."""
        self.monitor.interval = interval
        self.monitor.start()

    def close(self) -> None:
        self.monitor.stop()
        self.store.close()

    # ---- catalogue ------------------------------------------------------------------------
    def onboard_vnfd(self, path_or_vnfd) -> str:
        vnfd = D.load_vnfd(path_or_vnfd) if isinstance(path_or_vnfd, (str, Path)) \
            else path_or_vnfd
        D.check_vnfd_fits(vnfd, self.driver.compute_nodes())
        self.store.put_vnfd(vnfd.id, vnfd.to_dict())
        return vnfd.id

    def vnfd(self, vnfd_id: str):
        return D.parse_vnfd(self.store.get_vnfd(vnfd_id)["data"], f"vnfd {vnfd_id}")

    def onboard_nsd(self, path_or_nsd, vnfd_paths=()) -> str:
        for p in vnfd_paths:
            self.onboard_vnfd(p)
        nsd = D.load_nsd(path_or_nsd) if isinstance(path_or_nsd, (str, Path)) else path_or_nsd
        vnfds = {r["id"]: self.vnfd(r["id"]) for r in self.store.list_vnfds()}
        D.check_ns(nsd, vnfds, compute_nodes=self.driver.compute_nodes(),
                   endpoints=set(self.driver.endpoints()))
        self.store.put_nsd(nsd.id, nsd.to_dict(), version=str(nsd.version))
        return nsd.id

    def nsd(self, nsd_id: str):
        return D.parse_nsd(self.store.get_nsd(nsd_id)["data"], f"nsd {nsd_id}")

    def set_nsd_enabled(self, nsd_id: str, enabled: bool) -> None:
        self.store.set_nsd_enabled(nsd_id, enabled)

    def delete_nsd(self, nsd_id: str) -> None:
        live = [r["id"] for r in self.store.list_ns_instances(nsd_id=nsd_id)
                if r["state"] != TERMINATED]
        if live:
            raise ConflictError(f"NSD {nsd_id} is in use by NS {', '.join(live)}; terminate "
                                f"them first")
        for r in self.store.list_ns_instances(nsd_id=nsd_id):
            for v in self.store.list_vnf_instances(ns_id=r["id"]):
                self.store.delete_vnf_instance(v["id"])
            self.store.delete_ns_instance(r["id"])
        self.store.delete_nsd(nsd_id)

    # ---- grants ------------------------------------------------------------------------------
    def _grant(self, op_id: str, operation: str, resources: dict) -> str:
        gid = uuid.uuid4().hex
        self.store.put_grant(gid, op_id, {"operation": operation, "resources": resources,
                                          "granted": True})
        return gid

    # ---- NS lifecycle ------------------------------------------------------------------------
    def create_ns(self, nsd_id: str, ns_id: str) -> dict:
        """An NS instance record, NOT_INSTANTIATED (SOL005 "Create NS identifier"). Refused
        (``ConflictError``) when ``ns_id`` exists; ``NotFoundError`` for an unknown NSD."""
        self.store.get_nsd(nsd_id)
        try:
            self.store.get_ns_instance(ns_id)
        except NotFoundError:
            return self.store.put_ns_instance(ns_id, nsd_id, NOT_INSTANTIATED, {"graphs": []})
        raise ConflictError(f"NS {ns_id} exists already")

    def delete_ns(self, ns_id: str) -> None:
        """Delete a NOT_INSTANTIATED (or TERMINATED) NS instance and its VNF records (SOL005
        "Delete NS identifier"); ``ConflictError`` while it is instantiated or busy."""
        ns = self.store.get_ns_instance(ns_id)
        busy = self.ops.active_for(ns_id, "ns")
        if ns["state"] not in (NOT_INSTANTIATED, TERMINATED) or busy is not None:
            raise ConflictError(f"NS {ns_id} is {ns['state']}" + (
                f" with operation {busy.id} ({busy.operation}) {busy.state}" if busy else "") +
                "; terminate it (and let its operations finish) before deleting it")
        with self.store.transaction():
            for v in self.store.list_vnf_instances(ns_id=ns_id):
                self.store.delete_vnf_instance(v["id"])
            self.store.delete_ns_instance(ns_id)

    def instantiate(self, nsd_id: str, ns_id: str) -> dict:
        nsd_row = self.store.get_nsd(nsd_id)
        if not nsd_row["enabled"]:
            raise ConflictError(f"NSD {nsd_id} is disabled; enable it to instantiate")
        try:
            ns = self.store.get_ns_instance(ns_id)
            if ns["state"] not in (TERMINATED, NOT_INSTANTIATED) or \
                    self.ops.active_for(ns_id, "ns") is not None:
                raise ConflictError(f"NS {ns_id} exists already (state {ns['state']})")
        except NotFoundError:
            pass
        self.store.put_ns_instance(ns_id, nsd_id, NOT_INSTANTIATED, {"graphs": []})
        return self._ns_op(ns_id, "INSTANTIATE", {"nsd": nsd_id}, self._instantiate_body)

    def _instantiate_body(self, op, ns_id: str) -> None:
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        for vnfd_id in self._chain_order(nsd):
            self.ops.record_step(op.id, f"vnf:{vnfd_id}")
            self.vnfm.instantiate(ns_id, self.vnfd(vnfd_id), self._ctx(nsd, ns_id, vnfd_id),
                                  parent=op.id)
        self._program_graphs(op, ns_id, nsd)
        self.store.set_ns_state(ns_id, INSTANTIATED)

    def scale(self, ns_id: str, vnfd_id: str, direction: str, steps: int = 1) -> dict:
        self._need_instantiated(ns_id)
        if vnfd_id not in _vnf_ids(self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])):
            raise NotFoundError(f"NS {ns_id} has no VNF {vnfd_id!r}")
        self.vnfm.check_scale(ns_id, self.vnfd(vnfd_id), direction, steps)

        def body(op, ns_id):
            nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
            self.vnfm.scale(ns_id, self.vnfd(vnfd_id), direction, steps,
                            self._ctx(nsd, ns_id, vnfd_id), parent=op.id)
            self._program_graphs(op, ns_id, nsd)
        return self._ns_op(ns_id, "SCALE", {"vnfd": vnfd_id, "direction": direction,
                                            "steps": steps}, body)

    def heal(self, ns_id: str, instance_id: str, mode: str | None = None) -> dict:
        self._need_instantiated(ns_id)
        row = self.store.get_vnf_instance(instance_id)

        def body(op, ns_id):
            nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
            self.vnfm.heal(ns_id, self.vnfd(row["vnfd_id"]), instance_id, mode,
                           self._ctx(nsd, ns_id, row["vnfd_id"]), parent=op.id)
            self._program_graphs(op, ns_id, nsd)
        return self._ns_op(ns_id, "HEAL", {"instance": instance_id, "mode": mode}, body)

    def terminate(self, ns_id: str) -> dict:
        ns = self.store.get_ns_instance(ns_id)
        if ns["state"] == TERMINATED:
            raise ConflictError(f"NS {ns_id} is terminated already")

        def body(op, ns_id):
            ns = self.store.get_ns_instance(ns_id)
            for g in (ns["data"] or {}).get("graphs", []):
                self.driver.delete_graph(g)
            nsd = self.nsd(ns["nsd_id"])
            for vnfd_id in self._chain_order(nsd):
                self.vnfm.terminate(ns_id, self.vnfd(vnfd_id), parent=op.id)
            self.store.put_ns_instance(ns_id, ns["nsd_id"], TERMINATED, {"graphs": []})
        return self._ns_op(ns_id, "TERMINATE", {}, body)

    def _on_infra_event(self, ev) -> None:
        self.events.append(ev)
        log.info("infrastructure: %s %s", ev.kind, ev.subject)

    def _ns_op(self, ns_id: str, operation: str, params: dict, body) -> dict:
        # one operation at a time per NS: a second is refused (ConflictError) by start()
        op = self.ops.start("ns", ns_id, operation, params)
        self.ops.transition(op.id, OpState.PROCESSING)
        try:
            body(op, ns_id)
        except Exception as exc:
            self.ops.transition(op.id, OpState.FAILED_TEMP, error=str(exc))
            if self.auto_rollback:
                self.rollback(op.id)
            raise
        return vars(self.ops.transition(op.id, OpState.COMPLETED))

    def _need_instantiated(self, ns_id: str) -> None:
        st = self.store.get_ns_instance(ns_id)["state"]
        if st != INSTANTIATED:
            raise ConflictError(f"NS {ns_id} is {st}; the operation needs it INSTANTIATED")

    # ---- forwarding graphs ---------------------------------------------------------------------
    def _chain_order(self, nsd) -> list[str]:
        order: list[str] = []
        for fg in nsd.vnffg:
            for v in fg.path:
                if v not in order:
                    order.append(v)
        for v in _vnf_ids(nsd):
            if v not in order:
                order.append(v)
        return order

    def _ctx(self, nsd, ns_id: str, vnfd_id: str):
        """Placement context: the switches of the chain neighbours of ``vnfd_id``."""
        for fg in nsd.vnffg:
            if vnfd_id in fg.path:
                i = fg.path.index(vnfd_id)
                prev = self._hop_switch(ns_id, fg.path[i - 1]) if i > 0 else \
                    self._endpoint_switch.get(fg.ingress)
                nxt = self._hop_switch(ns_id, fg.path[i + 1]) if i + 1 < len(fg.path) else \
                    self._endpoint_switch.get(fg.egress)
                return self.vim.context(prev_switch=prev, next_switch=nxt,
                                        ingress_switch=self._endpoint_switch.get(fg.ingress),
                                        egress_switch=self._endpoint_switch.get(fg.egress))
        return None

    def _hop_switch(self, ns_id: str, vnfd_id: str) -> str | None:
        rows = self.vnfm.instances(ns_id, vnfd_id)
        return rows[0]["switch"] if rows else None

    def _reprogram(self, ns_id: str, name: str) -> None:
        ns = self.store.get_ns_instance(ns_id)
        nsd = self.nsd(ns["nsd_id"])
        for fg in nsd.vnffg:
            if f"{ns_id}.{fg.id}" == name:
                try:
                    self.driver.put_graph(self.graph_for(ns_id, nsd, fg))
                except MANOError:
                    self.driver.delete_graph(name)

    def _drain(self, op, ns_id: str, iid: str) -> None:
        """Before ``iid`` goes: reprogram the NS's graphs without it, or remove a graph
        whose hop would be left with no instance."""
        ns = self.store.get_ns_instance(ns_id)
        names = (ns["data"] or {}).get("graphs", [])
        if not names:
            return
        nsd = self.nsd(ns["nsd_id"])
        for fg in nsd.vnffg:
            name = f"{ns_id}.{fg.id}"
            if name not in names:
                continue
            try:
                self.driver.put_graph(self.graph_for(ns_id, nsd, fg, exclude={iid}))
            except _EmptyHop:
                self.driver.delete_graph(name)

    def graph_for(self, ns_id: str, nsd, fg, exclude=frozenset()) -> dict:
        hops: list = [fg.ingress]
        rewrites: list[str] = []
        for v in fg.path:
            ids = [r["id"] for r in self.vnfm.instances(ns_id, v) if r["id"] not in exclude]
            if not ids and exclude:
                raise _EmptyHop(v)
            if not ids:
                raise MANOError(f"NS {ns_id}: VNF {v} has no running instance")
            hops.append(ids[0] if len(ids) == 1 else ids)
            if self.vnfd(v).image.program in REWRITING_PROGRAMS:
                rewrites += ids
        hops.append(fg.egress)
        g = {"name": f"{ns_id}.{fg.id}", "match": dict(fg.classifier), "hops": hops,
             "protection": bool(fg.protection)}
        if rewrites:
            g["rewrites"] = rewrites
        return g

    def _program_graphs(self, op, ns_id: str, nsd) -> None:
        ns = self.store.get_ns_instance(ns_id)
        names = []
        for fg in nsd.vnffg:
            g = self.graph_for(ns_id, nsd, fg)
            self.ops.record_step(op.id, f"graph:{g['name']}")
            self.driver.put_graph(g)
            names.append(g["name"])
        data = dict(ns["data"] or {})
        data["graphs"] = names
        self.store.put_ns_instance(ns_id, ns["nsd_id"], ns["state"], data)

    # ---- failure handling ---------------------------------------------------------------------
    def rollback(self, op_id: str) -> None:
        """Roll back an NS occurrence in FAILED_TEMP: its graphs, then its VNFs' occurrences."""
        op = self.ops.get(op_id)
        if op.level == "vnf":
            return self.vnfm.rollback(op_id)
        self.ops.transition(op_id, OpState.ROLLING_BACK)
        try:
            for step in reversed(op.steps_done):
                kind, _, name = step.partition(":")
                if kind == "graph" and op.operation == "INSTANTIATE":
                    self.driver.delete_graph(name)
                elif kind == "graph":   # steer by what exists now that the VNFM rolled back
                    self._reprogram(op.subject_id, name)
                elif kind == "vnf" and op.operation == "INSTANTIATE":
                    for child in self.ops.list(parent=op_id):
                        if child.state in (OpState.FAILED_TEMP, OpState.PROCESSING):
                            if child.state == OpState.PROCESSING:
                                self.ops.transition(child.id, OpState.FAILED_TEMP,
                                                    error="NFVO restarted")
                            self.vnfm.rollback(child.id)
                    for row in self.store.list_vnf_instances(ns_id=op.subject_id,
                                                             vnfd_id=name):
                        if row["state"] != TERMINATED:
                            self.driver.delete_instance(row["id"])
                            self.vim.release(row["id"])
                            self.store.delete_allocation(row["id"])
                            self.vnfm._put(row, TERMINATED)
                self.ops.remove_step(op_id, step)
            if op.operation == "INSTANTIATE":
                ns = self.store.get_ns_instance(op.subject_id)
                self.store.put_ns_instance(op.subject_id, ns["nsd_id"], NOT_INSTANTIATED,
                                           {"graphs": []})
        except Exception as exc:
            self.ops.transition(op_id, OpState.FAILED_TEMP, error=f"rollback failed: {exc}")
            raise
        self.ops.transition(op_id, OpState.ROLLED_BACK)

    def retry(self, op_id: str) -> dict:
        """Retry an NS occurrence in FAILED_TEMP: undo what it did, then run it again."""
        op = self.ops.get(op_id)
        if op.level != "ns" or op.state != OpState.FAILED_TEMP:
            raise ConflictError(f"operation {op_id} is {op.level}-level in state {op.state}; "
                                f"only NS operations in FAILED_TEMP can be retried")
        if op.operation != "INSTANTIATE":
            raise ConflictError(f"retry of {op.operation} is not supported; roll it back and "
                                f"start the operation again")
        self.rollback(op_id)
        nsd_id = self.store.get_ns_instance(op.subject_id)["nsd_id"]
        return self._ns_op(op.subject_id, "INSTANTIATE", {"nsd": nsd_id, "retry_of": op_id},
                           self._instantiate_body)

    def fail(self, op_id: str) -> None:
        self.ops.transition(op_id, OpState.FAILED, error="marked failed by the user")

    def reconcile(self) -> dict:
        """Bring the records and the infrastructure back in line after a restart."""
        report = {"rolled_back": [], "failed_temp": [], "orphans": [], "lost": []}
        for op in self.ops.list(states=[OpState.STARTING]):
            self.ops.transition(op.id, OpState.ROLLED_BACK, error="NFVO restarted before "
                                "the operation was granted")
            report["rolled_back"].append(op.id)
        for op in self.ops.list(states=[OpState.PROCESSING, OpState.ROLLING_BACK]):
            self.ops.transition(op.id, OpState.FAILED_TEMP,
                                error=f"NFVO restarted while {op.state}")
            report["failed_temp"].append(op.id)
        allocs = [(a["instance_id"], a.get("vnf_id") or "", a["node"],
                   Flavour(a["vcpu"], a["memory_mb"], a["disk_gb"]))
                  for a in self.store.list_allocations()]
        self.vim.restore(allocs)
        known = {r["id"] for r in self.store.list_vnf_instances() if r["state"] != TERMINATED}
        live = {i.instance_id for i in self.driver.list_instances()}
        # created in the infrastructure but recorded nowhere (or recorded as gone): orphans
        steps = {s.partition(":")[2] for op in self.ops.list(states=[OpState.FAILED_TEMP])
                 for s in op.steps_done if s.startswith("create:")}
        for iid in sorted(live - known - steps):
            self.driver.delete_instance(iid)
            report["orphans"].append(iid)
        for iid in sorted(known - live):
            report["lost"].append(iid)
        graphs = {g for r in self.store.list_ns_instances()
                  for g in (r["data"] or {}).get("graphs", [])}
        for g in self.driver.list_graphs():
            if g not in graphs and not any(g.startswith(f"{r['id']}.")
                                           for r in self.store.list_ns_instances()
                                           if r["state"] != TERMINATED):
                self.driver.delete_graph(g)
                report["orphans"].append(f"graph {g}")
        if any(report.values()):
            log.warning("reconciliation: %s", report)
        return report

    def measure_ns(self, ns_id: str, *, duration: float = 1.0, rate: int = 1000) -> dict:
        """Probe every forwarding graph of the NS end to end (ingress -> egress, real packets)
        and record ``latency_ms`` and ``loss_pct`` per NS and graph in ``self.metrics``."""
        from mano.monitoring import labels_of
        self._need_instantiated(ns_id)
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        out = {}
        for fg in nsd.vnffg:
            cl = fg.classifier
            port = cl.get("udp_dst") or cl.get("tcp_dst") or 5001
            if cl.get("ip_proto", 17) != 17:
                raise MANOError(f"NS {ns_id} graph {fg.id}: the probe is UDP; the classifier "
                                f"selects ip_proto {cl['ip_proto']}")
            res = self.driver.probe(fg.ingress, fg.egress, port=port, rate=rate,
                                    duration=duration, src_port=cl.get("udp_src"))
            lb = labels_of(ns=ns_id, graph=fg.id)
            t = self.monitor.clock()
            if res.get("latency_ms") is not None:
                self.metrics.record("latency_ms", lb, t, res["latency_ms"])
            self.metrics.record("loss_pct", lb, t, res["loss_pct"])
            out[fg.id] = res
        return out

    # ---- views ------------------------------------------------------------------------------
    def list_ns(self) -> list[dict]:
        return self.store.list_ns_instances()

    def show_ns(self, ns_id: str) -> dict:
        ns = self.store.get_ns_instance(ns_id)
        ns["vnfs"] = self.store.list_vnf_instances(ns_id=ns_id)
        ns["operations"] = [vars(o) for o in self.ops.list(subject_id=ns_id)]
        return ns

    def list_vnfs(self) -> list[dict]:
        return self.store.list_vnf_instances()

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.ops.list(states=[OpState.STARTING, OpState.PROCESSING]):
            if time.monotonic() > deadline:
                raise MANOError("operations still running")
            time.sleep(0.05)


class _EmptyHop(MANOError):
    """A hop of a graph would have no instance left."""


def _vnf_ids(nsd) -> list[str]:
    out = []
    for v in nsd.vnfs:
        out.append(v if isinstance(v, str) else getattr(v, "vnfd", None) or v["vnfd"])
    return out
