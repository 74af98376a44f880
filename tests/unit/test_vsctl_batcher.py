"""``VsctlBatcher``: ovs-vsctl transactions asked for by several threads at once go as one,
and a failing joint transaction leaves each caller its own outcome (ovs-vsctl replaced by a
recorder: the batching is pure logic)."""
from __future__ import annotations

import threading
import time

import pytest

from testbed.emulator import shell
from testbed.errors import EmulationError


class Recorder:
    """Stands for ovs-vsctl: records each transaction; the first one blocks until released;
    a transaction holding a port named ``bad`` fails as a whole."""

    def __init__(self):
        self.transactions: list[list[str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, args, **_kw):
        self.transactions.append(list(args))
        if len(self.transactions) == 1:
            self.entered.set()
            self.release.wait(5)
        if "bad" in args:
            raise EmulationError("no such port bad")
        return ""


def _port(name: str) -> list[str]:
    return ["--", "add-port", "s1", name]


def _start(batcher, name, errors):
    def go():
        try:
            batcher.run(_port(name))
        except EmulationError as exc:
            errors[name] = str(exc)
    t = threading.Thread(target=go)
    t.start()
    return t


def test_requests_made_while_one_runs_go_as_one_transaction(monkeypatch):
    """While the first caller's transaction runs, two more callers wait; both of theirs then
    go as one transaction, and every caller returns."""
    rec = Recorder()
    monkeypatch.setattr(shell, "vsctl", rec)
    b, errors = shell.VsctlBatcher(), {}
    first = _start(b, "p1", errors)
    assert rec.entered.wait(5)
    later = [_start(b, n, errors) for n in ("p2", "p3")]
    time.sleep(0.1)                       # both queued behind the running transaction
    rec.release.set()
    for t in [first, *later]:
        t.join(5)
        assert not t.is_alive()
    assert errors == {}
    assert len(rec.transactions) == 2 and rec.transactions[0] == _port("p1")
    assert rec.transactions[1] in (_port("p2") + _port("p3"), _port("p3") + _port("p2"))


def test_a_failing_joint_transaction_is_retried_one_by_one(monkeypatch):
    """A joint transaction that fails is run again per request: only the caller whose
    commands fail gets the error."""
    rec = Recorder()
    monkeypatch.setattr(shell, "vsctl", rec)
    b, errors = shell.VsctlBatcher(), {}
    first = _start(b, "p1", errors)
    assert rec.entered.wait(5)
    later = [_start(b, n, errors) for n in ("bad", "p3")]
    time.sleep(0.1)
    rec.release.set()
    for t in [first, *later]:
        t.join(5)
    assert errors == {"bad": "no such port bad"}
    assert rec.transactions[-2:] in ([_port("bad"), _port("p3")], [_port("p3"), _port("bad")])


def test_a_single_caller_runs_its_transaction_and_gets_its_error(monkeypatch):
    """Alone, a caller runs its own transaction at once and gets its error."""
    rec = Recorder()
    rec.release.set()
    monkeypatch.setattr(shell, "vsctl", rec)
    b = shell.VsctlBatcher()
    b.run(_port("p1"))
    with pytest.raises(EmulationError, match="no such port bad"):
        b.run(_port("bad"))
    assert rec.transactions == [_port("p1"), _port("bad")]


def test_a_transaction_waits_briefly_for_the_requests_of_work_under_way(monkeypatch):
    """Two callers that said they would come (``expecting``), arriving 20 ms apart, share
    one transaction; a caller that never comes delays the transaction by gather_s at most."""
    rec = Recorder()
    rec.release.set()
    monkeypatch.setattr(shell, "vsctl", rec)
    b = shell.VsctlBatcher(gather_s=0.5)
    started = threading.Barrier(2, timeout=5)

    def caller(name, delay):
        with b.expecting() as turn:
            started.wait()
            time.sleep(delay)
            b.run(_port(name), turn)
    threads = [threading.Thread(target=caller, args=a) for a in (("p1", 0), ("p2", 0.02))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(rec.transactions) == 1
    assert rec.transactions[0] in (_port("p1") + _port("p2"), _port("p2") + _port("p1"))

    b.gather_s = 0.05
    with b.expecting():                  # under way, but never asks
        t0 = time.monotonic()
        b.run(_port("p3"))
        waited = time.monotonic() - t0
    assert rec.transactions[-1] == _port("p3") and 0.04 < waited < 0.5


def test_a_transaction_keeps_its_commands_with_the_generic_sets_last():
    """``_sets_last`` moves ``set`` commands after the others (ovs-vsctl rebuilds its
    cache after each) and keeps every command whole and the others in their order."""
    from testbed.emulator.net import _sets_last

    args = ["--", "add-br", "s1", "--", "set", "bridge", "s1", "datapath_type=netdev",
            "--", "add-port", "s1", "s1-eth1", "--", "set", "interface", "s1-eth1",
            "ofport_request=1", "--", "set-controller", "s1", "tcp:127.0.0.1:1",
            "--", "--if-exists", "del-port", "s1", "x"]
    assert _sets_last(args) == [
        "--", "add-br", "s1", "--", "add-port", "s1", "s1-eth1",
        "--", "set-controller", "s1", "tcp:127.0.0.1:1", "--", "--if-exists", "del-port",
        "s1", "x", "--", "set", "bridge", "s1", "datapath_type=netdev",
        "--", "set", "interface", "s1-eth1", "ofport_request=1"]
    assert _sets_last([]) == []
