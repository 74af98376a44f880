"""SOL005 NS lifecycle management (clause 6) over the NFVO.

Mapping onto the NFVO:

- An ``NsInstance`` is an NFVO NS record (its id a UUID) plus the NBI's record of its name,
  description, NsdInfo and tenant. The NFVO's TERMINATED is SOL005's NOT_INSTANTIATED;
  its DEGRADED (instantiated, lacking instances or graphs) is INSTANTIATED: it can be
  healed, scaled (the NFVO refuses that, saying what is missing) and terminated.
- Its ``vnfInstance`` entries are the NS's VNFs, one per constituent VNFD, with id
  ``{nsInstanceId}.{vnfdId}``; their VNFC instances (the NFVI instances, e.g. ``fw_1``) are
  the ``vnfcResourceInfo``. Scale and heal requests name a VNF by that id or by its vnfdId;
  a heal names the VNFC in ``additionalParams.vnfcInstanceId`` (needed when the VNF has
  more than one) and may give ``additionalParams.mode`` (restart | recreate).
- Each LCM request starts the NFVO operation in a worker thread and answers as soon as the
  NFVO has created its NS-level operation occurrence, with that occurrence's id (so a
  second request while one runs is refused by the NFVO with a conflict, 409). The
  occurrence then moves PROCESSING -> COMPLETED, or FAILED_TEMP when a step fails (the
  NFVO runs without automatic rollback here, so the client chooses retry, rollback or
  fail). The NFVO's STARTING (SOL003) is shown as PROCESSING, SOL005 having no STARTING.
- ``retry`` of an NS occurrence is the NFVO's: the failed occurrence is rolled back and a
  new one started (its ``operationParams`` carry ``retry_of``); ``cancel`` is refused, the
  NFVO having no way to interrupt a running step.
"""
from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime

from mano.errors import ConflictError, MANOError, NotFoundError
from mano.nbi.catalogue import NS, PROVIDER, Catalogue
from mano.nbi.records import Records
from mano.nfvo import DEGRADED
from mano.opocc import OpOcc, OpState
from mano.vnfm import INSTANTIATED

log = logging.getLogger(__name__)
OP = "op"
FLAVOUR = "default"
LAUNCH_TIMEOUT_S = 60.0


class Unprocessable(MANOError):
    """A well-formed request this NFVO cannot act on (422): names the field and what is
    valid."""


def iso(t: float) -> str:
    """Wall-clock seconds as an RFC 3339 date-time (UTC), as SOL013 DateTime."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class Runner:
    """Runs NFVO operations in worker threads; ``launch`` returns the id of the NS-level
    occurrence the call created, or raises what the call raised before creating one."""

    def __init__(self, nfvo):
        self._tls = threading.local()
        self.threads: set[threading.Thread] = set()
        nfvo.ops.listeners.append(self._on_op)

    def _on_op(self, op: OpOcc) -> None:
        fut = getattr(self._tls, "future", None)
        if fut is not None and not fut.done() and op.level == "ns" and \
                op.state == OpState.STARTING:
            fut.set_result(op.id)

    def launch(self, fn, *args) -> str:
        fut: Future = Future()

        def run():
            self._tls.future = fut
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 -- handed to the caller or logged
                if not fut.done():
                    fut.set_exception(exc)
                else:
                    log.info("operation ended with an error: %s", exc)
            finally:
                if not fut.done():
                    fut.set_exception(MANOError(f"{fn.__name__} started no operation"))
                self.threads.discard(threading.current_thread())

        t = threading.Thread(target=run, name="nbi-lcm", daemon=True)
        self.threads.add(t)
        t.start()
        return fut.result(timeout=LAUNCH_TIMEOUT_S)

    def run_in_background(self, fn, *args) -> None:
        """For tasks that create no new occurrence (rollback): errors go to the log and to
        the occurrence's own state."""
        def run():
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 -- the occurrence records the failure
                log.info("%s ended with an error: %s", fn.__name__, exc)
            finally:
                self.threads.discard(threading.current_thread())
        t = threading.Thread(target=run, name="nbi-task", daemon=True)
        self.threads.add(t)
        t.start()

    def join(self, timeout: float = 30.0) -> None:
        """Wait for every running worker (tests, shutdown)."""
        for t in list(self.threads):
            t.join(timeout)


