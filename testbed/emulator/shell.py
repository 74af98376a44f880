"""Batched system commands: one process for many operations.

Stock Mininet pays one process (or one shell round-trip) per interface; bringing up a large
fat-tree that way takes minutes. Here every kind of operation is collected and run in one go:
``ip -batch`` for links, one ``ovs-vsctl`` transaction for all bridges and ports, one shell
for all ``ethtool`` calls of the root namespace; at run time, the ``ovs-vsctl`` transactions
of hosts added at once go as one (``VsctlBatcher``).
"""
from __future__ import annotations

import contextlib
import shlex
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence

from testbed.errors import EmulationError


def run(argv: Sequence[str], *, input: str | None = None, check: bool = True,
        timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise EmulationError quoting the command and its stderr."""
    try:
        proc = subprocess.run(list(argv), input=input, text=True, capture_output=True,
                              timeout=timeout)
    except FileNotFoundError as exc:
        raise EmulationError(
            f"command not found: {argv[0]} (run scripts/install.sh to install the "
            f"testbed's system packages)") from exc
    except subprocess.TimeoutExpired as exc:
        raise EmulationError(f"command timed out after {timeout:.0f} s: "
                             f"{shlex.join(argv)[:200]}") from exc
    if check and proc.returncode != 0:
        raise EmulationError(
            f"command failed (exit {proc.returncode}): {shlex.join(argv)[:300]}\n"
            f"{proc.stderr.strip()[:2000]}")
    return proc


def ip_batch(lines: Iterable[str], *, force: bool = False, netns_pid: int | None = None) -> None:
    """Run many ``ip`` commands in one process (``ip -batch -``).

    ``force`` keeps going after a failing line (used for tear-down, where some links may be
    gone already); errors are then ignored.
    """
    text = "\n".join(lines)
    if not text:
        return
    argv = ["ip"] + (["-force"] if force else []) + ["-batch", "-"]
    if netns_pid is not None:
        argv = ["nsenter", "-t", str(netns_pid), "-n"] + argv
    run(argv, input=text + "\n", check=not force)


def tc_batch(lines: Iterable[str], *, netns_pid: int | None = None) -> None:
    """Run many ``tc`` commands in one process (``tc -batch -``), in the network namespace
    of process ``netns_pid`` if given. Raises EmulationError with tc's message."""
    text = "\n".join(lines)
    if text:
        argv = ["tc", "-batch", "-"]
        if netns_pid is not None:
            argv = ["nsenter", "-t", str(netns_pid), "-n"] + argv
        run(argv, input=text + "\n")


def vsctl(args: Sequence[str], *, timeout: float = 120.0, check: bool = True) -> str:
    """Run one ``ovs-vsctl`` transaction. ``args`` are the words after ``ovs-vsctl``."""
    t = max(5, int(timeout))
    return run(["ovs-vsctl", f"--timeout={t}"] + list(args), timeout=timeout + 5,
               check=check).stdout


def sh(script: str, *, check: bool = True) -> None:
    """Run a shell script (many small commands, one interpreter)."""
    if script.strip():
        run(["sh", "-e", "-c", script] if check else ["sh", "-c", script], check=check)


OFFLOADS = "tx off tso off gso off gro off sg off"


def offload_script(ifaces: Iterable[str]) -> str:
    """Shell lines switching offloads off: needed on both ends of every link with the
    userspace datapath, else TCP hangs (DESIGN.md)."""
    return "".join(f"ethtool -K {shlex.quote(i)} {OFFLOADS} >/dev/null\n" for i in ifaces)


class VsctlBatcher:
    """``ovs-vsctl`` transactions asked for by several threads at once, run as one.

    ``run(args)`` queues the caller's commands (``args`` starts with ``--``); when no
    transaction of the batcher is running, the caller runs every queued request as one
    transaction, else it waits and its commands go in the next one. ovs-vswitchd
    reconfigures once per transaction, and that is what costs: adding three ports to a
    fat-tree k=4 took it about 45 ms of CPU as three transactions and 15 ms as one
    (measured here, userspace datapath), and an NS instantiation adds its instances' ports
    from three threads at once. Work that will ask for one transaction (``add_host``) says
    so first (``expecting``): a transaction about to start waits up to ``gather_s`` seconds
    for the requests of such work under way, to take them along (the creates of one NS
    reach their port a few milliseconds apart). A joint transaction that fails is run again
    request by request, so that each caller gets its own error (ovs-vsctl transactions are
    atomic: the failed one changed nothing)."""

    def __init__(self, gather_s: float = 0.025):
        self.gather_s = gather_s
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._running = False
        self._expected = 0          # callers under way that said they will come

    @contextlib.contextmanager
    def expecting(self):
        """Around work that calls ``run`` once, with the token this yields."""
        token = _Expected()
        with self._cond:
            self._expected += 1
        try:
            yield token
        finally:
            with self._cond:
                if not token.arrived:
                    self._expected -= 1
                    self._cond.notify_all()

    def run(self, args: Sequence[str], token: _Expected | None = None) -> None:
        req = _Request(list(args))
        with self._cond:
            if token is not None and not token.arrived:
                token.arrived = True
                self._expected -= 1
            self._queue.append(req)
            self._cond.notify_all()
            while self._running and not req.finished:
                self._cond.wait()
            if not req.finished:
                self._running = True
                deadline = time.monotonic() + self.gather_s
                while self._expected > 0 and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch, self._queue = self._queue, []
        if not req.finished:
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    for r in batch:      # interrupted: nobody waits for ever
                        if not r.finished:
                            r.error = EmulationError("ovs-vsctl transaction interrupted")
                            r.finished = True
                    self._running = False
                    self._cond.notify_all()
        if req.error is not None:
            raise req.error

    @staticmethod
    def _execute(batch: list[_Request]) -> None:
        if len(batch) > 1:
            try:
                vsctl([a for r in batch for a in r.args])
            except EmulationError:
                pass               # each on its own below: the error is the culprit's
            else:
                for r in batch:
                    r.finished = True
                return
        for r in batch:
            try:
                vsctl(r.args)
            except EmulationError as exc:
                r.error = exc
            r.finished = True


class _Expected:
    arrived = False


class _Request:
    def __init__(self, args: list[str]):
        self.args = args
        self.finished = False
        self.error: EmulationError | None = None
