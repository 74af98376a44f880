"""Unit tests of ``rollout.Rollouts``: stages carried out one at a time across switches,
the old paths deleted only after a drain, rollouts in submission order. The switches are
stand-ins that record writes and answer barriers when the test says so."""
from __future__ import annotations

import threading
import time

import pytest

from testbed.controller.ofmsg import Batch
from testbed.controller.rollout import Rollouts


class Switches:
    """Writes and barriers as the app's: a log of ("write", dpid, ops) and ("barrier",
    dpid); barriers are answered at once unless ``hold`` names the switch (then
    ``answer(dpid)`` does); switches in ``gone`` are not connected."""

    def __init__(self):
        self.log: list[tuple] = []
        self.hold: set[int] = set()
        self.gone: set[int] = set()
        self.waiting: dict[int, list[threading.Event]] = {}
        self.lock = threading.Lock()

    def write(self, batch: Batch) -> bool:
        if batch.dpid in self.gone:
            return False
        with self.lock:
            self.log.append(("write", batch.dpid, batch.ops, time.monotonic()))
        return True

    def barrier(self, dpid: int):
        if dpid in self.gone:
            return None
        ev = threading.Event()
        with self.lock:
            self.log.append(("barrier", dpid))
            if dpid in self.hold:
                self.waiting.setdefault(dpid, []).append(ev)
            else:
                ev.set()
        return ev

    def answer(self, dpid: int) -> None:
        with self.lock:
            for ev in self.waiting.pop(dpid, []):
                ev.set()

    def writes(self) -> list[tuple[int, tuple]]:
        with self.lock:
            return [(e[1], e[2]) for e in self.log if e[0] == "write"]


def _batch(dpid: int, *ops: str) -> Batch:
    return Batch(dpid, b"", tuple(range(len(ops))), ops)


REROUTE = [("make", [_batch(1, "flow_add"), _batch(2, "group_add", "flow_add")]),
           ("switch", [_batch(3, "group_mod", "flow_add")]),
           ("break", [_batch(1, "flow_del"), _batch(2, "flow_del", "group_del")])]


