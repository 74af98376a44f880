"""Operation occurrences: the ETSI SOL003/SOL005 life cycle of one LCM operation.

Every VNF operation (VNFM) and NS operation (NFVO) is an ``OpOcc`` that moves through::

    STARTING ──grant obtained──> PROCESSING ──done──> COMPLETED
       │                            │
       │ grant rejected / abort     │ a step failed
       v                            v
    ROLLED_BACK <──── ROLLING_BACK <──rollback── FAILED_TEMP ──fail──> FAILED
                           │                     ^     │
                           └──rollback failed────┘     └──retry──> PROCESSING

COMPLETED, FAILED and ROLLED_BACK are final. Any other transition is refused with a
``ConflictError`` naming both states and the allowed ones. One occurrence at a time per
subject (a VNF or an NS instance): ``start`` is refused while the subject has a non-final one.

``steps_done`` records what the operation has done so far (e.g. ``"allocated:fw1-0@c1"``),
so that a rollback — possibly after an NFVO restart — knows what to undo; ``remove_step``
forgets a step once undone, so an interrupted rollback resumes where it stopped.

Every change is written to the ``Store`` before the call returns, so after the process is
killed the database holds the last state reached. The manager keeps no cache: each call
reads the store, and the ``OpOcc`` values it returns are snapshots (changing one changes
nothing). ``started``/``updated`` come from ``clock``, wall-clock ``time.time`` by default,
because they are persisted and read after restarts (monotonic time restarts with the boot).
This module is the state machine only; what runs each step is the VNFM's and NFVO's.
"""
from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from mano.errors import ConflictError, NotFoundError
from mano.store import Store


class OpState(StrEnum):
    STARTING = "STARTING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED_TEMP = "FAILED_TEMP"
    FAILED = "FAILED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"


STARTING, PROCESSING, COMPLETED = OpState.STARTING, OpState.PROCESSING, OpState.COMPLETED
FAILED_TEMP, FAILED = OpState.FAILED_TEMP, OpState.FAILED
ROLLING_BACK, ROLLED_BACK = OpState.ROLLING_BACK, OpState.ROLLED_BACK