class Lifecycle:
    """NsInstance and NsLcmOpOcc resources of each tenant; views are SOL005 JSON dicts."""

    def __init__(self, nfvo, records: Records, catalogue: Catalogue):
        self.nfvo, self.records, self.catalogue = nfvo, records, catalogue
        self.runner = Runner(nfvo)
        #: called as (kind "created"|"deleted", tenant, ns_id, name, nsd_id) after an NS
        #: instance resource is created or deleted (notifications)
        self.ns_listeners: list = []

    def owner(self, ns_id: str) -> tuple[str, str, str] | None:
        """(tenant, name, nsdId) of an NS instance the NBI created, else None."""
        found = self.records.find(NS, ns_id)
        if found is None:
            return None
        try:
            nsd_id = self.nfvo.store.get_ns_instance(ns_id)["nsd_id"]
        except NotFoundError:
            nsd_id = found[1].get("nsdId", "")
        return found[0], found[1]["nsInstanceName"], nsd_id

    # ---- NS instances ----------------------------------------------------------------------
    def _meta(self, ns_id: str, tenant: str) -> dict:
        found = self.records.find(NS, ns_id)
        if found is None or found[0] != tenant:
            raise NotFoundError(f"no NS instance {ns_id!r}")
        return found[1]

    def create(self, tenant: str, nsd_id: str, name: str, description: str) -> str:
        info_id = self.catalogue.nsd_info_for(nsd_id, tenant)
        if not self.nfvo.store.get_nsd(nsd_id)["enabled"]:
            raise ConflictError(f"NSD {nsd_id} is DISABLED; enable it (PATCH "
                                f"nsdOperationalState ENABLED) to create NS instances")
        ns_id = str(uuid.uuid4())
        self.nfvo.create_ns(nsd_id, ns_id)
        self.records.put(NS, ns_id, tenant, {"nsInstanceName": name,
                                             "nsInstanceDescription": description,
                                             "nsdInfoId": info_id, "nsdId": nsd_id})
        for listener in list(self.ns_listeners):
            listener("created", tenant, ns_id, name, nsd_id)
        return ns_id

    def ns_instance(self, ns_id: str, tenant: str, root: str) -> dict:
        meta = self._meta(ns_id, tenant)
        row = self.nfvo.store.get_ns_instance(ns_id)
        inst = row["state"] in (INSTANTIATED, DEGRADED)
        base = f"{root}/nslcm/v1/ns_instances/{ns_id}"
        links = {"self": {"href": base}}
        if inst:
            for task in ("scale", "heal", "terminate"):
                links[task] = {"href": f"{base}/{task}"}
        else:
            links["instantiate"] = {"href": f"{base}/instantiate"}
        out = {"id": ns_id, "nsInstanceName": meta["nsInstanceName"],
               "nsInstanceDescription": meta["nsInstanceDescription"],
               "nsdId": row["nsd_id"], "nsdInfoId": meta["nsdInfoId"],
               "nsState": "INSTANTIATED" if inst else "NOT_INSTANTIATED", "_links": links}
        if inst:
            out["flavourId"] = FLAVOUR
            out["vnfInstance"] = self._vnfs(ns_id, row["nsd_id"])
        return out

    def _vnfs(self, ns_id: str, nsd_id: str) -> list[dict]:
        out = []
        for vnfd_id in self.nfvo.nsd(nsd_id).vnfs:
            v = self.nfvo.vnfd(vnfd_id)
            rows = self.nfvo.vnfm.instances(ns_id, vnfd_id)
            entry = {"id": f"{ns_id}.{vnfd_id}", "vnfInstanceName": vnfd_id, "vnfdId": v.id,
                     "vnfProvider": PROVIDER, "vnfProductName": v.name,
                     "vnfSoftwareVersion": v.version, "vnfdVersion": v.version,
                     "vnfPkgId": self.catalogue._pkg_of(v.id),
                     "instantiationState": "INSTANTIATED" if rows else "NOT_INSTANTIATED"}
            if rows:
                entry["instantiatedVnfInfo"] = {
                    "flavourId": FLAVOUR, "vnfState": "STARTED",
                    "scaleStatus": [{"aspectId": "default",
                                     "scaleLevel": max(0, (len(rows) - v.scaling.min)
                                                       // max(1, v.scaling.step))}],
                    "vnfcResourceInfo": [
                        {"id": r["id"], "vduId": v.vdu.id,
                         "computeResource": {"resourceId": r["id"]},
                         "metadata": {"computeNode": r["compute_node"], "switch": r["switch"],
                                      "ip": r["ip"], "mac": r["mac"], "state": r["state"]}}
                        for r in rows]}
            out.append(entry)
        return out

    def list(self, tenant: str, root: str) -> list[dict]:
        return [self.ns_instance(i, tenant, root) for i, _, _ in self.records.list(NS, tenant)]

    def delete(self, ns_id: str, tenant: str) -> None:
        meta = self._meta(ns_id, tenant)
        nsd_id = self.nfvo.store.get_ns_instance(ns_id)["nsd_id"]
        self.nfvo.delete_ns(ns_id)
        self.records.delete(NS, ns_id)
        for listener in list(self.ns_listeners):
            listener("deleted", tenant, ns_id, meta["nsInstanceName"], nsd_id)

    # ---- LCM operations --------------------------------------------------------------------
    def _start(self, tenant: str, request: dict, fn, *args) -> str:
        op_id = self.runner.launch(fn, *args)
        self.records.put(OP, op_id, tenant, {"operationParams": request})
        return op_id

    def instantiate(self, ns_id: str, tenant: str, request: dict) -> str:
        self._meta(ns_id, tenant)
        if request["nsFlavourId"] != FLAVOUR:
            raise Unprocessable(f"nsFlavourId {request['nsFlavourId']!r}: the NSDs here have "
                                f"one deployment flavour, {FLAVOUR!r}")
        row = self.nfvo.store.get_ns_instance(ns_id)
        if row["state"] == INSTANTIATED:
            raise ConflictError(f"NS instance {ns_id} is INSTANTIATED already")
        if row["state"] == DEGRADED:
            raise ConflictError(f"NS instance {ns_id} is INSTANTIATED already (DEGRADED: "
                                f"heal it or terminate it)")
        return self._start(tenant, request, self.nfvo.instantiate, row["nsd_id"], ns_id)

    def _vnf_of(self, ns_id: str, vnf_instance_id: str, field: str) -> str:
        nsd = self.nfvo.nsd(self.nfvo.store.get_ns_instance(ns_id)["nsd_id"])
        for vnfd_id in nsd.vnfs:
            if vnf_instance_id in (f"{ns_id}.{vnfd_id}", vnfd_id):
                return vnfd_id
        raise Unprocessable(f"{field} {vnf_instance_id!r} is no VNF of NS instance {ns_id}; "
                            f"valid: {', '.join(f'{ns_id}.{v}' for v in nsd.vnfs)}")

    def _need_instantiated(self, ns_id: str) -> None:
        """ConflictError unless the NS is INSTANTIATED in SOL005's terms (the NFVO's
        INSTANTIATED or DEGRADED: a DEGRADED NS refused here could be neither terminated
        nor instantiated again)."""
        st = self.nfvo.store.get_ns_instance(ns_id)["state"]
        if st not in (INSTANTIATED, DEGRADED):
            raise ConflictError(f"NS instance {ns_id} is NOT_INSTANTIATED; the operation "
                                f"needs it INSTANTIATED")

    def scale(self, ns_id: str, tenant: str, request: dict) -> str:
        self._meta(ns_id, tenant)
        if request["scaleType"] != "SCALE_VNF":
            raise Unprocessable(f"scaleType {request['scaleType']}: only SCALE_VNF is "
                                f"supported (NS scaling levels are not defined here)")
        data = request.get("scaleVnfData") or []
        if len(data) != 1:
            raise Unprocessable(f"scaleVnfData: exactly one entry is supported, got "
                                f"{len(data)}")
        d = data[0]
        self._need_instantiated(ns_id)
        vnfd_id = self._vnf_of(ns_id, d["vnfInstanceId"], "scaleVnfData[0].vnfInstanceId")
        steps = (d.get("scaleByStepData") or {}).get("numberOfSteps", 1)
        direction = "out" if d["scaleVnfType"] == "SCALE_OUT" else "in"
        return self._start(tenant, request, self.nfvo.scale, ns_id, vnfd_id, direction, steps)

    def heal(self, ns_id: str, tenant: str, request: dict) -> str:
        self._meta(ns_id, tenant)
        data = request.get("healVnfData") or []
        if request.get("healNsData") is not None or len(data) != 1:
            raise Unprocessable("healVnfData: exactly one entry is supported (healNsData is "
                                "not)")
        d = data[0]
        self._need_instantiated(ns_id)
        params = d.get("additionalParams") or {}
        vnfc = params.get("vnfcInstanceId")
        rows = self.nfvo.store.list_vnf_instances(ns_id=ns_id, state=INSTANTIATED)
        if any(r["id"] == d["vnfInstanceId"] for r in rows):
            vnfc = vnfc or d["vnfInstanceId"]      # a VNFC named directly
        else:
            vnfd_id = self._vnf_of(ns_id, d["vnfInstanceId"], "healVnfData[0].vnfInstanceId")
            mine = [r["id"] for r in rows if r["vnfd_id"] == vnfd_id]
            if vnfc is None and len(mine) == 1:
                vnfc = mine[0]
            elif vnfc not in mine:
                raise Unprocessable(
                    f"healVnfData[0].additionalParams.vnfcInstanceId {vnfc!r}: name one VNFC "
                    f"instance of {d['vnfInstanceId']}: {', '.join(mine) or 'none'}")
        mode = params.get("mode")
        if mode not in (None, "restart", "recreate"):
            raise Unprocessable(f"healVnfData[0].additionalParams.mode {mode!r}; valid: "
                                f"restart, recreate")
        return self._start(tenant, request, self.nfvo.heal, ns_id, vnfc, mode)

    def terminate(self, ns_id: str, tenant: str, request: dict) -> str:
        self._meta(ns_id, tenant)
        if request.get("terminationTime") is not None:
            raise Unprocessable("terminationTime: graceful termination at a later time is "
                                "not supported; omit it to terminate now")
        self._need_instantiated(ns_id)
        return self._start(tenant, request, self.nfvo.terminate, ns_id)

    # ---- operation occurrences -------------------------------------------------------------
    def _op(self, op_id: str, tenant: str) -> OpOcc:
        try:
            op = self.nfvo.ops.get(op_id)
        except NotFoundError:
            op = None
        if op is None or op.level != "ns" or not self._owns(op.subject_id, tenant):
            raise NotFoundError(f"no NS LCM operation occurrence {op_id!r}")
        return op

    def _owns(self, ns_id: str, tenant: str) -> bool:
        found = self.records.find(NS, ns_id)
        return found is not None and found[0] == tenant

    def op_occ(self, op_id: str, tenant: str, root: str) -> dict:
        return self._view(self._op(op_id, tenant), root)

    def _view(self, op: OpOcc, root: str) -> dict:
        state = "PROCESSING" if op.state == OpState.STARTING else str(op.state)
        base = f"{root}/nslcm/v1/ns_lcm_op_occs/{op.id}"
        links = {"self": {"href": base},
                 "nsInstance": {"href": f"{root}/nslcm/v1/ns_instances/{op.subject_id}"}}
        if op.state == OpState.FAILED_TEMP:
            for task in ("retry", "rollback", "fail"):
                links[task] = {"href": f"{base}/{task}"}
        found = self.records.find(OP, op.id)
        params = found[1]["operationParams"] if found else dict(op.params)
        out = {"id": op.id, "operationState": state, "stateEnteredTime": iso(op.updated),
               "nsInstanceId": op.subject_id, "lcmOperationType": op.operation,
               "startTime": iso(op.started), "isAutomaticInvocation": found is None,
               "operationParams": params, "isCancelPending": False, "_links": links}
        if op.error:
            out["error"] = {"title": f"{op.operation} failed", "status": 500,
                            "detail": op.error}
        return out

    def op_occs(self, tenant: str, root: str) -> list[dict]:
        return [self._view(op, root) for op in self.nfvo.ops.list(level="ns")
                if self._owns(op.subject_id, tenant)]

    def retry(self, op_id: str, tenant: str) -> str:
        op = self._op(op_id, tenant)
        self._need_failed_temp(op, "retried")
        # SOL005 retry: the same occurrence goes back to PROCESSING and resumes
        self.runner.run_in_background(self.nfvo.retry, op_id)
        return op_id

    def rollback(self, op_id: str, tenant: str) -> None:
        op = self._op(op_id, tenant)
        self._need_failed_temp(op, "rolled back")
        self.runner.run_in_background(self.nfvo.rollback, op_id)

    def fail(self, op_id: str, tenant: str, root: str) -> dict:
        op = self._op(op_id, tenant)
        self._need_failed_temp(op, "marked failed")
        self.nfvo.fail(op_id)
        return self._view(self.nfvo.ops.get(op_id), root)

    def cancel(self, op_id: str, tenant: str) -> None:
        op = self._op(op_id, tenant)
        raise ConflictError(f"operation {op_id} is {op.state}: this NFVO cannot cancel a "
                            f"running operation; wait for it to end, then roll it back")

    @staticmethod
    def _need_failed_temp(op: OpOcc, what: str) -> None:
        if op.state != OpState.FAILED_TEMP:
            raise ConflictError(f"operation {op.id} is {op.state}; only an operation in "
                                f"FAILED_TEMP can be {what}")
