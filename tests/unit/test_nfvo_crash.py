"""Crash campaign: the NFVO dies at every crash point of every NS operation type and, after a
restart on the same SQLite file, reconciliation, then retry, rollback or fail, leaves the NS,
the NFVI and the operation occurrences consistent, and later operations work.

A crash point is a place between two durable effects: before each store commit (the commit
does not land), and before and after each call that changes the NFVI (create, delete or
restart an instance, put or delete a graph). The crash is a ``BaseException`` raised there,
which the NFVO's ``except Exception`` handlers do not catch, as a SIGKILL would not let them
run; the fake NFVI keeps what it holds, as the real one outlives the NFVO process. A real
SIGKILL of an NFVO process at every crash point is tests/unit/test_nfvo_sigkill.py; under
``testbed up``, tests/integration/test_nfvo_restart.py.
"""
from __future__ import annotations

import copy
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_nfvo import ROOT, FakeDriver  # tests/unit is on sys.path (rootdir-relative)

from mano.errors import MANOError
from mano.nfvo import NFVO
from mano.opocc import FINAL_STATES, OpState
from mano.store import Store

VNFDS = sorted((ROOT / "vnfd").glob("*.yaml"))
CHAIN = ("fw", "fwd", "fwd2")


class Crash(BaseException):
    """The NFVO process dies here."""


class Points:
    """Counts crash points; raises ``Crash`` at point ``at`` (1-based) once armed."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.n = 0
        self.where: list[str] = []

    def tick(self, what: str) -> None:
        if self.at is None:
            return
        self.n += 1
        self.where.append(what)
        if self.n == self.at:
            raise Crash(f"crash point {self.n}: {what}")


class CrashPointsMixin:
    """A crash point (``self.points.tick``) before and after every call that changes the
    NFVI; mixed into an NFVI driver (the fake one here, ``RemoteDriver`` in
    test_nfvo_sigkill)."""

    points: Points

    def _around(self, name, fn, *args):
        self.points.tick(f"before {name}{args[:1]}")
        out = fn(*args)
        self.points.tick(f"after {name}{args[:1]}")
        return out

    def create_instance(self, iid, node, flavour, image):
        return self._around("create_instance", super().create_instance, iid, node, flavour,
                            image)

    def delete_instance(self, iid):
        return self._around("delete_instance", super().delete_instance, iid)

    def restart_instance(self, iid):
        return self._around("restart_instance", super().restart_instance, iid)

    def put_graph(self, g):
        return self._around("put_graph", super().put_graph, g)

    def delete_graph(self, name):
        return self._around("delete_graph", super().delete_graph, name)


class CrashingDriver(CrashPointsMixin, FakeDriver):
    """The fake NFVI with a crash point before and after every call that changes it."""

    def __init__(self, points: Points):
        super().__init__()
        self.points = points


def _crash_at_commits(nfvo: NFVO, points: Points) -> None:
    """A crash point before every outermost store transaction (its writes never land)."""
    store = nfvo.store
    plain = store.transaction

    @contextmanager
    def transaction():
        if store._depth == 0:
            points.tick("commit")
        with plain():
            yield
    store.transaction = transaction


# ---- the operations and the state each starts from ------------------------------------------
def _base_instantiated(n: NFVO) -> None:
    n.instantiate("chain3", "web")


def _base_two_fwd(n: NFVO) -> None:
    n.instantiate("chain3", "web")
    n.scale("web", "fwd", "out")


def _base_nfvi_gone(n: NFVO) -> None:
    """NS web (fwd scaled to 2) recorded, on a new, empty NFVI (`testbed down`, `up`)."""
    _base_two_fwd(n)
    n.driver.instances.clear()
    n.driver.graphs.clear()
    n.driver.next_addr = 1


OPERATIONS = {
    # name: (set-up, the operation, VNF instance counts it aims at, NS state it aims at)
    "INSTANTIATE": (lambda n: None, lambda n: n.instantiate("chain3", "web"),
                    {"fw": 1, "fwd": 1, "fwd2": 1}, "INSTANTIATED"),
    "SCALE_out": (_base_instantiated, lambda n: n.scale("web", "fwd", "out"),
                  {"fw": 1, "fwd": 2, "fwd2": 1}, "INSTANTIATED"),
    "SCALE_in": (_base_two_fwd, lambda n: n.scale("web", "fwd", "in"),
                 {"fw": 1, "fwd": 1, "fwd2": 1}, "INSTANTIATED"),
    "SCALE_in_named": (_base_two_fwd, lambda n: n.scale("web", "fwd", "in", instance="fwd_1"),
                       {"fw": 1, "fwd": 1, "fwd2": 1}, "INSTANTIATED"),
    "HEAL_restart": (_base_instantiated, lambda n: n.heal("web", "fw_1", "restart"),
                     {"fw": 1, "fwd": 1, "fwd2": 1}, "INSTANTIATED"),
    "HEAL_recreate": (_base_instantiated, lambda n: n.heal("web", "fw_1", "recreate"),
                      {"fw": 1, "fwd": 1, "fwd2": 1}, "INSTANTIATED"),
    "TERMINATE": (_base_two_fwd, lambda n: n.terminate("web"), {}, "TERMINATED"),
    # the reconciliation at start healing an NS whose NFVI is gone back (issue 9 case 8)
    "RECONCILE_heal_back": (_base_nfvi_gone, lambda n: n.reconcile(),
                            {"fw": 1, "fwd": 2, "fwd2": 1}, "INSTANTIATED"),
}


class Bed:
    """One NFVO database and one fake NFVI that survive NFVO restarts."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.db = tmp / "nfvo.db"
        self.points = Points()
        self.drv = CrashingDriver(self.points)

    def nfvo(self, reconcile: bool = True) -> NFVO:
        """A (re)started NFVO: it reconciles on start."""
        return NFVO(self.drv, self.db, reconcile=reconcile)

    def save(self, name: str) -> tuple:
        dst = self.tmp / name
        dst.mkdir(exist_ok=True)
        for f in self.tmp.glob("nfvo.db*"):
            shutil.copy(f, dst / f.name)
        return dst, copy.deepcopy((self.drv.instances, self.drv.graphs, self.drv.next_addr))

    def load(self, saved: tuple) -> None:
        src, (inst, graphs, nxt) = saved
        for f in self.tmp.glob("nfvo.db*"):
            f.unlink()
        for f in src.glob("nfvo.db*"):
            shutil.copy(f, self.tmp / f.name)
        self.drv.instances, self.drv.graphs = copy.deepcopy(inst), copy.deepcopy(graphs)
        self.drv.next_addr = nxt