#: Allowed transitions (SOL003 5.6.2.2). A state absent as a key has none.
TRANSITIONS: dict[OpState, frozenset[OpState]] = {
    STARTING: frozenset({PROCESSING, ROLLED_BACK}),
    PROCESSING: frozenset({COMPLETED, FAILED_TEMP}),
    FAILED_TEMP: frozenset({PROCESSING, ROLLING_BACK, FAILED}),
    ROLLING_BACK: frozenset({ROLLED_BACK, FAILED_TEMP}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
    ROLLED_BACK: frozenset(),
}
FINAL_STATES: frozenset[OpState] = frozenset({COMPLETED, FAILED, ROLLED_BACK})
ACTIVE_STATES: frozenset[OpState] = frozenset(OpState) - FINAL_STATES
LEVELS = ("vnf", "ns")


@dataclass
class OpOcc:
    """One operation occurrence (a snapshot of its stored record)."""

    id: str
    level: str            # "vnf" | "ns"
    subject_id: str       # the VNF or NS instance operated on
    operation: str        # INSTANTIATE, SCALE, HEAL, TERMINATE, ...
    state: OpState
    params: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    updated: float = 0.0
    error: str | None = None
    steps_done: list[str] = field(default_factory=list)
    parent: str | None = None    # the NS operation this VNF operation is part of
    grant_id: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_row(self) -> dict[str, Any]:
        """Every column as the store holds it; a snapshot (``params`` and ``steps_done``
        are copies, so changing the row changes nothing here)."""
        # Not dataclasses.asdict: it deep-copies every field recursively, and was the
        # largest single cost of an NS operation (bench/mano_ops.py profile).
        row = {f: getattr(self, f) for f in _FIELDS}
        row["state"] = str(self.state)
        row["params"] = copy.deepcopy(self.params)
        row["steps_done"] = list(self.steps_done)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OpOcc:
        return cls(**{**row, "state": OpState(row["state"])})


_FIELDS = tuple(f.name for f in fields(OpOcc))


def _state(value: str | OpState) -> OpState:
    try:
        return OpState(value)
    except ValueError:
        raise ConflictError(f"unknown operation state {value!r}; valid: "
                            f"{', '.join(OpState)}") from None


class OpOccManager:
    """Creates operation occurrences and moves them through their states, persisting each
    change in ``store`` at once. Safe to call from several threads, and inside a caller's
    ``store.transaction()`` (then the change commits with the caller's other writes)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        #: called with each new occurrence and each transition, in the thread that made the
        #: change, once it is committed (``Store.after_commit``; e.g. the NBI's
        #: notifications); a listener must not block nor raise
        self.listeners: list[Callable[[OpOcc], None]] = []
        # No lock of our own: each call is one store transaction, which already serializes
        # threads (and a second lock taken in another order could deadlock).

    def start(self, level: str, subject_id: str, operation: str,
              params: dict[str, Any] | None = None, parent: str | None = None) -> OpOcc:
        """A new occurrence in STARTING. Refused (``ConflictError``) while the subject has a
        non-final one; ``parent``, if given, must be a known occurrence."""
        if level not in LEVELS:
            raise ValueError(f"level {level!r}; valid: {', '.join(LEVELS)}")
        if not operation:
            raise ValueError("operation must be named (INSTANTIATE, SCALE, HEAL, ...)")
        with self.store.transaction():
            busy = self._active(subject_id, level)
            if busy is not None:
                raise ConflictError(
                    f"{level} {subject_id} has operation {busy.id} ({busy.operation}) in "
                    f"state {busy.state}; one at a time")
            if parent is not None:
                self.get(parent)
            now = self.clock()
            op = OpOcc(id=uuid.uuid4().hex, level=level, subject_id=subject_id,
                       operation=operation, state=STARTING, params=dict(params or {}),
                       started=now, updated=now, parent=parent)
            # serialised at once: no snapshot copy needed (to_row's deep copy of params)
            self.store.write_op_occ({**{f: getattr(op, f) for f in _FIELDS},
                                     "state": str(op.state)})
        self._tell(op)
        return op

    def transition(self, op_id: str, new_state: str | OpState, *, error: str | None = None,
                   grant_id: str | None = None) -> OpOcc:
        """Move to ``new_state`` if SOL003 allows it, else ``ConflictError``. ``error``
        replaces the recorded error when given; entering PROCESSING (a retry) or COMPLETED
        clears it. ``grant_id`` records the grant (normally on STARTING -> PROCESSING)."""
        target = _state(new_state)
        values: dict[str, Any] = {"state": str(target), "updated": self.clock()}
        if error is not None:
            values["error"] = error
        elif target in (PROCESSING, COMPLETED):
            values["error"] = None
        if grant_id is not None:
            values["grant_id"] = grant_id
        with self.store.transaction():
            # one statement checks the state, writes only what changes (params are not
            # serialised again) and reads the occurrence back
            row = self.store.update_op_occ(op_id, values, states=_SOURCES[target])
            if row is None:
                op = self.get(op_id)        # NotFoundError for an unknown one
                allowed = TRANSITIONS[op.state]
                valid = ", ".join(sorted(allowed)) if allowed else f"none ({op.state} is final)"
                raise ConflictError(
                    f"{op.level} {op.subject_id} operation {op.id} ({op.operation}): cannot go "
                    f"from {op.state} to {target}; allowed from {op.state}: {valid}")
        op = OpOcc.from_row(row)
        self._tell(op)
        return op

    def record_step(self, op_id: str, step: str) -> None:
        """Append ``step`` to what the operation has done (persisted at once; nothing read
        back). ``ConflictError`` when the operation is final, ``NotFoundError`` when there
        is no such operation."""
        with self.store.transaction():
            if not self.store.append_op_step(op_id, step, self.clock(), states=ACTIVE_STATES):
                self._refuse_final(self.get(op_id))

    def remove_step(self, op_id: str, step: str) -> OpOcc:
        """Forget ``step`` (its last occurrence) once a rollback has undone it."""
        def drop(steps: list[str]) -> list[str]:
            if step not in steps:
                raise NotFoundError(f"operation {op_id}: no step {step!r}; done: {steps}")
            i = len(steps) - 1 - steps[::-1].index(step)
            return steps[:i] + steps[i + 1:]
        return self._edit_steps(op_id, drop)

    def get(self, op_id: str) -> OpOcc:
        try:
            return OpOcc.from_row(self.store.get_op_occ(op_id))
        except NotFoundError:
            raise NotFoundError(f"no operation occurrence {op_id!r}") from None

    def list(self, level: str | None = None, subject_id: str | None = None,
             states: Iterable[str | OpState] | None = None,
             parent: str | None = None) -> list[OpOcc]:
        """Matching occurrences, oldest first; ``None`` filters nothing."""
        st = None if states is None else [str(_state(s)) for s in states]
        return [OpOcc.from_row(r) for r in self.store.list_op_occs(
            level=level, subject_id=subject_id, states=st, parent=parent)]

    def active_for(self, subject_id: str, level: str | None = None) -> OpOcc | None:
        """The subject's non-final occurrence, if any."""
        return self._active(subject_id, level)

    def _active(self, subject_id: str, level: str | None) -> OpOcc | None:
        ops = self.list(level=level, subject_id=subject_id, states=ACTIVE_STATES)
        return ops[-1] if ops else None

    def _tell(self, op: OpOcc) -> None:
        if not self.listeners:
            return
        snapshot = OpOcc.from_row(op.to_row())

        def tell() -> None:
            for listener in list(self.listeners):
                listener(OpOcc.from_row(snapshot.to_row()))
        # told once the change is committed (a change undone or lost is never told)
        self.store.after_commit(tell)

    def _edit_steps(self, op_id: str, edit: Callable[[list[str]], list[str]]) -> OpOcc:
        with self.store.transaction():
            op = self.get(op_id)
            self._refuse_final(op)
            op.steps_done = edit(list(op.steps_done))
            op.updated = self.clock()
            self.store.update_op_occ(op.id, {"steps_done": op.steps_done,
                                             "updated": op.updated})
            return op

    @staticmethod
    def _refuse_final(op: OpOcc) -> None:
        if op.final:
            raise ConflictError(f"operation {op.id} ({op.operation}) is {op.state}, final: "
                                f"its steps can no longer change")


#: per state, the states a transition to it may start from
_SOURCES: dict[OpState, tuple[str, ...]] = {
    t: tuple(str(s) for s in OpState if t in TRANSITIONS[s]) for t in OpState}
