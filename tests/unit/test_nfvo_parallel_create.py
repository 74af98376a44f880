"""NS instantiation with overlapping creates (``VNFM.instantiate_many`` on a driver whose
``create_concurrency`` is above 1): the creates run at once, placement and records are as
with one create at a time, a failed create is rolled back or retried, and the NFVO may die
at any crash point of it (the campaign of test_nfvo_crash.py, on such a driver)."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
import test_nfvo_crash as campaign  # tests/unit is on sys.path (rootdir-relative)
from test_nfvo import ROOT, FakeDriver

from mano.errors import MANOError
from mano.nfvi import InstanceInfo
from mano.nfvo import NFVO
from mano.opocc import OpState
from mano.store import Store

VNFDS = sorted((ROOT / "vnfd").glob("*.yaml"))


class ParallelFake(FakeDriver):
    """The fake NFVI taking ``create_concurrency`` creates at once; like the real one, an
    instance is on its compute node's switch (``n3`` -> ``e3``)."""

    def __init__(self, concurrency: int = 3):
        super().__init__()
        self.create_concurrency = concurrency
        self._addr = threading.Lock()
        self.running = 0
        self.most = 0             # the most creates seen running at once

    def create_instance(self, iid, node, flavour, image):
        with self._addr:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.barrier is not None:
                self.barrier.wait()   # BrokenBarrierError unless the others get here
            if iid in self.fail_on:
                raise MANOError(f"boom creating {iid}")
            with self._addr:
                n, self.next_addr = self.next_addr, self.next_addr + 1
                self.instances[iid] = InstanceInfo(iid, node, f"e{node[1:]}",
                                                   f"10.1.0.{n}", f"02:00:00:00:00:{n:02x}")
                return self.instances[iid]
        finally:
            with self._addr:
                self.running -= 1


def _nfvo(tmp_path, drv, **kw) -> NFVO:
    n = NFVO(drv, tmp_path / "db.sqlite", **kw)
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    return n


def test_the_creates_of_an_instantiation_run_at_once(tmp_path):
    """With a driver taking three creates at once, the three instances of the chain are
    created together (each waits at a barrier for the other two), the NS is INSTANTIATED
    with its graph in chain order and each VNF operation completed with the NS's."""
    drv = ParallelFake(3)
    drv.barrier = threading.Barrier(3, timeout=10)
    n = _nfvo(tmp_path, drv)
    op = n.instantiate("chain3", "web")
    assert op["state"] == "COMPLETED" and drv.most == 3
    assert drv.graphs["web.fg1"]["hops"] == ["h1", "fw_1", "fwd_1", "fwd2_1", "h16"]
    vnf_ops = n.ops.list(level="vnf", parent=op["id"])
    assert [o.state for o in vnf_ops] == [OpState.COMPLETED] * 3
    assert all(o.steps_done[-1] == "done" for o in vnf_ops)
    n.close()


def test_overlapping_creates_place_as_one_at_a_time(tmp_path):
    """The compute nodes chosen (latency-aware, after the previous hop's switch) are the
    same whether the NFVI takes one create at a time or three."""
    nodes = []
    for width in (1, 3):
        d = tmp_path / str(width)
        d.mkdir()
        n = _nfvo(d, ParallelFake(width))
        n.instantiate("chain3", "web")
        nodes.append({r["id"]: r["compute_node"] for r in n.store.list_vnf_instances()})
        n.close()
    assert nodes[0] == nodes[1] and len(nodes[0]) == 3


def test_records_are_committed_before_each_overlapping_create(tmp_path):
    """When the NFVI is asked to create an instance, another connection already reads its
    CREATING record, its allocation and its alloc and create steps in its VNF operation."""
    drv = ParallelFake(3)
    n = _nfvo(tmp_path, drv)
    reader = Store(tmp_path / "db.sqlite", readonly=True)
    create = drv.create_instance
    seen = []

    def checked(iid, node, flavour, image):
        rec = reader.get_vnf_instance(iid)
        op = next(o for o in reader.list_op_occs(level="vnf") if o["id"] == rec["data"]["op"])
        seen.append((iid, rec["state"], reader.get_allocation(iid)["node"] == node,
                     {f"alloc:{iid}", f"create:{iid}"} <= set(op["steps_done"])))
        return create(iid, node, flavour, image)

    drv.create_instance = checked
    try:
        assert n.instantiate("chain3", "web")["state"] == "COMPLETED"
    finally:
        reader.close()
        n.close()
    assert sorted(seen) == [(i, "CREATING", True, True) for i in ("fw_1", "fwd2_1", "fwd_1")]


