"""Operation occurrences: the SOL003 state machine, one operation at a time per subject, and
persistence of every change."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mano.errors import ConflictError, NotFoundError
from mano.opocc import (
    ACTIVE_STATES,
    COMPLETED,
    FAILED,
    FAILED_TEMP,
    FINAL_STATES,
    PROCESSING,
    ROLLED_BACK,
    ROLLING_BACK,
    STARTING,
    TRANSITIONS,
    OpOccManager,
    OpState,
)
from mano.store import Store

REPO = Path(__file__).resolve().parents[2]

LEGAL = [
    (STARTING, PROCESSING), (STARTING, ROLLED_BACK),
    (PROCESSING, COMPLETED), (PROCESSING, FAILED_TEMP),
    (FAILED_TEMP, PROCESSING), (FAILED_TEMP, ROLLING_BACK), (FAILED_TEMP, FAILED),
    (ROLLING_BACK, ROLLED_BACK), (ROLLING_BACK, FAILED_TEMP),
]
ILLEGAL = [(a, b) for a, b in itertools.product(OpState, OpState) if (a, b) not in LEGAL]

# The shortest legal path from STARTING to each state.
PATH_TO = {
    STARTING: [],
    PROCESSING: [PROCESSING],
    COMPLETED: [PROCESSING, COMPLETED],
    FAILED_TEMP: [PROCESSING, FAILED_TEMP],
    FAILED: [PROCESSING, FAILED_TEMP, FAILED],
    ROLLING_BACK: [PROCESSING, FAILED_TEMP, ROLLING_BACK],
    ROLLED_BACK: [ROLLED_BACK],
}


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "nfvo.db")
    yield s
    s.close()


@pytest.fixture
def mgr(store):
    return OpOccManager(store, clock=Clock())


def op_in(mgr, state, subject="fw1"):
    op = mgr.start("vnf", subject, "SCALE", {"aspect": "cpu", "steps": 1})
    for s in PATH_TO[state]:
        op = mgr.transition(op.id, s)
    assert op.state == state
    return op


def test_transition_table_matches_sol003():
    """The table holds exactly the SOL003 transitions; final states have none."""
    assert {(a, b) for a, bs in TRANSITIONS.items() for b in bs} == set(LEGAL)
    assert FINAL_STATES == {COMPLETED, FAILED, ROLLED_BACK}
    assert ACTIVE_STATES == {STARTING, PROCESSING, FAILED_TEMP, ROLLING_BACK}


def test_start_creates_a_starting_occurrence(mgr):
    """start gives a STARTING occurrence with a uuid4 hex id, params and clock times."""
    op = mgr.start("vnf", "fw1", "INSTANTIATE", {"flavour": "small"})
    assert op.state == STARTING and len(op.id) == 32 and int(op.id, 16) >= 0
    assert (op.level, op.subject_id, op.operation) == ("vnf", "fw1", "INSTANTIATE")
    assert op.params == {"flavour": "small"} and op.steps_done == []
    assert op.started == op.updated == 101.0
    assert op.error is None and op.parent is None and op.grant_id is None
    assert mgr.get(op.id) == op


@pytest.mark.parametrize("src,dst", LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_transition(mgr, src, dst):
    """Each SOL003 transition is accepted, persisted and moves the updated time."""
    op = op_in(mgr, src)
    after = mgr.transition(op.id, dst)
    assert after.state == dst and after.updated > op.updated
    assert mgr.get(op.id).state == dst


@pytest.mark.parametrize("src,dst", ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_illegal_transition_refused(mgr, src, dst):
    """Every other transition is refused naming both states and the allowed ones; nothing
    changes."""
    op = op_in(mgr, src)
    with pytest.raises(ConflictError) as e:
        mgr.transition(op.id, dst)
    msg = str(e.value)
    assert f"from {src} to {dst}" in msg and op.id in msg
    if TRANSITIONS[src]:
        assert all(str(a) in msg.split("allowed from")[1] for a in TRANSITIONS[src])
    else:
        assert f"{src} is final" in msg
    assert mgr.get(op.id) == op


def test_unknown_state_and_unknown_op_refused(mgr):
    """A misspelt state is refused with the valid ones; an unknown id raises NotFoundError."""
    op = mgr.start("vnf", "fw1", "HEAL")
    with pytest.raises(ConflictError, match="unknown operation state 'DONE'.*COMPLETED"):
        mgr.transition(op.id, "DONE")
    with pytest.raises(NotFoundError, match="no operation occurrence 'nope'"):
        mgr.transition("nope", PROCESSING)
    with pytest.raises(ValueError, match="level 'pnf'"):
        mgr.start("pnf", "x", "HEAL")


def test_transition_accepts_strings_and_records_error_and_grant(mgr):
    """States may be given as strings; error is kept through rollback and cleared by a retry;
    the grant id is recorded."""
    op = mgr.start("vnf", "fw1", "INSTANTIATE")
    op = mgr.transition(op.id, "PROCESSING", grant_id="g-1")
    assert op.grant_id == "g-1"
    op = mgr.transition(op.id, "FAILED_TEMP", error="create_instance: node c1 down")
    assert op.error == "create_instance: node c1 down"
    assert mgr.transition(op.id, ROLLING_BACK).error == "create_instance: node c1 down"
    op = mgr.transition(op.id, FAILED_TEMP, error="release: timeout")
    assert op.error == "release: timeout"
    op = mgr.transition(op.id, PROCESSING)
    assert op.error is None and op.grant_id == "g-1"


def test_one_operation_at_a_time_per_subject(mgr):
    """A second operation on a busy subject is refused with a clear message; other subjects
    proceed; once the first is final the subject is free again."""
    first = op_in(mgr, PROCESSING)
    with pytest.raises(ConflictError) as e:
        mgr.start("vnf", "fw1", "HEAL")
    assert str(e.value) == (f"vnf fw1 has operation {first.id} (SCALE) in state PROCESSING; "
                            "one at a time")
    other = mgr.start("vnf", "fw2", "HEAL")
    ns = mgr.start("ns", "web", "SCALE")
    assert mgr.active_for("fw1") == first
    assert mgr.active_for("fw2") == other and mgr.active_for("web") == ns
    for state in (FAILED_TEMP, ROLLING_BACK):  # non-final states keep it busy
        mgr.transition(first.id, state)
        with pytest.raises(ConflictError, match=f"in state {state}"):
            mgr.start("vnf", "fw1", "HEAL")
    mgr.transition(first.id, ROLLED_BACK)
    assert mgr.active_for("fw1") is None
    assert mgr.start("vnf", "fw1", "HEAL").state == STARTING


def test_steps_recorded_removed_and_frozen_when_final(mgr, store):
    """Steps are appended and written at once, removed once undone, and frozen in a final
    state."""
    op = op_in(mgr, PROCESSING)
    mgr.record_step(op.id, "allocated:fw1-0@c1")
    mgr.record_step(op.id, "created:fw1-0")
    assert store.get_op_occ(op.id)["steps_done"] == ["allocated:fw1-0@c1", "created:fw1-0"]
    mgr.transition(op.id, FAILED_TEMP, error="x")
    mgr.transition(op.id, ROLLING_BACK)
    assert mgr.remove_step(op.id, "created:fw1-0").steps_done == ["allocated:fw1-0@c1"]
    with pytest.raises(NotFoundError, match="no step 'created:fw1-0'"):
        mgr.remove_step(op.id, "created:fw1-0")
    mgr.remove_step(op.id, "allocated:fw1-0@c1")
    mgr.transition(op.id, ROLLED_BACK)
    with pytest.raises(ConflictError, match="ROLLED_BACK, final"):
        mgr.record_step(op.id, "late")
    with pytest.raises(NotFoundError, match="no operation occurrence 'nope'"):
        mgr.record_step("nope", "late")
    assert store.get_op_occ(op.id)["steps_done"] == []


def test_list_filters(mgr):
    """list filters by level, subject, states and parent, oldest first."""
    ns = mgr.start("ns", "web", "INSTANTIATE")
    a = mgr.start("vnf", "fw1", "INSTANTIATE", parent=ns.id)
    b = mgr.start("vnf", "nat1", "INSTANTIATE", parent=ns.id)
    mgr.transition(a.id, PROCESSING)
    mgr.transition(a.id, COMPLETED)
    c = op_in(mgr, FAILED_TEMP, subject="lb1")

    def ids(ops):
        return [o.id for o in ops]
    assert ids(mgr.list()) == [ns.id, a.id, b.id, c.id]
    assert ids(mgr.list(level="vnf")) == [a.id, b.id, c.id]
    assert ids(mgr.list(level="ns")) == [ns.id]
    assert ids(mgr.list(subject_id="fw1")) == [a.id]
    assert ids(mgr.list(states=[STARTING])) == [ns.id, b.id]
    assert ids(mgr.list(states=["COMPLETED", "FAILED_TEMP"])) == [a.id, c.id]
    assert ids(mgr.list(parent=ns.id)) == [a.id, b.id]
    assert ids(mgr.list(level="vnf", states=ACTIVE_STATES)) == [b.id, c.id]
    with pytest.raises(NotFoundError):
        mgr.start("vnf", "x", "HEAL", parent="nope")


def test_state_survives_a_new_store_and_manager(tmp_path):
    """After dropping the manager and store, a new one on the same file sees the same
    occurrences, steps and errors."""
    path = tmp_path / "nfvo.db"
    s1 = Store(path)
    m1 = OpOccManager(s1, clock=Clock())
    ok = op_in(m1, COMPLETED, subject="fw1")
    bad = op_in(m1, PROCESSING, subject="fw2")
    m1.record_step(bad.id, "allocated:fw2-0@c1")
    bad = m1.transition(bad.id, FAILED_TEMP, error="boom")
    pending = m1.start("ns", "web", "TERMINATE", {"graceful": True})
    before = {o.id: o for o in m1.list()}
    s1.close()
    del m1, s1

    s2 = Store(path)
    m2 = OpOccManager(s2)
    after = {o.id: o for o in m2.list()}
    assert after == before
    assert after[ok.id].state == COMPLETED
    assert after[bad.id].steps_done == ["allocated:fw2-0@c1"] and after[bad.id].error == "boom"
    assert m2.active_for("web") == pending and m2.active_for("fw1") is None
    with pytest.raises(ConflictError, match="FAILED_TEMP"):
        m2.start("vnf", "fw2", "HEAL")
    assert m2.transition(bad.id, ROLLING_BACK).steps_done == ["allocated:fw2-0@c1"]
    s2.close()


def test_last_state_reached_survives_sigkill(tmp_path):
    """A process killed right after a transition leaves that transition and its steps on disk."""
    path = tmp_path / "nfvo.db"
    child = textwrap.dedent(f"""
        import time
        from mano.opocc import OpOccManager
        from mano.store import Store
        m = OpOccManager(Store({str(path)!r}))
        op = m.start("vnf", "fw1", "INSTANTIATE", {{"flavour": "small"}})
        m.transition(op.id, "PROCESSING", grant_id="g1")
        m.record_step(op.id, "allocated:fw1-0@c1")
        print(op.id, flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env,
                            text=True)
    assert proc.stdout is not None
    op_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    with Store(path) as s:
        op = OpOccManager(s).get(op_id)
    assert (op.state, op.grant_id, op.steps_done) == (PROCESSING, "g1", ["allocated:fw1-0@c1"])
