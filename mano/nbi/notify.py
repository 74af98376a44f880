"""Subscriptions and notifications of the NS lifecycle management interface (SOL005 clauses
6.4.16-6.4.18, data types 6.5.2.2-6.5.2.6).

- A subscription (``LccnSubscription``) belongs to the tenant that made it and names a
  ``callbackUri``. It is created only after the NFVO checked the callback: a GET on it must
  answer 204 (SOL013 clause 5.8.2); otherwise the request is refused (422).
- Filters (``LifecycleChangeNotificationsFilter``): ``notificationTypes``,
  ``operationTypes``, ``operationStates`` and ``nsInstanceSubscriptionFilter``
  (``nsInstanceIds``, ``nsInstanceNames``, ``nsdIds``); an absent filter matches all, the
  lists within one filter are and-ed, the values within one list or-ed.
- Notifications: ``NsLcmOperationOccurrenceNotification`` with ``notificationStatus``
  START when an occurrence starts (or starts rolling back) and RESULT when it reaches
  COMPLETED, FAILED_TEMP, FAILED or ROLLED_BACK; ``NsIdentifierCreationNotification`` and
  ``NsIdentifierDeletionNotification`` when an NS instance resource is created or deleted.
  Only NS instances of the subscription's tenant are notified.
- Delivery: one sender thread POSTs each notification to each matching callback in the
  order they happened, with bounded retries: ``attempts`` tries ``backoff * 2**i`` seconds
  apart, each with ``timeout``; a notification still refused after them is dropped and
  logged (the occurrence itself can always be read with GET).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass

import httpx

from mano.errors import NotFoundError
from mano.nbi.lcm import Unprocessable, iso
from mano.nbi.records import Records
from mano.opocc import OpOcc, OpState

log = logging.getLogger(__name__)
SUB = "subscription"
OP_NOTIFICATION = "NsLcmOperationOccurrenceNotification"
CREATION = "NsIdentifierCreationNotification"
DELETION = "NsIdentifierDeletionNotification"
NOTIFICATION_TYPES = (OP_NOTIFICATION, CREATION, DELETION)
START_STATES = {OpState.STARTING: "PROCESSING", OpState.ROLLING_BACK: "ROLLING_BACK"}
RESULT_STATES = (OpState.COMPLETED, OpState.FAILED_TEMP, OpState.FAILED, OpState.ROLLED_BACK)


@dataclass(frozen=True)
class Event:
    """Something that happened to an NS instance of ``tenant`` (what subscriptions match)."""

    tenant: str
    type: str
    ns_id: str
    ns_name: str
    nsd_id: str
    body: dict                 # the notification without id, subscriptionId, subscription link
    operation: str | None = None
    state: str | None = None


def matches(flt: dict, ev: Event) -> bool:
    """Whether a subscription filter selects the event (SOL005 6.5.3.8, 6.5.3.x)."""
    if flt.get("notificationTypes") and ev.type not in flt["notificationTypes"]:
        return False
    if ev.type == OP_NOTIFICATION:
        if flt.get("operationTypes") and ev.operation not in flt["operationTypes"]:
            return False
        if flt.get("operationStates") and ev.state not in flt["operationStates"]:
            return False
    ns = flt.get("nsInstanceSubscriptionFilter") or {}
    if ns.get("nsInstanceIds") and ev.ns_id not in ns["nsInstanceIds"]:
        return False
    if ns.get("nsInstanceNames") and ev.ns_name not in ns["nsInstanceNames"]:
        return False
    return not (ns.get("nsdIds") and ev.nsd_id not in ns["nsdIds"])


class Notifier:
    """Subscriptions of each tenant and the thread that delivers notifications."""

    def __init__(self, records: Records, *, attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 5.0, verify: bool | str = True):
        self.records = records
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self.http = httpx.Client(timeout=timeout, verify=verify)
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.delivered = 0          # notifications accepted by a callback (2xx)
        self.dropped = 0            # given up after ``attempts``
        self._thread = threading.Thread(target=self._run, name="nbi-notify", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(10)
        self.http.close()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued notification was delivered or dropped (tests)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    # ---- subscriptions ---------------------------------------------------------------------
    def subscribe(self, tenant: str, request: dict, root: str) -> dict:
        uri = request["callbackUri"]
        if request.get("authentication"):
            raise Unprocessable("authentication: notifications are sent without "
                                "authentication here; omit it")
        try:
            r = self.http.get(uri)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # ValueError: IDNA
            raise Unprocessable(f"callbackUri {uri}: the NFVO's GET did not get an answer "
                                f"({exc}); the endpoint must answer GET with 204") from None
        if r.status_code != 204:
            raise Unprocessable(f"callbackUri {uri}: GET answered {r.status_code}; it must "
                                f"answer 204 No Content")
        sid = str(uuid.uuid4())
        data = {"callbackUri": uri, "filter": request.get("filter") or {}}
        self.records.put(SUB, sid, tenant, data)
        return self.view(sid, tenant, root)

    def view(self, sid: str, tenant: str, root: str) -> dict:
        found = self.records.find(SUB, sid)
        if found is None or found[0] != tenant:
            raise NotFoundError(f"no subscription {sid!r}")
        d = found[1]
        out = {"id": sid, "callbackUri": d["callbackUri"],
               "_links": {"self": {"href": f"{root}/nslcm/v1/subscriptions/{sid}"}}}
        if d["filter"]:
            out["filter"] = d["filter"]
        return out

    def list(self, tenant: str, root: str) -> list[dict]:
        return [self.view(i, tenant, root) for i, _, _ in self.records.list(SUB, tenant)]

    def unsubscribe(self, sid: str, tenant: str) -> None:
        self.view(sid, tenant, "")
        self.records.delete(SUB, sid)

    # ---- events ----------------------------------------------------------------------------
    def publish(self, ev: Event, root: str) -> None:
        """Queue ``ev`` for every matching subscription of its tenant."""
        for sid, _, sub in self.records.list(SUB, ev.tenant):
            if matches(sub["filter"], ev):
                body = {"id": str(uuid.uuid4()), **ev.body, "subscriptionId": sid}
                body["_links"] = {**body["_links"], "subscription": {
                    "href": f"{root}/nslcm/v1/subscriptions/{sid}"}}
                self._queue.put((sub["callbackUri"], body))

    @staticmethod
    def op_event(op: OpOcc, tenant: str, ns_name: str, nsd_id: str, root: str) -> Event | None:
        """The START or RESULT notification event of an occurrence's new state, if any."""
        if op.level != "ns":
            return None
        if op.state in START_STATES:
            status, state = "START", START_STATES[op.state]
        elif op.state in RESULT_STATES:
            status, state = "RESULT", str(op.state)
        else:
            return None
        body = {"notificationType": OP_NOTIFICATION, "timeStamp": iso(op.updated),
                "notificationStatus": status, "operationState": state,
                "nsInstanceId": op.subject_id, "nsLcmOpOccId": op.id,
                "operation": op.operation, "isAutomaticInvocation": False,
                "_links": {"nsInstance": {"href": f"{root}/nslcm/v1/ns_instances/"
                                                  f"{op.subject_id}"},
                           "nsLcmOpOcc": {"href": f"{root}/nslcm/v1/ns_lcm_op_occs/{op.id}"}}}
        if op.error and status == "RESULT":
            body["error"] = {"title": f"{op.operation} failed", "status": 500,
                             "detail": op.error}
        return Event(tenant, OP_NOTIFICATION, op.subject_id, ns_name, nsd_id, body,
                     op.operation, state)

    @staticmethod
    def ns_event(kind: str, tenant: str, ns_id: str, ns_name: str, nsd_id: str,
                 root: str) -> Event:
        body = {"notificationType": kind, "timeStamp": iso(time.time()), "nsInstanceId": ns_id,
                "_links": {"nsInstance": {"href": f"{root}/nslcm/v1/ns_instances/{ns_id}"}}}
        return Event(tenant, kind, ns_id, ns_name, nsd_id, body)

    def on_op(self, op: OpOcc, owner: tuple[str, str, str] | None, root: str) -> None:
        """An occurrence changed state (``OpOccManager`` listener); ``owner`` is its NS's
        (tenant, name, nsdId), None for an NS the NBI does not know."""
        if owner is None:
            return
        ev = self.op_event(op, owner[0], owner[1], owner[2], root)
        if ev is not None:
            self._publish_safely(ev, root)

    def on_ns(self, kind: str, tenant: str, ns_id: str, name: str, nsd_id: str,
              root: str) -> None:
        typ = CREATION if kind == "created" else DELETION
        self._publish_safely(self.ns_event(typ, tenant, ns_id, name, nsd_id, root), root)

    def _publish_safely(self, ev: Event, root: str) -> None:
        # Called from inside NFVO operations: a notification that cannot be queued (its
        # records unreadable) must not fail the operation it reports on.
        try:
            self.publish(ev, root)
        except Exception:
            self.dropped += 1
            log.exception("notification %s for NS %s not queued", ev.type, ev.ns_id)

    # ---- delivery --------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, uri: str, body: dict) -> None:
        for i in range(self.attempts):
            try:
                r = self.http.post(uri, json=body)
                if 200 <= r.status_code < 300:
                    self.delivered += 1
                    return
                why = f"answered {r.status_code}"
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                why = f"failed: {exc}"
            log.info("notification %s to %s %s (attempt %d of %d)", body["notificationType"],
                     uri, why, i + 1, self.attempts)
            if i + 1 < self.attempts and self._stop.wait(self.backoff * 2 ** i):
                break
        self.dropped += 1
        log.warning("notification %s %s to %s dropped after %d attempts",
                    body["notificationType"], body["id"], uri, self.attempts)