def _wait(pred, timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


@pytest.fixture
def switches():
    return Switches()


def test_a_stage_is_sent_only_once_every_switch_answered_the_last_ones_barrier(switches):
    """The switch stage waits for both make-stage switches' barriers, the break stage for
    the switch stage's; ``started`` is set once the first stage is written, ``live``
    between switch and break, ``done`` at the end."""
    ro = Rollouts(switches.write, switches.barrier, drain_s=0.0)
    switches.hold = {1, 2, 3}
    live_calls = []
    r = ro.submit(REROUTE, "test", on_live=lambda r: live_calls.append(r.sent.copy()))
    _wait(lambda: len(switches.waiting) == 2)
    assert switches.writes() == [(1, ("flow_add",)), (2, ("group_add", "flow_add"))]
    assert r.started.is_set() and not r.live.is_set()
    switches.answer(1)
    time.sleep(0.05)
    assert len(switches.writes()) == 2, "the switch stage went out before switch 2 answered"
    switches.answer(2)
    _wait(lambda: 3 in switches.waiting)
    assert switches.writes()[2] == (3, ("group_mod", "flow_add"))
    assert not r.live.is_set()
    switches.hold = set()
    switches.answer(3)
    assert r.live.wait(5) and r.wait(5)
    assert switches.writes()[3:] == [(1, ("flow_del",)), (2, ("flow_del", "group_del"))]
    assert live_calls and set(live_calls[0]) == {"make", "switch"}
    assert r.dpids == {1, 2, 3} and r.mods == 8
    ro.close()


def test_the_old_paths_go_only_after_the_drain(switches):
    """The break stage is written ``drain_s`` after the switch stage was answered; a
    removal alone (no switch stage) is not delayed."""
    ro = Rollouts(switches.write, switches.barrier, drain_s=0.2)
    r = ro.submit(REROUTE)
    assert r.wait(5)
    t = {dpid: ts for _, dpid, ops, ts in (e for e in switches.log if e[0] == "write")
         if ops[0] != "flow_del" or dpid != 1}
    t_del = next(e[3] for e in switches.log if e[0] == "write" and e[2] == ("flow_del",))
    assert t_del - t[3] >= 0.2
    switches.log.clear()
    t0 = time.monotonic()
    assert ro.submit([REROUTE[2]]).wait(5)
    assert time.monotonic() - t0 < 0.15
    ro.close()


def test_rollouts_go_in_submission_order_and_a_queued_one_cuts_the_drain_short(switches):
    """A second rollout waits for the first (its flows may be the ones the first deletes),
    and its arrival ends the first one's drain at once."""
    ro = Rollouts(switches.write, switches.barrier, drain_s=30.0)
    first = ro.submit(REROUTE)
    _wait(first.live.is_set)
    second = ro.submit([("make", [_batch(4, "flow_add")])])
    assert first.wait(5) and second.wait(5)
    assert [d for d, _ in switches.writes()] == [1, 2, 3, 1, 2, 4]


def test_a_switch_not_connected_is_skipped_and_a_silent_one_waited_for_at_most_the_timeout(
        switches):
    """A switch that is gone gets nothing and is not waited for; one that never answers
    holds its stage for ``barrier_timeout_s``, then the rollout goes on."""
    switches.gone = {2}
    switches.hold = {3}
    ro = Rollouts(switches.write, switches.barrier, drain_s=0.0, barrier_timeout_s=0.2)
    r = ro.submit(REROUTE)
    assert r.wait(5)
    assert [d for d, _ in switches.writes()] == [1, 3, 1]
    assert r.dpids == {1, 3}


def test_a_failing_write_does_not_stop_later_rollouts(switches):
    """An error while writing one rollout ends that one (its events set) and the next
    goes out."""
    def write(batch):
        if batch.dpid == 9:
            raise OSError("socket closed")
        return switches.write(batch)
    ro = Rollouts(write, switches.barrier, drain_s=0.0)
    bad = ro.submit([("make", [_batch(9, "flow_add")])])
    good = ro.submit([("make", [_batch(1, "flow_add")])])
    assert bad.wait(5) and good.wait(5)
    assert switches.writes() == [(1, ("flow_add",))]
    ro.close()
    with pytest.raises(RuntimeError, match="closed"):
        ro.submit(REROUTE)


def test_a_negative_drain_is_refused():
    with pytest.raises(ValueError, match="drain_s must be >= 0 seconds, got -1"):
        Rollouts(lambda b: True, lambda d: None, drain_s=-1)


def test_nothing_to_send_is_done_at_once_and_does_not_cut_a_drain_short(switches):
    """An empty Changes (a link's second end reporting down) is live and done on return,
    its callback called, and the rollout draining meanwhile still waits its full drain
    before deleting the old paths (it cut the drain short and a chain lost the packets
    on its fast-failover path)."""
    ro = Rollouts(switches.write, switches.barrier, drain_s=0.3)
    first = ro.submit(REROUTE)
    _wait(first.live.is_set)
    t_live = time.monotonic()
    called = []
    empty = ro.submit([], "second end", on_live=called.append)
    assert empty.live.is_set() and empty.done.is_set() and called == [empty]
    assert first.wait(5)
    t_del = next(e[3] for e in switches.log if e[0] == "write" and e[2] == ("flow_del",))
    assert t_del - t_live >= 0.25
    ro.close()


def test_a_failing_report_does_not_skip_the_deletions(switches):
    """An on_live callback that raises is logged; the break stage still goes out."""
    ro = Rollouts(switches.write, switches.barrier, drain_s=0.0)

    def boom(r):
        raise RuntimeError("report failed")
    r = ro.submit(REROUTE, on_live=boom)
    assert r.wait(5)
    assert [ops for _, ops in switches.writes()][-2:] == [("flow_del",), ("flow_del", "group_del")]
    empty = ro.submit([], on_live=boom)       # done at once, on the caller's thread
    assert empty.done.is_set()
    ro.close()
