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
from collections.abc import Callable
from pathlib import Path

from mano import descriptors as D
from mano.errors import ConflictError, DescriptorError, MANOError, NotFoundError
from mano.monitoring import Monitor, TimeSeriesStore, Watched, labels_of
from mano.nfvi import Flavour, NfviDriver
from mano.opocc import OpOccManager, OpState
from mano.store import Store
from mano.vim import VIM
from mano.vnfm import INSTANTIATED, TERMINATED, VNFM

log = logging.getLogger(__name__)
NOT_INSTANTIATED = "NOT_INSTANTIATED"
REWRITING_PROGRAMS = ("nat", "lb")


class NFVO:
    """The orchestrator over one NFVI driver and one SQLite file (see the module docstring).

    Thread safety: operations may be called from several threads at once (the experiment
    engine runs one worker per NS) while the monitor thread polls. One operation at a time
    per NS: a second one on the same NS, from any thread, is refused with
    ``ConflictError`` while the first is not final; operations on different NSs run in
    parallel. The store serialises its transactions under one lock, the VIM places under
    its lock, the VNFM reserves instance ids under its lock.
    """

    def __init__(self, driver: NfviDriver, db_path: str | Path, *,
                 strategy: str = "latency_aware", auto_rollback: bool = True,
                 reconcile: bool = True, clock: Callable[[], float] = time.monotonic):
        """``clock``: seconds, the clock of the metrics (the run's clock: real or modelled
        time; ``time.monotonic`` by default)."""
        self.driver = driver
        self.store = Store(db_path)
        self.ops = OpOccManager(self.store)
        self.vim = VIM.from_driver(driver, strategy)
        self.vnfm = VNFM(driver, self.vim, self.store, self.ops, self._grant,
                         auto_rollback=auto_rollback)
        self.vnfm.before_remove = self._drain
        self.auto_rollback = auto_rollback
        self._endpoint_switch = dict(driver.endpoint_switches())
        self.events: list = []           # infrastructure status reported by the VIM
        self.onboarding_warnings: dict[str, list[str]] = {}   # descriptor id -> warnings
        self.vim.subscribe("infra", self._on_infra_event)
        self.metrics = TimeSeriesStore()
        self.monitor = Monitor(driver, self.metrics, self._monitored, clock=clock)
        if reconcile:
            self.reconcile()

    def _monitored(self) -> list[Watched]:
        """Every instantiated instance, labelled with its NS and VNF, with its flavour's
        vCPU quota as allocated (so the monitor can record ``cpu_util`` as a fraction)."""
        vcpu = {a["instance_id"]: a["vcpu"] for a in self.store.list_allocations()}
        return [Watched(r["id"], {"ns": r["ns_id"] or "", "vnf": r["vnfd_id"]},
                        vcpu.get(r["id"]))
                for r in self.store.list_vnf_instances(state=INSTANTIATED)]

    def start_monitoring(self, interval: float = 1.0) -> None:
        """Poll every instance's metrics into ``self.metrics`` every ``interval`` s:
        ``cpu_util`` (fraction of its vCPU quota, 0-1), ``cpu_cores`` (cores),
        ``packets_rate``, ``bytes_rate`` (per s) and ``alive`` (1/0); see
        ``mano.monitoring``."""
        self.monitor.interval = interval
        self.monitor.start()

    def close(self) -> None:
        self.monitor.stop()
        self.store.close()

    # ---- catalogue ------------------------------------------------------------------------
    def onboard(self, path) -> dict:
        """Onboard every VNFD and NSD in ``path``, in any supported format
        (``mano.descriptors.read_descriptors``): VNFDs first, then NSDs (their graphs'
        ``auto`` ends bound to endpoints). Returns ``{"format", "vnfds", "nsds",
        "warnings"}`` (ids, and what the testbed cannot honour). Raises
        ``DescriptorError`` naming the file and the field."""
        bundle = D.read_descriptors(path)
        vnfds = [self.onboard_vnfd(v) for v in bundle.vnfds]
        nsds = [self.onboard_nsd(n) for n in bundle.nsds]
        warnings = list(bundle.warnings)
        for i in [*vnfds, *nsds]:
            warnings += [w for w in self.onboarding_warnings.get(i, []) if w not in warnings]
        return {"format": bundle.format, "vnfds": vnfds, "nsds": nsds, "warnings": warnings}

    def onboard_vnfd(self, path_or_vnfd) -> str:
        """Onboard one VNFD (a model, or a file/package of any supported format holding
        exactly one VNFD); returns its id. Warnings are logged and kept in
        ``onboarding_warnings[id]``."""
        vnfd = _one(D.read_descriptors(path_or_vnfd), "vnfds", path_or_vnfd) \
            if isinstance(path_or_vnfd, (str, Path)) else path_or_vnfd
        D.check_vnfd_fits(vnfd, self.driver.compute_nodes())
        self.store.put_vnfd(vnfd.id, vnfd.to_dict())
        self._warn(vnfd.id, vnfd.warnings)
        return vnfd.id

    def _warn(self, did: str, warnings) -> None:
        self.onboarding_warnings[did] = list(warnings)
        for w in warnings:
            log.warning("onboarding %s: %s", did, w)

    def vnfd(self, vnfd_id: str):
        return D.parse_vnfd(self.store.get_vnfd(vnfd_id)["data"], f"vnfd {vnfd_id}")

    def onboard_nsd(self, path_or_nsd, vnfd_paths=()) -> str:
        """Onboard the VNFDs of ``vnfd_paths``, then one NSD (a model, or a file/package of
        any supported format holding exactly one NSD, and maybe VNFDs, onboarded first);
        graph ends read as ``auto`` are bound to endpoints of the topology. Returns the
        NSD's id."""
        for p in vnfd_paths:
            self.onboard_vnfd(p)
        if isinstance(path_or_nsd, (str, Path)):
            bundle = D.read_descriptors(path_or_nsd)
            for v in bundle.vnfds:
                self.onboard_vnfd(v)
            nsd = _one(bundle, "nsds", path_or_nsd)
        else:
            nsd = path_or_nsd
        nsd, _ = D.resolve_endpoints(nsd, dict(self.driver.endpoints()))
        vnfds = {r["id"]: self.vnfd(r["id"]) for r in self.store.list_vnfds()}
        D.check_ns(nsd, vnfds, compute_nodes=self.driver.compute_nodes(),
                   endpoints=set(self.driver.endpoints()))
        self.store.put_nsd(nsd.id, nsd.to_dict(), version=str(nsd.version))
        self._warn(nsd.id, nsd.warnings)
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
    def instantiate(self, nsd_id: str, ns_id: str, *, sap: dict[str, str] | None = None,
                    protection: bool | None = None) -> dict:
        """Instantiate NSD ``nsd_id`` as NS ``ns_id``; returns the completed operation.

        Instantiation parameters (cf. SOL005 InstantiateNsRequest ``sapData`` and
        ``additionalParamsForNs``): ``sap`` binds endpoints the NSD's graphs name to other
        endpoints of the NFVI (``{"h1": "h2"}``: traffic enters at h2 instead of h1; a
        classifier's ``ipv4_src``/``ipv4_dst`` equal to the NSD endpoint's address follow to
        the new endpoint's), so one NSD serves several NSs; ``protection`` overrides every
        graph's fast-failover protection. Raises ``NotFoundError`` for an unknown NSD or
        endpoint, ``ConflictError`` when the NSD is disabled or the NS exists.
        """
        nsd_row = self.store.get_nsd(nsd_id)
        if not nsd_row["enabled"]:
            raise ConflictError(f"NSD {nsd_id} is disabled; enable it to instantiate")
        sap = dict(sap or {})
        named = {e for fg in self.nsd(nsd_id).vnffg for e in (fg.ingress, fg.egress)}
        known = self.driver.endpoints()
        for old, new in sap.items():
            if old not in named:
                raise NotFoundError(f"NS {ns_id}: sap {old!r}: NSD {nsd_id} names no such "
                                    f"endpoint; its graphs use {', '.join(sorted(named))}")
            if new not in known:
                raise NotFoundError(f"NS {ns_id}: sap {old!r} -> {new!r}: the NFVI has no "
                                    f"endpoint {new!r}; it has {', '.join(sorted(known))}")
        try:
            ns = self.store.get_ns_instance(ns_id)
            if ns["state"] not in (TERMINATED, NOT_INSTANTIATED) or \
                    self.ops.active_for(ns_id, "ns") is not None:
                raise ConflictError(f"NS {ns_id} exists already (state {ns['state']})")
        except NotFoundError:
            pass
        params = {"sap": sap, "protection": protection}
        self.store.put_ns_instance(ns_id, nsd_id, NOT_INSTANTIATED, {"graphs": [], **params})
        return self._ns_op(ns_id, "INSTANTIATE", {"nsd": nsd_id, **params},
                           self._instantiate_body)

    def bound_vnffg(self, ns_id: str, fg):
        """Graph ``fg`` of NS ``ns_id``'s NSD as the NS instantiated it (its ``sap`` and
        ``protection`` parameters applied): the endpoints, classifier and protection the
        NFVI really gets."""
        data = self.store.get_ns_instance(ns_id)["data"] or {}
        sap, prot = data.get("sap") or {}, data.get("protection")
        if not sap and prot is None:
            return fg
        ips = self.driver.endpoints()
        readdress = {ips[a]: ips[b] for a, b in sap.items() if a in ips and b in ips}
        cl = {k: (readdress.get(v, v) if k in ("ipv4_src", "ipv4_dst") else v)
              for k, v in dict(fg.classifier).items()}
        return fg.model_copy(update={
            "ingress": sap.get(fg.ingress, fg.ingress), "egress": sap.get(fg.egress, fg.egress),
            "classifier": cl, "protection": fg.protection if prot is None else bool(prot)})

    def _instantiate_body(self, op, ns_id: str) -> None:
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        for vnfd_id in self._chain_order(nsd):
            self.ops.record_step(op.id, f"vnf:{vnfd_id}")
            self.vnfm.instantiate(ns_id, self.vnfd(vnfd_id), self._ctx(nsd, ns_id, vnfd_id),
                                  parent=op.id)
        self._program_graphs(op, ns_id, nsd)
        self.store.set_ns_state(ns_id, INSTANTIATED)

    def scale(self, ns_id: str, vnfd_id: str, direction: str, steps: int = 1, *,
              instance: str | None = None) -> dict:
        """Scale VNF ``vnfd_id`` of NS ``ns_id`` ``direction`` ("out" | "in") by ``steps``
        steps of its scaling aspect; returns the completed NS operation occurrence.

        A scale-in removes ``instance`` if given (then the newest others, if a step holds
        more than one instance), else the newest instances; each is drained first (the
        graphs are reprogrammed without it). Raises ``NotFoundError`` (unknown NS, VNF or
        instance), ``ConflictError`` (NS not INSTANTIATED or busy, outside the scaling
        aspect, ``instance`` of another VNF or NS or not live, ``instance`` on a
        scale-out), ``MANOError`` for a bad direction."""
        self._need_instantiated(ns_id)
        if vnfd_id not in _vnf_ids(self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])):
            raise NotFoundError(f"NS {ns_id} has no VNF {vnfd_id!r}")
        self.vnfm.check_scale(ns_id, self.vnfd(vnfd_id), direction, steps, instance)

        def body(op, ns_id):
            nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
            self.vnfm.scale(ns_id, self.vnfd(vnfd_id), direction, steps,
                            self._ctx(nsd, ns_id, vnfd_id), parent=op.id, instance=instance)
            self._program_graphs(op, ns_id, nsd)
        params = {"vnfd": vnfd_id, "direction": direction, "steps": steps}
        if instance is not None:
            params["instance"] = instance
        return self._ns_op(ns_id, "SCALE", params, body)

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
            fg = self.bound_vnffg(ns_id, fg)
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
        fg = self.bound_vnffg(ns_id, fg)
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
                keep = {k: v for k, v in (ns["data"] or {}).items() if k != "graphs"}
                self.store.put_ns_instance(op.subject_id, ns["nsd_id"], NOT_INSTANTIATED,
                                           {"graphs": [], **keep})
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
        self._need_instantiated(ns_id)
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        out = {}
        for fg in nsd.vnffg:
            fg = self.bound_vnffg(ns_id, fg)
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


def _one(bundle, kind: str, path):
    items = getattr(bundle, kind)
    if len(items) != 1:
        what = "VNFD" if kind == "vnfds" else "NSD"
        raise DescriptorError(f"{Path(path).name}: expected one {what}, found {len(items)} "
                              f"({bundle.format} format: {len(bundle.vnfds)} VNFD(s), "
                              f"{len(bundle.nsds)} NSD(s))")
    return items[0]


def _vnf_ids(nsd) -> list[str]:
    out = []
    for v in nsd.vnfs:
        out.append(v if isinstance(v, str) else getattr(v, "vnfd", None) or v["vnfd"])
    return out