def _live(n: NFVO, ns: str = "web") -> dict[str, list[str]]:
    return {v: [r["id"] for r in n.vnfm.instances(ns, v)] for v in CHAIN}


def check_consistent(n: NFVO) -> None:
    """The records, the VIM and the fake NFVI agree; every NS state tells the truth; no
    operation is left active."""
    drv = n.driver
    live = {r["id"] for r in n.store.list_vnf_instances(state="INSTANTIATED")}
    assert set(drv.instances) == live, (sorted(drv.instances), sorted(live))
    assert not n.store.list_vnf_instances(state="CREATING")
    assert {a["instance_id"] for a in n.store.list_allocations()} == live
    assert {a.alloc_id for a in n.vim.allocations()} == live
    active = [(o.operation, o.level, o.state) for o in n.ops.list()
              if o.state not in FINAL_STATES]
    assert active == []
    ips = [r["ip"] for r in n.store.list_vnf_instances() if r["state"] != "TERMINATED"
           and r["ip"] is not None]
    assert len(ips) == len(set(ips)), ips
    for ns in n.store.list_ns_instances():
        nsd = n.nsd(ns["nsd_id"])
        names = [f"{ns['id']}.{fg.id}" for fg in nsd.vnffg]
        mine = {r["id"] for r in n.store.list_vnf_instances(ns_id=ns["id"],
                                                            state="INSTANTIATED")}
        if ns["state"] == "INSTANTIATED":
            assert all(n.vnfm.instances(ns["id"], v) for v in CHAIN)
            for fg in nsd.vnffg:
                assert drv.graphs[f"{ns['id']}.{fg.id}"]["hops"] == \
                    n.graph_for(ns["id"], nsd, fg)["hops"]
        elif ns["state"] == "DEGRADED":
            assert ns["data"]["missing"]
        else:
            assert ns["state"] in ("NOT_INSTANTIATED", "TERMINATED")
            assert not mine and not any(g in drv.graphs for g in names)
    owners = {ns["id"] for ns in n.store.list_ns_instances()
              if ns["state"] in ("INSTANTIATED", "DEGRADED")}
    assert all(g.split(".")[0] in owners for g in drv.graphs), sorted(drv.graphs)