def test_a_failed_overlapping_create_is_rolled_back(tmp_path):
    """One of three overlapping creates fails: its VNF operation and the NS operation end
    ROLLED_BACK, the two instances made meanwhile are deleted, nothing stays allocated."""
    drv = ParallelFake(3)
    drv.fail_on = {"fwd_1"}
    drv.barrier = threading.Barrier(3, timeout=10)   # all three placed before one fails
    n = _nfvo(tmp_path, drv)
    with pytest.raises(MANOError, match="boom creating fwd_1"):
        n.instantiate("chain3", "web")
    assert drv.instances == {} and drv.graphs == {}
    op = n.ops.list(level="ns")[-1]
    assert op.state == OpState.ROLLED_BACK
    assert {o.state for o in n.ops.list(parent=op.id)} == {OpState.ROLLED_BACK}
    assert n.store.list_allocations() == [] and n.vim.allocations() == []
    assert n.store.get_ns_instance("web")["state"] == "NOT_INSTANTIATED"
    n.close()


def test_a_failed_overlapping_create_is_retried(tmp_path):
    """Without automatic rollback the failed instantiation stays FAILED_TEMP with the two
    instances made; a retry creates only the missing one and completes."""
    drv = ParallelFake(3)
    drv.fail_on = {"fwd_1"}
    drv.barrier = threading.Barrier(3, timeout=10)   # all three placed before one fails
    n = _nfvo(tmp_path, drv, auto_rollback=False)
    with pytest.raises(MANOError):
        n.instantiate("chain3", "web")
    op = n.ops.list(level="ns")[-1]
    assert op.state == OpState.FAILED_TEMP
    assert sorted(drv.instances) == ["fw_1", "fwd2_1"]
    drv.fail_on, drv.barrier = set(), None
    assert n.retry(op.id)["state"] == "COMPLETED"
    assert sorted(drv.instances) == ["fw_1", "fwd2_1", "fwd_2"]
    assert drv.graphs["web.fg1"]["hops"] == ["h1", "fw_1", "fwd_2", "fwd2_1", "h16"]
    n.close()


# ---- the crash campaign on overlapping creates -----------------------------------------------
class LockedPoints(campaign.Points):
    """Crash points counted from several threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def tick(self, what: str) -> None:
        with self._lock:
            super().tick(what)


class ParallelCrashingDriver(campaign.CrashPointsMixin, ParallelFake):
    def __init__(self, points):
        super().__init__(3)
        self.points = points


class ParallelBed(campaign.Bed):
    def __init__(self, tmp):
        super().__init__(tmp)
        self.points = LockedPoints()
        self.drv = ParallelCrashingDriver(self.points)


def _crash_at_commits(nfvo: NFVO, points) -> None:
    """As test_nfvo_crash's, with the outermost transaction told under the store's lock
    (another thread's transaction may be open)."""
    store = nfvo.store
    plain = store.transaction

    @contextmanager
    def transaction():
        with store._lock:
            if store._depth == 0:
                points.tick("commit")
            with plain():
                yield
    store.transaction = transaction


def test_every_crash_point_of_an_overlapping_instantiation_recovers(tmp_path, monkeypatch):
    """At every crash point of an instantiation whose creates overlap (which point is
    which depends on the threads' order), the restarted NFVO's reconciliation leaves the
    occurrence FAILED_TEMP or never started, and retry, rollback and fail each end
    consistent, the NS usable afterwards (test_nfvo_crash.run_point)."""
    monkeypatch.setattr(campaign, "_crash_at_commits", _crash_at_commits)
    bed = ParallelBed(tmp_path)
    n = bed.nfvo()
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    n.close()
    base = bed.save("base")
    total = campaign.count_points(bed, base, "INSTANTIATE")
    assert total > 10
    failures = []
    for k in range(1, total + 1):
        for mode in ("retry", "rollback", "fail"):
            try:
                campaign.run_point(bed, base, "INSTANTIATE", k, mode)
            except (AssertionError, MANOError) as exc:
                failures.append(f"point {k} ({bed.points.where[-1:]}) {mode}: "
                                f"{type(exc).__name__}: {exc}")
    assert failures == [], "\n".join(failures[:10]) + f"\n... {len(failures)} in all"
