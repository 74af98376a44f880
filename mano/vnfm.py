"""VNF Manager: the lifecycle of VNF instances, as operation occurrences (ETSI SOL003).

A *VNF instance* here is one VNF of an NS (``ns_id/vnfd_id``); its *VNFC instances* are the
hosts that run its program (ids like ``fw_3``; one per scaling step). Each operation
(INSTANTIATE, SCALE, HEAL, TERMINATE) is an operation occurrence: STARTING until the NFVO
grants it, PROCESSING while it works, then COMPLETED. One operation at a time per VNF
instance (a second is refused with ``ConflictError``). A failing step leaves FAILED_TEMP and,
unless ``auto_rollback`` is off, rolls back what was done (ROLLING_BACK -> ROLLED_BACK).

An operation that is part of an NS operation (``parent``) follows it: when its own work is
done it records the step ``done`` and stays PROCESSING until the NFVO completes the parent
(both in one transaction), is rolled back or failed with it; a second call for the same VNF
within the same parent continues that occurrence instead of starting another. Failures of
such an operation are left FAILED_TEMP for the parent to handle.

Steps are recorded *before* they touch the infrastructure (``alloc:fw_3`` with the
allocation, in one commit, ``create:fw_3`` with the CREATING record before the host is made, ``delete:fw_3`` before it is
removed, ``drop:fw_3`` before the record of a LOST one is closed, ``restart:fw_3`` before a
restart), so that after a crash a rollback knows everything that may exist. Undoing ``create``/``alloc`` removes what may have been made;
``delete`` is undone only if the instance still exists in the NFVI (else it cannot be, and
the rollback says so: the occurrence ends FAILED, see ``rollback``); a ``restart`` leaves
the program running as before and needs no undo.

VNF instance records are CREATING (between ``create:`` and the NFVI's answer), INSTANTIATED,
LOST (the NFVI no longer has it: found by the NFVO's reconciliation; it holds no address
and no resources) or TERMINATED.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from mano.errors import ConflictError, MANOError, NotFoundError
from mano.nfvi import Flavour, Image
from mano.opocc import OpOccManager, OpState
from mano.vim.placement import PlacementRequest

log = logging.getLogger(__name__)

INSTANTIATED, TERMINATED, FAILED = "INSTANTIATED", "TERMINATED", "FAILED"
CREATING, LOST = "CREATING", "LOST"
DONE = "done"    # the step a child operation records when its own work is finished


def vnf_subject(ns_id: str, vnfd_id: str) -> str:
    return f"{ns_id}/{vnfd_id}"


class VNFM:
    def __init__(self, driver, vim, store, opoccs: OpOccManager,
                 grant: Callable[[str, str, dict], str], *, auto_rollback: bool = True):
        self.driver, self.vim, self.store, self.ops = driver, vim, store, opoccs
        self.grant = grant              # (op_id, operation, resources) -> grant id, or raises
        self.auto_rollback = auto_rollback
        # called before an instance is removed, so the NFVO can steer traffic away from it
        # first (drain); (op, ns_id, instance_id, undoing=False) -> None; ``undoing``: a
        # rollback's removal, where a graph that cannot be reprogrammed is removed instead
        self.before_remove: Callable | None = None
        self.events: list = []          # resource changes reported by the VIM
        self._ids = threading.Lock()    # instance ids are reserved under this lock
        self._top: dict[str, int] = {}  # VNFD -> the number new_instance_id gave last
        vim.subscribe("resource", self.events.append)

    # ---- queries ------------------------------------------------------------------------
    def instances(self, ns_id: str, vnfd_id: str, *, live_only: bool = True) -> list[dict]:
        rows = self.store.list_vnf_instances(ns_id=ns_id, vnfd_id=vnfd_id,
                                             state=INSTANTIATED if live_only else None)
        return sorted(rows, key=lambda r: _natural(r["id"]))

    def new_instance_id(self, vnfd_id: str) -> str:
        """``<vnfd_id>_<n>``, n one more than the highest such number among the store's
        records of the VNFD and the NFVI's instances (call it holding ``self._ids``).

        Only the first call per VNFD lists them all. Later ones start from the number it
        returned last (instances get ids only here, and their record is written before
        the NFVI makes them), listing again only when the record of that number is gone
        (deleted, or never written: its placement failed) or the next number is taken."""
        top = self._top.get(vnfd_id)
        if top is None or (top and not self._recorded(f"{vnfd_id}_{top}")) or \
                self._recorded(f"{vnfd_id}_{top + 1}"):
            used = {r["id"] for r in self.store.list_vnf_instances(vnfd_id=vnfd_id)}
            used |= {i.instance_id for i in self.driver.list_instances()}
            pattern = re.compile(re.escape(vnfd_id) + r"_(\d+)")
            top = max((int(m.group(1)) for u in used if (m := pattern.fullmatch(u))),
                      default=0)
        self._top[vnfd_id] = top + 1
        return f"{vnfd_id}_{top + 1}"

    def _recorded(self, iid: str) -> bool:
        try:
            self.store.get_vnf_instance(iid)
        except NotFoundError:
            return False
        return True

    # ---- operations -----------------------------------------------------------------------
    def instantiate(self, ns_id: str, vnfd, ctx=None, parent: str | None = None, *,
                    count: int | None = None) -> list[dict]:
        """Create ``count`` instances (default: the scaling aspect's ``min``)."""
        n = vnfd.scaling.min if count is None else count
        return self._run(ns_id, vnfd, "INSTANTIATE", {"instances": n}, parent,
                         lambda op: [self._add(op, ns_id, vnfd, ctx) for _ in range(n)])

    def instantiate_many(self, ns_id: str, wants: list[tuple], parent: str, *,
                         before: Callable | None = None) -> list[dict]:
        """Instantiate several VNFs of NS ``ns_id`` within NS operation ``parent``, one VNF
        operation each (as ``instantiate``), overlapping the NFVI's creates.

        ``wants``: ``(vnfd, count, ctx)`` in order, ``ctx()`` giving the placement context
        (called once the earlier instances are placed, so it may name their switches);
        ``before(vnfd)`` runs before each VNF's operation starts. Operations, placements
        and records are made one instance after another in that order, each committed
        before its ``create_instance`` (as ``_add``); up to the driver's
        ``create_concurrency`` creates (``mano.nfvi``; default 1) run at once on worker
        threads. With 1 each instance is created before the next is placed: exactly
        ``instantiate`` called VNF after VNF. A VNF operation records ``done`` once all its
        instances exist; one whose placement or create failed goes FAILED_TEMP (its
        records stay for the NS operation's retry or rollback), no placement follows a
        failure seen, and once every create started has ended the first error is raised.
        A ``BaseException`` that is no ``Exception`` (the process is dying) is raised
        after the creates running have ended, without writing anything more. Returns the
        new instances' records, in order."""
        width = max(1, int(getattr(self.driver, "create_concurrency", 1) or 1))
        pool = ThreadPoolExecutor(width, thread_name_prefix="vnfm-create") \
            if width > 1 else None
        started: list[tuple[object, list[Future]]] = []
        refused: Exception | None = None      # an operation that could not start
        try:
            for vnfd, count, ctx in wants:
                if _first_error(started) is not None:
                    break
                if before is not None:
                    before(vnfd)
                try:
                    op = self._begin(ns_id, vnfd, "INSTANTIATE", {"instances": count},
                                     parent)
                except Exception as exc:  # noqa: BLE001 - raised once the creates end
                    refused = exc
                    break
                futs: list[Future] = []
                started.append((op, futs))
                for _ in range(count):
                    try:
                        iid, node = self._reserve(op, ns_id, vnfd, ctx())
                    except Exception as exc:  # noqa: BLE001 - the operation's failure
                        futs.append(_failed_future(exc))
                        break
                    futs.append(_call(pool, self._create, op, ns_id, vnfd, iid, node))
                    if _first_error(started) is not None:
                        break
                if pool is None:     # all done: settle it before the next one starts
                    self._settle(op, futs, parent)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        err = _first_error(started)
        if err is not None and not isinstance(err, Exception):
            raise err          # dying: nothing more is written
        if pool is not None:
            for op, futs in started:
                self._settle(op, futs, parent)
        if err is not None or refused is not None:
            raise err if err is not None else refused
        return [f.result() for _op, futs in started for f in futs]

    def _settle(self, op, futs: list[Future], parent) -> None:
        """End a VNF operation of ``instantiate_many`` by its creates' outcome."""
        errors = [f.exception() for f in futs if f.exception() is not None]
        dying = [e for e in errors if not isinstance(e, Exception)]
        if dying:
            raise dying[0]
        if errors:
            self._failed(op, errors[0], parent)
        else:
            self._finished(op, parent)

    def scale(self, ns_id: str, vnfd, direction: str, steps: int = 1, ctx=None,
              parent: str | None = None, instance: str | None = None, *,
              count: int | None = None) -> list[dict]:
        """Scale out (add instances, returned) or in (remove ``instance`` if given, then
        the newest others; each drained first by ``before_remove``) by ``steps`` steps of
        the scaling aspect, or by ``count`` instances if given (an NS operation resumed by
        a retry finishes what is left). Errors as ``check_scale``."""
        current, delta = self.check_scale(ns_id, vnfd, direction, steps, instance, count)

        def body(op):
            if direction == "out":
                return [self._add(op, ns_id, vnfd, ctx) for _ in range(delta)]
            for iid in _scale_in_victims([r["id"] for r in current], delta, instance):
                self._remove(op, iid)
            return []
        params = {"direction": direction, "delta": delta}
        if instance is not None:
            params["instance"] = instance
        return self._run(ns_id, vnfd, "SCALE", params, parent, body)

    def check_scale(self, ns_id: str, vnfd, direction: str, steps: int = 1,
                    instance: str | None = None, count: int | None = None):
        """Refuse (before any operation starts) a scale outside the VNF's scaling aspect,
        or a scale-in of an instance that is not a live instance of this VNF of this NS:
        ``NotFoundError`` for an unknown instance, ``ConflictError`` otherwise. Returns
        (the live instances oldest first, the number of instances to add or remove)."""
        if direction not in ("out", "in"):
            raise MANOError(f"scale direction must be 'out' or 'in', not {direction!r}")
        current = self.instances(ns_id, vnfd.id)
        delta = steps * vnfd.scaling.step if count is None else count
        target = len(current) + delta if direction == "out" else len(current) - delta
        lo, hi = vnfd.scaling.min, vnfd.scaling.max
        if not lo <= target <= hi:
            raise ConflictError(
                f"cannot scale {vnf_subject(ns_id, vnfd.id)} {direction} by {delta}: "
                f"{len(current)} -> {target} instances is outside its scaling aspect "
                f"[{lo}, {hi}]")
        if instance is not None:
            self._check_victim(ns_id, vnfd, direction, instance, current)
        return current, delta

    def _check_victim(self, ns_id: str, vnfd, direction: str, instance: str,
                      current: list[dict]) -> None:
        subject = vnf_subject(ns_id, vnfd.id)
        if direction != "in":
            raise ConflictError(f"scale-out of {subject} names instance {instance!r}; only "
                                f"a scale-in removes a named instance")
        try:
            row = self.store.get_vnf_instance(instance)
        except NotFoundError:
            raise NotFoundError(f"cannot scale {subject} in: no VNF instance {instance!r}; "
                                f"its live instances are "
                                f"{', '.join(r['id'] for r in current)}") from None
        if (row["ns_id"], row["vnfd_id"]) != (ns_id, vnfd.id):
            raise ConflictError(f"cannot scale {subject} in by removing {instance!r}: it is "
                                f"an instance of {vnf_subject(row['ns_id'] or '-', row['vnfd_id'])}")
        if row["state"] != INSTANTIATED:
            raise ConflictError(f"cannot scale {subject} in by removing {instance!r}: it is "
                                f"{row['state']}, not INSTANTIATED")

    def heal(self, ns_id: str, vnfd, instance_id: str, mode: str | None = None, ctx=None,
             parent: str | None = None) -> list[dict]:
        mode = mode or vnfd.healing.mode
        if mode not in ("restart", "recreate"):
            raise MANOError(f"heal mode must be 'restart' or 'recreate', not {mode!r}")
        row = self.store.get_vnf_instance(instance_id)
        if row["ns_id"] != ns_id or row["vnfd_id"] != vnfd.id:
            raise NotFoundError(f"instance {instance_id} is not part of "
                                f"{vnf_subject(ns_id, vnfd.id)}")

        def body(op):
            lost = self.driver.find_instance(instance_id) is None
            if mode == "restart" and not lost:   # a lost instance can only be recreated
                self.ops.record_step(op.id, f"restart:{instance_id}")
                self.driver.restart_instance(instance_id)
                data = dict(row["data"] or {})
                data["restarts"] = data.get("restarts", 0) + 1
                self._put(self.store.get_vnf_instance(instance_id), INSTANTIATED, data=data)
                return [self.store.get_vnf_instance(instance_id)]
            new = self._add(op, ns_id, vnfd, ctx)   # make before break
            self._remove(op, instance_id)
            return [new]
        return self._run(ns_id, vnfd, "HEAL", {"instance": instance_id, "mode": mode},
                         parent, body)

    def terminate(self, ns_id: str, vnfd, parent: str | None = None) -> list[dict]:
        def body(op):
            for row in self.instances(ns_id, vnfd.id, live_only=False):
                if row["state"] != TERMINATED:
                    self._remove(op, row["id"])
            return []
        return self._run(ns_id, vnfd, "TERMINATE", {}, parent, body)

    # ---- the machinery ----------------------------------------------------------------------
    def _run(self, ns_id, vnfd, operation, params, parent, body):
        op = self._begin(ns_id, vnfd, operation, params, parent)
        try:
            result = body(op)
        except Exception as exc:
            self._failed(op, exc, parent)
            raise
        self._finished(op, parent)
        return result

    def _begin(self, ns_id, vnfd, operation, params, parent):
        """The occurrence of ``operation`` on ``ns_id/vnfd.id``, PROCESSING: the one NS
        operation ``parent`` already has for it, or a new one started and granted (a
        refused grant ends it ROLLED_BACK and raises)."""
        subject = vnf_subject(ns_id, vnfd.id)
        op = self._continued(subject, parent)
        if op is None:
            refused: MANOError | None = None
            # start, grant and PROCESSING in one commit: none touches the NFVI, so a crash
            # before it is a crash before the operation started
            with self.store.transaction():
                op = self.ops.start("vnf", subject, operation,
                                    {**params, "vnfd": vnfd.id, "ns": ns_id}, parent=parent)
                try:
                    grant_id = self.grant(op.id, operation,
                                          {"vnf": subject, **params,
                                           "flavour": _flavour_dict(vnfd)})
                except MANOError as exc:
                    refused = exc
                    self.ops.transition(op.id, OpState.ROLLED_BACK,
                                        error=f"grant refused: {exc}")
                else:
                    self.ops.transition(op.id, OpState.PROCESSING, grant_id=grant_id)
            if refused is not None:
                raise refused
        return op

    def _failed(self, op, exc: Exception, parent) -> None:
        self.ops.transition(op.id, OpState.FAILED_TEMP, error=str(exc))
        if self.auto_rollback and parent is None:
            self.rollback(op.id)

    def _finished(self, op, parent) -> None:
        if parent is None:
            self.ops.transition(op.id, OpState.COMPLETED)
        else:   # completed with its NS operation
            self.ops.record_step(op.id, DONE)

    def _continued(self, subject: str, parent: str | None):
        """The PROCESSING occurrence of ``subject`` that NS operation ``parent`` already
        has, which a second call within that parent continues; None if there is none."""
        if parent is None:
            return None
        active = self.ops.active_for(subject, "vnf")
        if active is not None and active.parent == parent and \
                active.state == OpState.PROCESSING:
            return active
        return None

    def _add(self, op, ns_id: str, vnfd, ctx) -> dict:
        iid, node = self._reserve(op, ns_id, vnfd, ctx)
        return self._create(op, ns_id, vnfd, iid, node)

    def _reserve(self, op, ns_id: str, vnfd, ctx) -> tuple[str, str]:
        """Choose the next instance's id and compute node and commit its steps, allocation
        and CREATING record; returns (instance id, node). Nothing touches the NFVI."""
        flavour = vnfd.flavour
        with self._ids:   # the CREATING record reserves the id
            iid = self.new_instance_id(vnfd.id)
            spread = bool(getattr(getattr(vnfd, "placement", None), "anti_affinity", False))
            node = self.vim.place(PlacementRequest(vnfd.id, iid, flavour,
                                                   anti_affinity=spread), ctx)
            # one commit for the four records: each lands with the others (none of them
            # touches the NFVI) and all before create_instance, which is what the steps
            # must precede; a crash before the commit leaves none, as if placed never
            with self.store.transaction():
                self.ops.record_step(op.id, f"alloc:{iid}")
                self.store.put_allocation(iid, node, flavour.vcpu, flavour.memory_mb,
                                          flavour.disk_gb, vnf_id=vnfd.id)
                self.ops.record_step(op.id, f"create:{iid}")
                self.store.put_vnf_instance(iid, vnfd.id, "CREATING", ns_id=ns_id,
                                            compute_node=node,
                                            data={"restarts": 0, "op": op.id})
        return iid, node

    def _create(self, op, ns_id: str, vnfd, iid: str, node: str) -> dict:
        """Create reserved instance ``iid`` on ``node`` in the NFVI and book it
        INSTANTIATED; returns its record. Safe to run in several threads at once."""
        info = self.driver.create_instance(iid, node, vnfd.flavour, _image(vnfd))
        self.store.put_vnf_instance(iid, vnfd.id, INSTANTIATED, ns_id=ns_id,
                                    compute_node=node, switch=info.switch, ip=info.ip,
                                    mac=info.mac, data={"restarts": 0, "op": op.id})
        return self.store.get_vnf_instance(iid)

    def _remove(self, op, iid: str) -> None:
        row = self.store.get_vnf_instance(iid)
        if self.before_remove is not None:
            self.before_remove(op, row["ns_id"], iid)
        if row["state"] == LOST:     # nothing to delete: the record goes, undoably
            self.ops.record_step(op.id, f"drop:{iid}")
        else:
            self.ops.record_step(op.id, f"delete:{iid}")
        self.driver.delete_instance(iid)
        self.forget(iid)

    def forget(self, iid: str, state: str = TERMINATED) -> None:
        """Book an instance the NFVI no longer holds as gone: its resources released and
        its record ``state`` (TERMINATED, or LOST: then without addresses, which it no
        longer holds; the old ones are kept in ``data["lost"]``), in one transaction."""
        self.vim.release(iid)
        with self.store.transaction():
            self.store.delete_allocation(iid)
            try:
                row = self.store.get_vnf_instance(iid)
            except NotFoundError:
                return
            if state == LOST:
                data = {**(row["data"] or {}), "lost": {"ip": row["ip"], "mac": row["mac"],
                                                        "switch": row["switch"]}}
                self._put({**row, "ip": None, "mac": None, "switch": None}, LOST, data)
            else:
                self._put(row, state)

    def adopt(self, iid: str, info) -> None:
        """Book an instance the NFVI holds (``info``: ``InstanceInfo``) whose record was
        left CREATING by a crash as INSTANTIATED."""
        row = self.store.get_vnf_instance(iid)
        self._put({**row, "switch": info.switch, "ip": info.ip, "mac": info.mac}, INSTANTIATED)

    def _put(self, row: dict, state: str, data: dict | None = None) -> None:
        self.store.put_vnf_instance(row["id"], row["vnfd_id"], state, ns_id=row["ns_id"],
                                    compute_node=row["compute_node"], switch=row["switch"],
                                    ip=row["ip"], mac=row["mac"],
                                    data=data if data is not None else row["data"])

    def rollback(self, op_id: str, *, for_retry: bool = False) -> list[str]:
        """Undo the recorded steps of an occurrence (FAILED_TEMP, or PROCESSING when its NS
        operation is rolled back), newest first; return what could not be undone.

        ``create``/``alloc`` are undone (instance deleted, resources released). A ``delete``
        whose instance still exists is undone by keeping it; one whose instance is gone
        cannot be: its records are booked as gone, undoing stops there (the steps before
        it, e.g. the replacement a heal made before removing, stay) and the occurrence ends
        FAILED with that in its error, or, ``for_retry``, goes back to PROCESSING (its
        progress kept) for the retried NS operation to finish. Otherwise ROLLED_BACK. An
        exception from the NFVI leaves it FAILED_TEMP (a later rollback resumes)."""
        op = self.ops.get(op_id)
        if op.state == OpState.PROCESSING:
            self.ops.transition(op_id, OpState.FAILED_TEMP,
                                error="rolled back with its NS operation")
        op = self.ops.transition(op_id, OpState.ROLLING_BACK)
        kept: list[str] = []
        try:
            live = {i.instance_id for i in self.driver.list_instances()}
            for step in reversed(op.steps_done):
                kind, _, iid = step.partition(":")
                if kind == "delete" and iid not in live:
                    self.forget(iid)
                    kept.append(f"instance {iid} was deleted and cannot be restored")
                    break
                if kind == "create":
                    # a graph may use it already (the operation was cut after programming
                    # it): drained first, as any removal is; the NFVI refuses otherwise
                    try:
                        row = self.store.get_vnf_instance(iid)
                    except NotFoundError:
                        row = None     # cut before it was recorded: no graph names it
                    if row is not None and self.before_remove is not None:
                        self.before_remove(op, row["ns_id"], iid, undoing=True)
                    self.driver.delete_instance(iid)
                    self.forget(iid)
                elif kind == "alloc":
                    self.vim.release(iid)
                    self.store.delete_allocation(iid)
                elif kind == "drop":
                    self._put(self.store.get_vnf_instance(iid), LOST)
                # delete of an instance that still exists: kept as it is; restart: the
                # program runs as before; done: a marker
                self.ops.remove_step(op_id, step)
        except Exception as exc:
            self.ops.transition(op_id, OpState.FAILED_TEMP, error=f"rollback failed: {exc}")
            raise
        if not kept:
            self.ops.transition(op_id, OpState.ROLLED_BACK)
            return kept
        error = "rollback incomplete: " + "; ".join(kept)
        self.ops.transition(op_id, OpState.FAILED_TEMP, error=error)
        self.ops.transition(op_id, OpState.PROCESSING if for_retry else OpState.FAILED,
                            error=None if for_retry else error)
        return kept


def _call(pool: ThreadPoolExecutor | None, fn, *args) -> Future:
    """``fn(*args)`` on ``pool``, or at once on this thread (then finished) without one."""
    if pool is not None:
        return pool.submit(fn, *args)
    fut: Future = Future()
    try:
        fut.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - handed on through the future
        fut.set_exception(exc)
    return fut


def _failed_future(exc: BaseException) -> Future:
    fut: Future = Future()
    fut.set_exception(exc)
    return fut


def _first_error(started: list[tuple[object, list[Future]]]) -> BaseException | None:
    """The first error among the finished futures (a dying process's first)."""
    errors = [f.exception() for _op, futs in started for f in futs
              if f.done() and f.exception() is not None]
    dying = [e for e in errors if not isinstance(e, Exception)]
    return (dying or errors or [None])[0]


def _scale_in_victims(live: list[str], delta: int, named: str | None) -> list[str]:
    """The ``delta`` instances a scale-in removes: ``named`` first, then the newest of the
    others (``live`` is oldest first)."""
    if named is None:
        return live[len(live) - delta:]
    others = [i for i in live if i != named]
    return [named] + others[len(others) - (delta - 1):] if delta > 1 else [named]


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _image(vnfd) -> Image:
    img = vnfd.image
    return img if isinstance(img, Image) else Image(img.program, dict(img.params))


def _flavour_dict(vnfd) -> dict:
    f: Flavour = vnfd.flavour
    return {"vcpu": f.vcpu, "memory_mb": f.memory_mb, "disk_gb": f.disk_gb}