def follow_up(n: NFVO) -> None:
    """Later operations on the NS work, and terminating it leaves nothing on the NFVI."""
    try:
        st = n.store.get_ns_instance("web")["state"]
    except MANOError:
        st = "absent"
    if st == "DEGRADED":
        n.heal_ns("web")
        st = n.store.get_ns_instance("web")["state"]
    if st in ("absent", "NOT_INSTANTIATED", "TERMINATED"):
        assert n.instantiate("chain3", "web")["state"] == "COMPLETED"
    assert n.store.get_ns_instance("web")["state"] == "INSTANTIATED"
    if len(n.vnfm.instances("web", "fwd")) < 3:
        assert n.scale("web", "fwd", "out")["state"] == "COMPLETED"
    assert n.heal("web", n.vnfm.instances("web", "fw")[0]["id"])["state"] == "COMPLETED"
    check_consistent(n)
    assert n.terminate("web")["state"] == "COMPLETED"
    assert n.driver.instances == {} and n.driver.graphs == {}
    check_consistent(n)


def _ns_op(n: NFVO):
    ops = n.ops.list(level="ns", subject_id="web")
    return ops[-1] if ops else None


def crash(bed: Bed, n: NFVO, k: int, fn) -> bool:
    """Run ``fn(n)`` with a crash at point ``k``; then the NFVO is gone. Returns whether
    the crash happened (False: ``fn`` ended before point ``k``)."""
    bed.points.at, bed.points.n, bed.points.where = k, 0, []
    _crash_at_commits(n, bed.points)
    try:
        fn(n)
    except Crash:
        return True
    finally:
        bed.points.at = None
        n.close()
    return False


def _crash_in_process(bed: Bed, n: NFVO, k: int, name: str) -> bool:
    return crash(bed, n, k, OPERATIONS[name][1])


def run_point(bed: Bed, base: tuple, name: str, k: int, mode: str,
              k2: int | None = None, die=_crash_in_process) -> bool:
    """Crash ``name`` at point ``k``, restart, recover by ``mode`` (if ``k2``: crash the
    recovery at its point ``k2``, restart, recover again by ``mode``), check, follow up.
    ``die(bed, n, k, name)`` runs the operation on NFVO ``n`` (closing it) so that it dies
    at point ``k``, and returns whether it did. Returns False when there was nothing to
    crash at ``k2``."""
    operation = OPERATIONS[name][1]
    bed.load(base)
    before = set(bed.drv.instances)
    with Store(bed.db) as st:
        prior_ops = {r["id"] for r in st.list_op_occs()}
    n = bed.nfvo(reconcile=False)
    before_live = _live(n) if name != "INSTANTIATE" else {}
    assert die(bed, n, k, name)

    n = bed.nfvo()                                  # the restart: reconciliation runs
    op = _ns_op(n)
    if op is not None and op.id in prior_ops:
        op = None                                   # the crash came before it started
    if op is not None:
        assert op.state in (OpState.FAILED_TEMP, OpState.ROLLED_BACK, OpState.COMPLETED), op
        if op.state == OpState.ROLLED_BACK:
            assert "before the operation was granted" in op.error
    check_truthful(n)
    if op is not None and op.state == OpState.COMPLETED:
        # the restart's own reconciliation did the work (a heal back cut short)
        assert name == "RECONCILE_heal_back", op
        if k2 is not None:
            n.close()
            return False
        check_consistent(n)
        assert {v: len(ids) for v, ids in _live(n).items() if ids} == OPERATIONS[name][2]
    elif op is None or op.state == OpState.ROLLED_BACK:
        if k2 is not None:
            n.close()
            return False
        # nothing to recover: the user starts the operation again
        operation(n)
        check_consistent(n)
        assert {v: len(ids) for v, ids in _live(n).items() if ids} == OPERATIONS[name][2]
    else:
        if k2 is not None:
            if not crash(bed, n, k2, lambda n: getattr(n, mode)(op.id)):
                return False
            n = bed.nfvo()
            assert n.ops.get(op.id).state == OpState.FAILED_TEMP
            check_truthful(n)
        recover(n, bed, name, op, mode, before, before_live)
    follow_up(n)
    n.close()
    return True


