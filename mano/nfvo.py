"""NFV Orchestrator: the NSD catalogue and the lifecycle of network services.

- Catalogue: VNFDs and NSDs are onboarded (checked against each other and the NFVI's
  compute nodes and endpoints), enabled/disabled, deleted (refused while in use).
- NS lifecycle: instantiate (VNFs through the VNFM, forwarding graphs through the NFVI's
  controller), scale, heal, terminate; each an NS-level operation occurrence whose VNF-level
  occurrences point to it as parent and follow it (completed, rolled back or failed with
  it). The NFVO grants the VNFM's resource requests.
- NS states: NOT_INSTANTIATED, INSTANTIATED (every VNF has an instance and every graph is
  installed), DEGRADED (instantiated but lacking instances or graphs, listed in
  ``data["missing"]``; heal it or terminate it), TERMINATED.
- Crash consistency: every step is recorded before it is done (NS level: ``vnf:``,
  ``graph:``, ``ungraph:``; VNF level: see ``mano.vnfm``), so the process may die anywhere.
  An NS occurrence in FAILED_TEMP can be retried (the same occurrence resumes towards the
  goal it recorded), rolled back (ROLLED_BACK only when all was undone and the NS is back
  in its prior state, else FAILED naming what remains) or failed (given up; the records
  are made to match the NFVI), whatever its type.
- Persistence: every record lives in SQLite (``mano.store``). ``reconcile()`` runs at start:
  occurrences left STARTING are rolled back, PROCESSING ones go to FAILED_TEMP, the VIM's
  allocations are rebuilt, and the records are compared with what the NFVI holds: orphan
  instances and graphs are removed, lost instances marked LOST, and an NS lacking parts is
  healed back (``heal_ns``) or left DEGRADED saying what is missing.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mano import descriptors as D
from mano.descriptors.nsd import graphs_conflict
from mano.errors import ConflictError, DescriptorError, MANOError, NotFoundError
from mano.monitoring import Monitor, TimeSeriesStore, Watched, labels_of
from mano.nfvi import CommitBeforeChange, Flavour, NfviDriver
from mano.opocc import ACTIVE_STATES, OpOccManager, OpState
from mano.store import Store
from mano.vim import VIM
from mano.vnfm import CREATING, DONE, INSTANTIATED, LOST, TERMINATED, VNFM

log = logging.getLogger(__name__)
NOT_INSTANTIATED = "NOT_INSTANTIATED"
DEGRADED = "DEGRADED"      # instantiated, but lacking instances or graphs (data["missing"])
REWRITING_PROGRAMS = ("nat", "lb")


def _committed(method):
    """An NFVO operation as one ``store.batch()``: its records are committed before each
    call that changes the NFVI (``CommitBeforeChange``) and when it returns or raises,
    instead of after every transaction block. A crash in between loses only writes that
    no NFVI step depended on yet: the state is that of the last commit, as if the crash
    had come right after it (the crash campaigns of tests/unit/test_nfvo_crash.py and
    test_nfvo_sigkill.py cover those points)."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.store.batch():
            return method(self, *args, **kwargs)
    return run


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
        self.store = Store(db_path)
        # every call that changes the NFVI first commits what the operation's batch holds
        self.driver = CommitBeforeChange(driver, self.store)
        driver = self.driver
        self.ops = OpOccManager(self.store)
        self.vim = VIM.from_driver(driver, strategy)
        self.vnfm = VNFM(driver, self.vim, self.store, self.ops, self._grant,
                         auto_rollback=auto_rollback)
        self.vnfm.before_remove = self._drain
        self.auto_rollback = auto_rollback
        self._endpoint_switch = dict(driver.endpoint_switches())
        self.events: list = []           # infrastructure status reported by the VIM
        self.onboarding_warnings: dict[str, list[str]] = {}   # descriptor id -> warnings
        # (kind, id) -> (store.descriptors_version, stored data, model): see _parsed
        self._parse_cache: dict[tuple[str, str], tuple[int, dict, object]] = {}
        self._parse_lock = threading.Lock()
        self.metrics = TimeSeriesStore()
        self.monitor = Monitor(driver, self.metrics, self._monitored, clock=clock)
        self.vim.subscribe("infra", self._on_infra_event)
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
        """Stop monitoring, stop taking the NFVI's events, close the store."""
        self.monitor.stop()
        self.driver.unsubscribe(self.vim.on_infra_event)
        self.store.close()

    # ---- catalogue ------------------------------------------------------------------------
    def onboard(self, path, params=None) -> dict:
        """Onboard every VNFD and NSD in ``path``, in any supported format
        (``mano.descriptors.read_descriptors``): VNFDs first, then NSDs (their graphs'
        ``auto`` ends bound to endpoints). ``params`` (a ``D.Parameters`` or a mapping of
        input name -> value) give a TOSCA template's inputs, as Tacker's parameter file.
        Returns ``{"format", "vnfds", "nsds", "warnings"}`` (ids, and what the testbed
        cannot honour). Raises ``DescriptorError`` naming the file and the field."""
        bundle = D.read_descriptors(path, _parameters(params))
        vnfds = [self.onboard_vnfd(v) for v in bundle.vnfds]
        nsds = [self.onboard_nsd(n) for n in bundle.nsds]
        warnings = list(bundle.warnings)
        for i in [*vnfds, *nsds]:
            warnings += [w for w in self.onboarding_warnings.get(i, []) if w not in warnings]
        return {"format": bundle.format, "vnfds": vnfds, "nsds": nsds, "warnings": warnings}

    def onboard_vnfd(self, path_or_vnfd, params=None) -> str:
        """Onboard one VNFD (a model, or a file/package of any supported format holding
        exactly one VNFD, its inputs given by ``params`` as in ``onboard``); returns its
        id. Warnings are logged and kept in ``onboarding_warnings[id]``."""
        vnfd = _one(D.read_descriptors(path_or_vnfd, _parameters(params)), "vnfds",
                    path_or_vnfd) \
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
        """The onboarded VNFD ``vnfd_id`` as a model (``NotFoundError`` if not onboarded)."""
        return self._parsed("vnfd", vnfd_id, self.store.get_vnfd, D.parse_vnfd)

    def _parsed(self, kind: str, did: str, get: Callable[[str], dict], parse: Callable):
        """``parse(get(did)["data"])``, remembered: an NS operation reads its descriptors
        a dozen times, and validating them again was a fifth of its cost, reading and
        decoding the record another tenth (bench/mano_ops.py profiles). The model is
        served without reading the store while ``store.descriptors_version`` stands (no
        descriptor written or deleted through the store since), and re-parsed only when
        the stored data changed; so a descriptor replaced or deleted is seen at once. The
        models are frozen, so sharing one is safe."""
        version = self.store.descriptors_version
        with self._parse_lock:
            hit = self._parse_cache.get((kind, did))
        if hit is not None and hit[0] == version:
            return hit[2]
        data = get(did)["data"]
        model = hit[2] if hit is not None and hit[1] == data else parse(data, f"{kind} {did}")
        with self._parse_lock:
            self._parse_cache[(kind, did)] = (version, data, model)
        return model

    def onboard_nsd(self, path_or_nsd, vnfd_paths=(), params=None) -> str:
        """Onboard the VNFDs of ``vnfd_paths``, then one NSD (a model, or a file/package of
        any supported format holding exactly one NSD, and maybe VNFDs, onboarded first;
        its inputs given by ``params`` as in ``onboard``); graph ends read as ``auto`` are
        bound to endpoints of the topology. Returns the NSD's id."""
        for p in vnfd_paths:
            self.onboard_vnfd(p)
        if isinstance(path_or_nsd, (str, Path)):
            bundle = D.read_descriptors(path_or_nsd, _parameters(params))
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
        """The onboarded NSD ``nsd_id`` as a model (``NotFoundError`` if not onboarded)."""
        return self._parsed("nsd", nsd_id, self.store.get_nsd, D.parse_nsd)

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
    @_committed
    def create_ns(self, nsd_id: str, ns_id: str) -> dict:
        """An NS instance record, NOT_INSTANTIATED (SOL005 "Create NS identifier"). Refused
        (``ConflictError``) when ``ns_id`` exists; ``NotFoundError`` for an unknown NSD."""
        self.store.get_nsd(nsd_id)
        try:
            self.store.get_ns_instance(ns_id)
        except NotFoundError:
            return self.store.put_ns_instance(ns_id, nsd_id, NOT_INSTANTIATED, {"graphs": []})
        raise ConflictError(f"NS {ns_id} exists already")

    @_committed
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

    @_committed
    def instantiate(self, nsd_id: str, ns_id: str, *, sap: dict[str, str] | None = None,
                    protection: bool | None = None) -> dict:
        """Instantiate NSD ``nsd_id`` as NS ``ns_id``; returns the completed operation.

        Instantiation parameters (cf. SOL005 InstantiateNsRequest ``sapData`` and
        ``additionalParamsForNs``): ``sap`` binds endpoints the NSD's graphs name to other
        endpoints of the NFVI (``{"h1": "h2"}``: traffic enters at h2 instead of h1; a
        classifier's ``ipv4_src``/``ipv4_dst`` equal to the NSD endpoint's address follow to
        the new endpoint's), so one NSD serves several NSs; ``protection`` overrides every
        graph's fast-failover protection. An NS that exists may be instantiated again when
        nothing of it is live (NOT_INSTANTIATED, TERMINATED, or DEGRADED with every instance
        lost). Raises ``NotFoundError`` for an unknown NSD or endpoint, ``ConflictError``
        when the NSD is disabled or the NS exists.
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
            live = [r["id"] for r in self.store.list_vnf_instances(ns_id=ns_id)
                    if r["state"] in (INSTANTIATED, CREATING)]
            if live or ns["state"] == INSTANTIATED or \
                    self.ops.active_for(ns_id, "ns") is not None:
                raise ConflictError(f"NS {ns_id} exists already (state {ns['state']})")
        except NotFoundError:
            pass
        self._refuse_overlaps(nsd_id, ns_id, sap, protection)
        params = {"sap": sap, "protection": protection}
        for r in self.store.list_vnf_instances(ns_id=ns_id, state=LOST):
            self.vnfm.forget(r["id"])       # a new start: what was lost stays closed
        self.store.put_ns_instance(ns_id, nsd_id, NOT_INSTANTIATED, {"graphs": [], **params})
        return self._ns_op(ns_id, "INSTANTIATE", {"nsd": nsd_id, **params})

    def bound_vnffg(self, ns_id: str, fg):
        """Graph ``fg`` of NS ``ns_id``'s NSD as the NS instantiated it (its ``sap`` and
        ``protection`` parameters applied): the endpoints, classifier and protection the
        NFVI really gets."""
        data = self.store.get_ns_instance(ns_id)["data"] or {}
        return self._bind(fg, data.get("sap") or {}, data.get("protection"))

    def _bind(self, fg, sap: dict, prot: bool | None):
        if not sap and prot is None:
            return fg
        ips = self.driver.endpoints()
        readdress = {ips[a]: ips[b] for a, b in sap.items() if a in ips and b in ips}
        cl = {k: (readdress.get(v, v) if k in ("ipv4_src", "ipv4_dst") else v)
              for k, v in dict(fg.classifier).items()}
        return fg.model_copy(update={
            "ingress": sap.get(fg.ingress, fg.ingress), "egress": sap.get(fg.egress, fg.egress),
            "classifier": cl, "protection": fg.protection if prot is None else bool(prot)})

    @_committed
    def scale(self, ns_id: str, vnfd_id: str, direction: str, steps: int = 1, *,
              instance: str | None = None) -> dict:
        """Scale VNF ``vnfd_id`` of NS ``ns_id`` ``direction`` ("out" | "in") by ``steps``
        steps of its scaling aspect; returns the completed NS operation occurrence.

        A scale-in removes ``instance`` if given (then the newest others, if a step holds
        more than one instance), else the newest instances; each is drained first (the
        graphs are reprogrammed without it). The occurrence records the instance count it
        aims at (``params["target"]``), so a retry finishes what is left. Raises
        ``NotFoundError`` (unknown NS, VNF or instance), ``ConflictError`` (NS not
        INSTANTIATED or busy, outside the scaling aspect, ``instance`` of another VNF or NS
        or not live, ``instance`` on a scale-out), ``MANOError`` (bad direction)."""
        self._need_instantiated(ns_id)
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        if vnfd_id not in _vnf_ids(nsd):
            raise NotFoundError(f"NS {ns_id} has no VNF {vnfd_id!r}; its VNFs are "
                                f"{', '.join(_vnf_ids(nsd))}")
        current, delta = self.vnfm.check_scale(ns_id, self.vnfd(vnfd_id), direction, steps,
                                               instance)
        target = len(current) + (delta if direction == "out" else -delta)
        params = {"vnfd": vnfd_id, "direction": direction, "steps": steps, "target": target}
        if instance is not None:
            params["instance"] = instance
        before = {r["id"] for r in current}
        op = self._ns_op(ns_id, "SCALE", params)
        if direction == "out" and self.monitor.running:
            # the new instances' counters start now: their first rates follow within
            # FRESH_POLL_S instead of up to two poll intervals later
            self.monitor.poll_once(only=[r["id"] for r in self.vnfm.instances(ns_id, vnfd_id)
                                         if r["id"] not in before])
        return op

    @_committed
    def heal(self, ns_id: str, instance_id: str, mode: str | None = None) -> dict:
        """Heal VNF instance ``instance_id`` of NS ``ns_id`` by ``mode`` ("restart" |
        "recreate"; default the VNFD's); an instance the NFVI lost is always recreated.
        The NS may be INSTANTIATED or DEGRADED (graphs whose hops all have an instance are
        reprogrammed). Raises ``NotFoundError``, ``ConflictError`` (NS state, busy, or the
        instance is terminated)."""
        st = self.store.get_ns_instance(ns_id)["state"]
        if st not in (INSTANTIATED, DEGRADED):
            raise ConflictError(f"NS {ns_id} is {st}; heal needs it INSTANTIATED or DEGRADED")
        row = self.store.get_vnf_instance(instance_id)
        if row["ns_id"] != ns_id:
            raise NotFoundError(f"instance {instance_id} is not part of NS {ns_id}")
        if row["state"] not in (INSTANTIATED, LOST):
            raise ConflictError(f"instance {instance_id} is {row['state']}; only an "
                                f"INSTANTIATED or LOST instance can be healed")
        return self._ns_op(ns_id, "HEAL", {"instance": instance_id, "mode": mode})

    @_committed
    def heal_ns(self, ns_id: str) -> dict:
        """Heal NS ``ns_id`` back to what its records say (reconciliation calls it): every
        instance the NFVI lost (LOST) is recreated, a VNF below its scaling minimum gets
        instances, every graph is reprogrammed. Returns the HEAL occurrence (params
        ``{"instance": None, "lost": [ids]}``). ``ConflictError`` unless the NS is
        INSTANTIATED or DEGRADED."""
        st = self.store.get_ns_instance(ns_id)["state"]
        if st not in (INSTANTIATED, DEGRADED):
            raise ConflictError(f"NS {ns_id} is {st}; heal needs it INSTANTIATED or DEGRADED")
        lost = [r["id"] for r in self.store.list_vnf_instances(ns_id=ns_id, state=LOST)]
        return self._ns_op(ns_id, "HEAL", {"instance": None, "lost": lost})

    @_committed
    def terminate(self, ns_id: str) -> dict:
        """Terminate NS ``ns_id``: its graphs are removed (each recorded as ``ungraph:``
        before), then every instance of each VNF. ``ConflictError`` if terminated."""
        ns = self.store.get_ns_instance(ns_id)
        if ns["state"] == TERMINATED:
            raise ConflictError(f"NS {ns_id} is terminated already")
        return self._ns_op(ns_id, "TERMINATE", {})

    # the bodies: each reads its occurrence's params and aims at a goal from the records,
    # so that a retry (after a rollback of the failed VNF operations) finishes what is left
    def _body(self, op, ns_id: str) -> str | None:
        """Run ``op``'s work; return TERMINATED, or None: the state is then assessed."""
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        p = op.params
        if op.operation == "INSTANTIATE":
            for r in self.store.list_vnf_instances(ns_id=ns_id, state=LOST):
                self.vnfm.forget(r["id"])
            # placed in chain order, one after another; the NFVI's creates overlap
            # (VNFM.instantiate_many), each instance recorded before it is created
            wants = []
            for vnfd_id in self._chain_order(nsd):
                vnfd = self.vnfd(vnfd_id)
                need = vnfd.scaling.min - len(self.vnfm.instances(ns_id, vnfd_id))
                if need > 0:
                    wants.append((vnfd, need, functools.partial(self._ctx, nsd, ns_id,
                                                                vnfd_id)))
            self.vnfm.instantiate_many(
                ns_id, wants, op.id,
                before=lambda vnfd: self.ops.record_step(op.id, f"vnf:{vnfd.id}"))
            self._program_graphs(op, ns_id, nsd)
            return None
        if op.operation == "SCALE":
            vnfd = self.vnfd(p["vnfd"])
            live = [r["id"] for r in self.vnfm.instances(ns_id, vnfd.id)]
            diff = p["target"] - len(live)
            if diff > 0 and p["direction"] == "out":
                self.vnfm.scale(ns_id, vnfd, "out", ctx=self._ctx(nsd, ns_id, vnfd.id),
                                parent=op.id, count=diff)
            elif diff < 0 and p["direction"] == "in":
                named = p.get("instance") if p.get("instance") in live else None
                self.vnfm.scale(ns_id, vnfd, "in", parent=op.id, instance=named,
                                count=-diff)
            self._program_graphs(op, ns_id, nsd)
            return None
        if op.operation == "HEAL":
            targets = [p["instance"]] if p.get("instance") else \
                [r["id"] for r in self.store.list_vnf_instances(ns_id=ns_id, state=LOST)]
            for iid in targets:
                row = self.store.get_vnf_instance(iid)
                if row["state"] not in (INSTANTIATED, LOST):
                    continue    # replaced already (an earlier attempt removed it)
                self.vnfm.heal(ns_id, self.vnfd(row["vnfd_id"]), iid,
                               p.get("mode") if p.get("instance") else "recreate",
                               self._ctx(nsd, ns_id, row["vnfd_id"]), parent=op.id)
            if not p.get("instance"):
                for vnfd_id in self._chain_order(nsd):
                    vnfd = self.vnfd(vnfd_id)
                    need = vnfd.scaling.min - len(self.vnfm.instances(ns_id, vnfd_id))
                    if need > 0:
                        self.vnfm.instantiate(ns_id, vnfd, self._ctx(nsd, ns_id, vnfd_id),
                                              parent=op.id, count=need)
            self._program_graphs(op, ns_id, nsd, partial=True)
            return None
        if op.operation == "TERMINATE":
            for name in self._graph_names(ns_id, nsd):
                self.ops.record_step(op.id, f"ungraph:{name}")
                self.driver.delete_graph(name)
            self._set_graphs(ns_id, [])     # nothing to drain any more
            for vnfd_id in self._chain_order(nsd):
                if any(r["state"] != TERMINATED for r in
                       self.store.list_vnf_instances(ns_id=ns_id, vnfd_id=vnfd_id)):
                    self.vnfm.terminate(ns_id, self.vnfd(vnfd_id), parent=op.id)
            return TERMINATED
        raise MANOError(f"operation {op.id}: unknown NS operation {op.operation!r}")

    def _on_infra_event(self, ev) -> None:
        self.events.append(ev)
        log.info("infrastructure: %s %s", ev.kind, ev.subject)
        if ev.kind == "instance_down" and self.monitor.running:
            self.monitor.mark_down(ev.subject)   # healers see it now, not at the next poll

    def _ns_op(self, ns_id: str, operation: str, params: dict) -> dict:
        # one operation at a time per NS: a second is refused (ConflictError) by start();
        # the NS state before is kept so that a rollback knows what to go back to
        prior = self.store.get_ns_instance(ns_id)["state"]
        with self.store.transaction():    # one commit: nothing is done between the two
            op = self.ops.start("ns", ns_id, operation, {**params, "prior_state": prior})
            op = self.ops.transition(op.id, OpState.PROCESSING)
        return self._run_body(op)

    def _run_body(self, op) -> dict:
        ns_id = op.subject_id
        try:
            state = self._body(op, ns_id)
            if state != TERMINATED:      # what it reached, told by the records and the NFVI
                state = self._assess(ns_id)[0]
        except Exception as exc:
            self.ops.transition(op.id, OpState.FAILED_TEMP, error=str(exc))
            if self.auto_rollback:
                try:
                    self.rollback(op.id)
                except MANOError as rb:
                    log.error("NS %s: rollback of %s failed: %s", ns_id, op.id, rb)
            raise
        missing = [] if state in (INSTANTIATED, TERMINATED) else self._assess(ns_id)[1]
        with self.store.transaction():   # the NS record, the children and the op together
            self._put_state(ns_id, state, missing)
            for child in self.ops.list(parent=op.id, states=[OpState.PROCESSING]):
                self.ops.transition(child.id, OpState.COMPLETED)
            done = self.ops.transition(op.id, OpState.COMPLETED)
        return vars(done)

    def _need_instantiated(self, ns_id: str) -> None:
        ns = self.store.get_ns_instance(ns_id)
        st = ns["state"]
        if st == DEGRADED:
            missing = ", ".join((ns["data"] or {}).get("missing", []))
            raise ConflictError(f"NS {ns_id} is DEGRADED; the operation needs it INSTANTIATED "
                                f"(missing: {missing}); heal it or terminate it")
        if st != INSTANTIATED:
            raise ConflictError(f"NS {ns_id} is {st}; the operation needs it INSTANTIATED")

    # ---- the NS record -------------------------------------------------------------------------
    def _graph_names(self, ns_id: str, nsd) -> list[str]:
        return [f"{ns_id}.{fg.id}" for fg in nsd.vnffg]

    def _set_graphs(self, ns_id: str, names: list[str]) -> None:
        with self.store.transaction():
            ns = self.store.get_ns_instance(ns_id)
            self.store.put_ns_instance(ns_id, ns["nsd_id"], ns["state"],
                                       {**(ns["data"] or {}), "graphs": names})

    def _assess(self, ns_id: str, empty: str = DEGRADED) -> tuple[str, list[str]]:
        """The NS state its records and the NFVI's graphs give, and what is missing:
        INSTANTIATED when every VNF has an INSTANTIATED instance and every graph is
        installed; ``empty`` when no instance is live and no graph installed; else
        DEGRADED. The records must already match the NFVI's instances."""
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        installed = set(self.driver.list_graphs())
        missing = [f"VNF {v} (no instance)" for v in _vnf_ids(nsd)
                   if not self.vnfm.instances(ns_id, v)]
        lost = [f"instance {r['id']} (lost)"
                for r in self.store.list_vnf_instances(ns_id=ns_id, state=LOST)]
        graphs = self._graph_names(ns_id, nsd)
        missing += [f"graph {g}" for g in graphs if g not in installed]
        if not missing and not lost:
            return INSTANTIATED, []
        if len(missing) == len(_vnf_ids(nsd)) + len(graphs):
            return empty, missing + lost
        return DEGRADED, missing + lost

    def _put_state(self, ns_id: str, state: str, missing: list[str]) -> None:
        """Write the NS state; ``data["graphs"]`` lists the graphs it has, ``missing``
        what a DEGRADED NS lacks. An NS with nothing live books its LOST records as
        TERMINATED."""
        with self.store.transaction():
            ns = self.store.get_ns_instance(ns_id)
            data = {k: v for k, v in (ns["data"] or {}).items() if k != "missing"}
            nsd = self.nsd(ns["nsd_id"])
            if state in (NOT_INSTANTIATED, TERMINATED):
                data["graphs"] = []
                for r in self.store.list_vnf_instances(ns_id=ns_id, state=LOST):
                    self.vnfm.forget(r["id"])
            else:
                data["graphs"] = [g for g in self._graph_names(ns_id, nsd)
                                  if f"graph {g}" not in missing]
            if missing and state == DEGRADED:
                data["missing"] = missing
            self.store.put_ns_instance(ns_id, ns["nsd_id"], state, data)

    # ---- forwarding graphs ---------------------------------------------------------------------
    def _refuse_overlaps(self, nsd_id: str, ns_id: str, sap: dict, protection) -> None:
        """Refuse (``ConflictError``) to instantiate NS ``ns_id`` when one of its graphs,
        bound by ``sap``, overlaps another of its graphs or a graph of another NS that has
        graphs (same ingress endpoint, or a VNF on both paths of one NS; some packet matches
        both classifiers; equal precedence): which graph takes such a packet would be
        undefined. The rule is ``mano.classifiers``'; the NFVI's controller applies it again
        to every graph it is given."""
        mine = [self._bind(fg, sap, protection) for fg in self.nsd(nsd_id).vnffg]
        for j, b in enumerate(mine):
            for a in mine[:j]:
                why = graphs_conflict(a, b)
                if why:
                    raise ConflictError(
                        f"NS {ns_id}: graph {ns_id}.{b.id} overlaps graph {ns_id}.{a.id} "
                        f"(both of NSD {nsd_id}{', bound by sap ' + str(sap) if sap else ''}) "
                        f"{why}")
        nsds: dict = {}      # each NSD read once, not once per NS (O(NS) reads each)
        ingresses = {b.ingress for b in mine}
        # Only an NS whose sap binds a name to one of these ingresses, or whose NSD has a
        # graph entering at one of them by name, can have a graph here (the loop below
        # decides): a superset of those, read by SQL, instead of every NS.
        near_nsds = []
        for did in self.store.ns_instance_nsd_ids():
            try:
                if not any(fg.ingress in ingresses for fg in self.nsd(did).vnffg):
                    continue
            except MANOError:
                pass         # not readable: the loop below meets it as before
            near_nsds.append(did)
        for ns in self.store.list_ns_instances_binding(ingresses, near_nsds):
            other = ns["id"]
            data = ns["data"] or {}
            if other == ns_id or (ns["state"] in (NOT_INSTANTIATED, TERMINATED)
                                  and not data.get("graphs")):
                continue
            if ns["nsd_id"] not in nsds:
                nsds[ns["nsd_id"]] = self.nsd(ns["nsd_id"])
            for fg in nsds[ns["nsd_id"]].vnffg:
                if (data.get("sap") or {}).get(fg.ingress, fg.ingress) not in ingresses:
                    continue     # another ingress: no conflict (graphs_conflict, no VNFs)
                theirs = self._bind(fg, data.get("sap") or {}, data.get("protection"))
                for b in mine:
                    why = graphs_conflict(theirs, b, shared_vnfs=False)
                    if why:
                        raise ConflictError(
                            f"NS {ns_id}: graph {ns_id}.{b.id} (NSD {nsd_id}) overlaps graph "
                            f"{other}.{fg.id} of NS {other} (NSD {ns['nsd_id']}) {why}")

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
        """The switch of ``vnfd_id``'s first live instance; without one, that of the
        compute node of its first instance being created (placed and recorded, its create
        still running: ``VNFM.instantiate_many``)."""
        rows = self.vnfm.instances(ns_id, vnfd_id)
        if rows:
            return rows[0]["switch"]
        for r in self.vnfm.instances(ns_id, vnfd_id, live_only=False):
            if r["state"] == CREATING and r["compute_node"]:
                return self.vim.node(r["compute_node"]).switch
        return None

    def _drain(self, op, ns_id: str, iid: str, undoing: bool = False) -> None:
        """Before ``iid`` goes: reprogram the NS's graphs without it, or remove a graph
        whose hop would be left with no instance. ``undoing`` (a rollback removes what its
        operation created): a graph the NFVI refuses to reprogram is removed too, so that
        the instance can go; the rollback then reports the graph missing. A graph the
        records do not list may still be on the NFVI when undoing (the operation was cut
        after programming it, before listing it): it is removed."""
        ns = self.store.get_ns_instance(ns_id)
        names = (ns["data"] or {}).get("graphs", [])
        if not names and not undoing:
            return
        nsd = self.nsd(ns["nsd_id"])
        for fg in nsd.vnffg:
            name = f"{ns_id}.{fg.id}"
            if name not in names:
                if undoing:
                    self.driver.delete_graph(name)
                continue
            try:
                self.driver.put_graph(self.graph_for(ns_id, nsd, fg, exclude={iid}))
            except _EmptyHop:
                self.driver.delete_graph(name)
            except MANOError as exc:
                if not undoing:
                    raise
                log.warning("NS %s: graph %s not reprogrammed without %s (%s); removed",
                            ns_id, name, iid, exc)
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
                raise _EmptyHop(f"NS {ns_id}: VNF {v} has no running instance")
            hops.append(ids[0] if len(ids) == 1 else ids)
            if self.vnfd(v).image.program in REWRITING_PROGRAMS:
                rewrites += ids
        hops.append(fg.egress)
        g = {"name": f"{ns_id}.{fg.id}", "match": dict(fg.classifier), "hops": hops,
             "protection": bool(fg.protection)}
        if fg.precedence is not None:
            g["priority"] = fg.precedence     # the classifier flows' priority
        if rewrites:
            g["rewrites"] = rewrites
        return g

    def _program_graphs(self, op, ns_id: str, nsd, *, partial: bool = False) -> None:
        """Install every graph of the NS from its live instances (step ``graph:NAME``
        recorded before each when ``op`` is given). ``partial``: a graph that cannot be
        programmed (a hop without instance, the NFVI refuses it) is removed instead of
        failing the operation."""
        for fg in nsd.vnffg:
            name = f"{ns_id}.{fg.id}"
            try:
                g = self.graph_for(ns_id, nsd, fg)
                if op is not None:
                    self.ops.record_step(op.id, f"graph:{name}")
                self.driver.put_graph(g)
            except MANOError as exc:
                if not partial:
                    raise
                log.warning("NS %s: graph %s not programmed: %s", ns_id, name, exc)
                self.driver.delete_graph(name)
        self._set_graphs(ns_id, self._graph_names(ns_id, nsd))

    # ---- failure handling ---------------------------------------------------------------------
    @_committed
    def rollback(self, op_id: str) -> dict:
        """Roll back an NS occurrence in FAILED_TEMP; returns it (final).

        Its VNF operations are rolled back with it, newest first (see ``VNFM.rollback``),
        then the NS goes back to its state before the operation: after an INSTANTIATE
        every graph is removed (NOT_INSTANTIATED, nothing left on the NFVI), otherwise
        every graph is reprogrammed from the instances that remain. ROLLED_BACK when all
        was undone and the NS is back in its prior state; else FAILED, the error listing
        what could not be undone and what the NS lacks (it is then DEGRADED, or
        NOT_INSTANTIATED when nothing of it is left). A VNF operation without a parent is
        rolled back by the VNFM; one that is part of an NS operation only with it."""
        op = self.ops.get(op_id)
        if op.level == "vnf":
            self._refuse_child(op, "rolled back")
            self.vnfm.rollback(op_id)
            return vars(self.ops.get(op_id))
        self.ops.transition(op_id, OpState.ROLLING_BACK)
        ns_id = op.subject_id
        prior = op.params.get("prior_state", NOT_INSTANTIATED
                              if op.operation == "INSTANTIATE" else INSTANTIATED)
        try:
            kept = self._undo_children(op, for_retry=False)
            nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
            if op.operation == "INSTANTIATE" or prior in (NOT_INSTANTIATED, TERMINATED):
                for name in self._graph_names(ns_id, nsd):
                    self.driver.delete_graph(name)
            else:
                self._program_graphs(None, ns_id, nsd, partial=True)
            empty = NOT_INSTANTIATED if op.operation in ("INSTANTIATE", "TERMINATE") or \
                prior in (NOT_INSTANTIATED, TERMINATED) else DEGRADED
            state, missing = self._assess(ns_id, empty)
            if prior in (NOT_INSTANTIATED, TERMINATED) and state == NOT_INSTANTIATED:
                missing = []
            self._put_state(ns_id, state, missing)
            for step in reversed(self.ops.get(op_id).steps_done):
                self.ops.remove_step(op_id, step)
        except Exception as exc:
            self.ops.transition(op_id, OpState.FAILED_TEMP, error=f"rollback failed: {exc}")
            raise
        expected = NOT_INSTANTIATED if prior == TERMINATED else prior
        if not kept and state == expected:
            return vars(self.ops.transition(op_id, OpState.ROLLED_BACK))
        error = "rollback incomplete: " + "; ".join(
            kept + [f"NS {ns_id} is {state} (was {prior})"] +
            ([f"missing: {', '.join(missing)}"] if missing else []))
        self.ops.transition(op_id, OpState.FAILED_TEMP, error=error)
        return vars(self.ops.transition(op_id, OpState.FAILED, error=error))

    def _undo_children(self, op, *, for_retry: bool) -> list[str]:
        """Roll back the NS occurrence's VNF operations, newest first (``for_retry``: only
        the FAILED_TEMP ones; those done stay, to complete with the retried operation);
        returns what could not be undone."""
        kept: list[str] = []
        for child in reversed(self.ops.list(parent=op.id)):
            if child.state == OpState.FAILED and not for_retry:
                kept.append(f"{child.subject_id}: {child.error}")   # an earlier attempt
            if child.final:
                continue
            if child.state == OpState.STARTING:
                self.ops.transition(child.id, OpState.ROLLED_BACK,
                                    error="rolled back with its NS operation")
            elif not for_retry or child.state == OpState.FAILED_TEMP:
                kept += self.vnfm.rollback(child.id, for_retry=for_retry)
        return kept

    def _refuse_child(self, op, what: str) -> None:
        if op.parent is not None:
            raise ConflictError(f"VNF operation {op.id} ({op.operation} of {op.subject_id}) "
                                f"is part of NS operation {op.parent}; it is {what} only "
                                f"with that one")

    @_committed
    def retry(self, op_id: str) -> dict:
        """Retry an NS occurrence in FAILED_TEMP, any type (SOL005 retry: the same
        occurrence goes back to PROCESSING): its failed VNF operations are rolled back
        (what cannot be undone is kept as progress), then the operation runs again
        towards the goal it recorded, doing only what is left. Returns the occurrence."""
        op = self.ops.get(op_id)
        if op.level != "ns" or op.state != OpState.FAILED_TEMP:
            raise ConflictError(f"operation {op_id} is {op.level}-level in state {op.state}; "
                                f"only NS operations in FAILED_TEMP can be retried")
        op = self.ops.transition(op_id, OpState.PROCESSING)
        try:
            self._undo_children(op, for_retry=True)
        except Exception as exc:
            self.ops.transition(op_id, OpState.FAILED_TEMP, error=f"retry failed: {exc}")
            raise
        return self._run_body(self.ops.get(op_id))

    @_committed
    def fail(self, op_id: str) -> dict:
        """Give up an occurrence in FAILED_TEMP: it and its VNF operations go to FAILED,
        nothing is undone; the records are made to match the NFVI (an instance left
        CREATING is booked as it exists or not), the graphs are reprogrammed from what is
        live and the NS state says what it has (INSTANTIATED, DEGRADED with what is
        missing, or NOT_INSTANTIATED). Returns the occurrence."""
        op = self.ops.get(op_id)
        if op.state != OpState.FAILED_TEMP:
            raise ConflictError(f"operation {op_id} is {op.state}; only an operation in "
                                f"FAILED_TEMP can be marked failed")
        if op.level == "vnf":
            self._refuse_child(op, "failed")
            return vars(self.ops.transition(op_id, OpState.FAILED,
                                            error="marked failed by the user"))
        ns_id = op.subject_id
        live = {i.instance_id for i in self.driver.list_instances()}
        for o in [op, *self.ops.list(parent=op_id)]:
            for step in o.steps_done:    # what the operation deleted is gone for good
                kind, _, iid = step.partition(":")
                if kind == "delete" and iid not in live:
                    self.vnfm.forget(iid)
        self._match_records(ns_id, frozenset({op_id}))
        nsd = self.nsd(self.store.get_ns_instance(ns_id)["nsd_id"])
        if op.operation == "TERMINATE":
            for name in self._graph_names(ns_id, nsd):
                self.driver.delete_graph(name)
        else:
            self._program_graphs(None, ns_id, nsd, partial=True)
        empty = NOT_INSTANTIATED if op.operation in ("INSTANTIATE", "TERMINATE") else DEGRADED
        state, missing = self._assess(ns_id, empty)
        why = f"marked failed by the user: NS {ns_id} left {state}" + \
            (f", missing {', '.join(missing)}" if missing and state == DEGRADED else "")
        with self.store.transaction():
            self._put_state(ns_id, state, missing)
            for child in self.ops.list(parent=op_id):
                if child.state == OpState.STARTING:
                    self.ops.transition(child.id, OpState.ROLLED_BACK, error=why)
                    continue
                if child.state == OpState.PROCESSING:
                    self.ops.transition(child.id, OpState.FAILED_TEMP, error=why)
                if not self.ops.get(child.id).final:
                    self.ops.transition(child.id, OpState.FAILED, error=why)
            return vars(self.ops.transition(op_id, OpState.FAILED, error=why))

    def _match_records(self, ns_id: str | None = None, settled: frozenset = frozenset()) -> dict:
        """Make the VNF records (of ``ns_id``, or all) match the NFVI's instances: CREATING
        ones become INSTANTIATED if the NFVI has them, else TERMINATED; INSTANTIATED ones
        the NFVI lacks become LOST; allocations of no live record are released. A CREATING
        instance an active operation's steps name is left to it, unless the operation's id
        is in ``settled`` (being failed). Returns {"adopted", "lost"}."""
        live = {i.instance_id: i for i in self.driver.list_instances()}
        busy = {s.partition(":")[2] for op in self.ops.list(states=ACTIVE_STATES)
                if op.id not in settled and op.parent not in settled for s in op.steps_done}
        out: dict[str, list[str]] = {"adopted": [], "lost": []}
        for r in self.store.list_vnf_instances(ns_id=ns_id):
            if r["state"] == CREATING and r["id"] not in busy:
                if r["id"] in live:
                    self.vnfm.adopt(r["id"], live[r["id"]])
                    out["adopted"].append(r["id"])
                else:
                    self.vnfm.forget(r["id"])
            elif r["state"] == INSTANTIATED and r["id"] not in live:
                self.vnfm.forget(r["id"], LOST)
                out["lost"].append(r["id"])
        held = {r["id"] for r in self.store.list_vnf_instances()
                if r["state"] in (INSTANTIATED, CREATING)} | busy
        for a in self.store.list_allocations():
            if a["instance_id"] not in held:
                self.vim.release(a["instance_id"])
                self.store.delete_allocation(a["instance_id"])
        return out

    @_committed
    def reconcile(self) -> dict:
        """Bring the records and the infrastructure back in line after a restart.

        Occurrences left STARTING are rolled back (nothing was done), PROCESSING and
        ROLLING_BACK ones go to FAILED_TEMP (retry, roll back or fail them) — except VNF
        operations whose work was done (step ``done``), which stay PROCESSING with their
        NS operation. The VIM's allocations are rebuilt. Then the records are compared
        with what the NFVI holds (``list_instances``, ``list_graphs``): instances and
        graphs no record names are removed (orphans); an instance record the NFVI lacks
        becomes LOST; an NS (without an active operation) that lacks instances or graphs
        is healed back (``heal_ns``: instances recreated, graphs reprogrammed), and if that
        fails it is left DEGRADED (or NOT_INSTANTIATED) saying what is missing. An NS
        with an active operation is never left INSTANTIATED when it lacks something.
        Returns {"rolled_back", "failed_temp", "orphans", "lost", "adopted", "healed",
        "degraded"} (ids)."""
        report: dict[str, list[str]] = {"rolled_back": [], "failed_temp": [], "orphans": [],
                                        "lost": [], "adopted": [], "healed": [],
                                        "degraded": []}
        for op in self.ops.list(states=[OpState.STARTING]):
            self.ops.transition(op.id, OpState.ROLLED_BACK, error="NFVO restarted before "
                                "the operation was granted")
            report["rolled_back"].append(op.id)
        for op in self.ops.list(states=[OpState.PROCESSING, OpState.ROLLING_BACK]):
            if op.level == "vnf" and op.state == OpState.PROCESSING and op.parent and \
                    op.steps_done[-1:] == [DONE]:
                continue
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
        steps = {s.partition(":")[2] for op in self.ops.list(states=ACTIVE_STATES)
                 for s in op.steps_done}
        for iid in sorted(live - known - steps):
            self.driver.delete_instance(iid)
            report["orphans"].append(iid)
        matched = self._match_records()
        report["lost"], report["adopted"] = matched["lost"], matched["adopted"]
        nss = self.store.list_ns_instances()
        graphs = {g for r in nss for g in (r["data"] or {}).get("graphs", [])}
        owners = [r["id"] for r in nss if r["state"] not in (TERMINATED, NOT_INSTANTIATED)
                  or self.ops.active_for(r["id"], "ns") is not None]
        for g in self.driver.list_graphs():
            if g not in graphs and not any(g.startswith(f"{o}.") for o in owners):
                self.driver.delete_graph(g)
                report["orphans"].append(f"graph {g}")
        for ns in nss:
            if ns["state"] not in (INSTANTIATED, DEGRADED):
                continue
            missing = self._assess(ns["id"])[1]
            if not missing:
                continue
            if self.ops.active_for(ns["id"], "ns") is not None:
                self._put_state(ns["id"], DEGRADED, missing)
                report["degraded"].append(ns["id"])
                continue
            self._put_state(ns["id"], DEGRADED, missing)
            try:
                self.heal_ns(ns["id"])
                report["healed"].append(ns["id"])
            except MANOError as exc:
                log.error("reconciliation: NS %s could not be healed: %s", ns["id"], exc)
                report["degraded"].append(ns["id"])
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
        """Wait until no operation runs (a VNF operation of an NS operation counts through
        its NS operation); ``MANOError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while [o for o in self.ops.list(states=[OpState.STARTING, OpState.PROCESSING])
               if o.parent is None]:
            if time.monotonic() > deadline:
                raise MANOError("operations still running")
            time.sleep(0.05)


class _EmptyHop(MANOError):
    """A hop of a graph would have no instance left."""


def _parameters(params) -> D.Parameters | None:
    """``params`` of an onboarding call as ``D.Parameters`` (a mapping is taken as the
    values of a parameter file named ``params``)."""
    if params is None or isinstance(params, D.Parameters):
        return params
    return D.Parameters.of(params, "params")


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