def check_truthful(n: NFVO) -> None:
    """After a restart: an NS is never shown INSTANTIATED when something of it lacks."""
    try:
        ns_state = n.store.get_ns_instance("web")["state"]
    except MANOError:
        return
    if ns_state == "INSTANTIATED":
        assert all(ids and set(ids) <= set(n.driver.instances) for ids in _live(n).values())
        assert "web.fg1" in n.driver.graphs
        assert not n.store.list_vnf_instances(ns_id="web", state="LOST")


def recover(n: NFVO, bed: Bed, name: str, op, mode: str, before: set,
            before_live: dict) -> None:
    """Recover the FAILED_TEMP occurrence ``op`` by ``mode`` and check the outcome."""
    goal, goal_state = OPERATIONS[name][2:]
    if mode == "retry":
        done = n.retry(op.id)
        assert done["state"] == "COMPLETED" and done["id"] == op.id
        assert n.store.get_ns_instance("web")["state"] == goal_state
        assert {v: len(ids) for v, ids in _live(n).items() if ids} == goal
        if name == "HEAL_recreate":
            assert "fw_1" not in bed.drv.instances
        if name == "SCALE_in_named":
            assert _live(n)["fwd"] == ["fwd_2"]
        children = {o.state for o in n.ops.list(parent=op.id)}
        assert children <= {OpState.COMPLETED, OpState.ROLLED_BACK}, children
    elif mode == "rollback":
        out = n.rollback(op.id)
        children = n.ops.list(parent=op.id)
        assert all(c.state in (OpState.ROLLED_BACK, OpState.FAILED) for c in children)
        lost_any = not before <= set(bed.drv.instances)
        if out["state"] == "ROLLED_BACK":
            assert not lost_any
            assert all(c.state == OpState.ROLLED_BACK for c in children)
            if name == "INSTANTIATE":
                assert n.store.get_ns_instance("web")["state"] == "NOT_INSTANTIATED"
                assert bed.drv.instances == {} and bed.drv.graphs == {}
            elif name == "RECONCILE_heal_back":     # back to lost, saying so
                ns = n.store.get_ns_instance("web")
                assert ns["state"] == "DEGRADED" and len(ns["data"]["missing"]) == 8
                assert bed.drv.instances == {} and bed.drv.graphs == {}
            else:
                assert n.store.get_ns_instance("web")["state"] == "INSTANTIATED"
                assert _live(n) == before_live
        else:
            assert out["state"] == "FAILED", out
            assert lost_any, out["error"]
            assert "cannot be restored" in out["error"]
    else:
        out = n.fail(op.id)
        assert out["state"] == "FAILED" and "marked failed" in out["error"]
        assert all(c.state in FINAL_STATES and c.state != OpState.COMPLETED
                   for c in n.ops.list(parent=op.id))
    check_consistent(n)


def count_points(bed: Bed, base: tuple, name: str) -> int:
    """How many crash points the operation passes when nothing crashes."""
    bed.load(base)
    n = bed.nfvo(reconcile=False)
    bed.points.at, bed.points.n = 10**9, 0
    _crash_at_commits(n, bed.points)
    OPERATIONS[name][1](n)
    total = bed.points.n
    bed.points.at = None
    n.close()
    return total


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_crash_point_of_the_operation_recovers(tmp_path, name):
    """For every crash point of the operation: after the restart its occurrence is
    FAILED_TEMP (or never started), and retry completes it, rollback restores the prior
    NS (ROLLED_BACK, or FAILED naming the deleted instance it cannot restore) and fail
    closes it, each leaving the records, VIM and NFVI consistent and the NS usable."""
    bed = Bed(tmp_path)
    n = bed.nfvo()
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    OPERATIONS[name][0](n)
    n.close()
    base = bed.save("base")
    total = count_points(bed, base, name)
    assert total > 10
    failures = []
    for k in range(1, total + 1):
        for mode in ("retry", "rollback", "fail"):
            try:
                run_point(bed, base, name, k, mode)
            except (AssertionError, MANOError) as exc:
                failures.append(f"{name} point {k} ({bed.points.where[-1:]}) {mode}: "
                                f"{type(exc).__name__}: {exc}")
    assert failures == [], "\n".join(failures[:10]) + f"\n... {len(failures)} in all"


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_recovery_killed_at_any_point_resumes(tmp_path, name):
    """The operation crashes at a third, two thirds and the end of its crash points; its
    retry, and separately its rollback, then crash at every one of their own crash points;
    after the restart the occurrence is FAILED_TEMP again and the same recovery, run
    again, reaches the outcome an uninterrupted one would."""
    bed = Bed(tmp_path)
    n = bed.nfvo()
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    OPERATIONS[name][0](n)
    n.close()
    base = bed.save("base")
    total = count_points(bed, base, name)
    failures, runs = [], 0
    for k in sorted({total // 3, 2 * total // 3, total}):
        for mode in ("retry", "rollback"):
            k2 = 1
            while True:
                try:
                    if not run_point(bed, base, name, k, mode, k2):
                        break
                    runs += 1
                except (AssertionError, MANOError) as exc:
                    failures.append(f"{name} point {k}, {mode} point {k2} "
                                    f"({bed.points.where[-1:]}): {type(exc).__name__}: {exc}")
                k2 += 1
    assert failures == [], "\n".join(failures[:10]) + f"\n... {len(failures)} in all"
    assert runs > 10


def test_issue_case_crash_after_a_scale_out_created_its_instance(tmp_path):
    """Issue 9 case 1: the NFVO dies after create_instance of a scale-out returned, before
    the instance was recorded. After the restart both occurrences are FAILED_TEMP; rolling
    back the NS one rolls back the VNF one, removes the extra instance, and later scale and
    terminate are accepted."""
    bed = Bed(tmp_path)
    n = bed.nfvo()
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    n.instantiate("chain3", "web")
    base = bed.save("base")
    total = count_points(bed, base, "SCALE_out")
    bed.load(base)
    k = next(i for i in range(1, total + 1) if _where(bed, base, i) ==
             "after create_instance('fwd_2',)")
    bed.load(base)
    assert crash(bed, bed.nfvo(), k, OPERATIONS["SCALE_out"][1])
    assert "fwd_2" in bed.drv.instances
    n = bed.nfvo()
    op = _ns_op(n)
    child = n.ops.list(parent=op.id)[0]
    assert (op.state, child.state) == (OpState.FAILED_TEMP, OpState.FAILED_TEMP)
    assert n.rollback(op.id)["state"] == "ROLLED_BACK"
    assert n.ops.get(child.id).state == OpState.ROLLED_BACK
    assert "fwd_2" not in bed.drv.instances
    assert bed.drv.graphs["web.fg1"]["hops"] == ["h1", "fw_1", "fwd_1", "fwd2_1", "h16"]
    assert n.scale("web", "fwd", "out")["state"] == "COMPLETED"
    assert n.terminate("web")["state"] == "COMPLETED"
    n.close()


def _where(bed: Bed, base: tuple, k: int) -> str:
    """What crash point ``k`` of a scale-out is."""
    bed.load(base)
    crash(bed, bed.nfvo(), k, OPERATIONS["SCALE_out"][1])
    return bed.points.where[-1]
