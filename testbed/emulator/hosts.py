"""Mininet hosts started in parallel, with interfaces configured in one round-trip.

A stock ``mininet.node.Host`` starts its shell and waits for the prompt before the next host
can start (about 15 ms each here); ``FastHost`` splits the two so a hundred shells start
together. The hosts of a topology go further: ``start_netns_holders`` makes their network
namespaces, each held by a ``sleep`` process, and a host's shell starts in its namespace the
first time the host runs a command (``cmd``, ``sendCmd``...). Most hosts of a fat-tree only
send and receive packets (programs started with ``popen``, which needs no shell). fat-tree
k=8's 128 namespaces: 0.14 s held by ``sleep``, 0.29-0.40 s with a shell each.
Interfaces are made by the emulator directly inside the host's namespace; ``QuietIntf``
registers them with Mininet without the per-interface ``ifconfig`` calls of
``mininet.link.Intf``.
"""
from __future__ import annotations

import os
import select
import subprocess
import threading
from collections.abc import Callable

from mininet.link import Intf
from mininet.node import Host

from testbed.errors import EmulationError


def start_netns_holders(count: int) -> list[subprocess.Popen]:
    """Make ``count`` network namespaces (each with its own mount namespace and ``/sys``, as
    ``mnexec -n`` makes them for a Mininet host), each held by a ``sleep`` process; return
    the processes once every namespace exists. Raises EmulationError if one could not be
    made (the others are ended)."""
    # no -c: mnexec would close every descriptor up to the limit (20,000 here, 1 ms per
    # process); close_fds does the same from /proc/self/fd. -p prints the pid after -n.
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            try:
                procs.append(subprocess.Popen(["mnexec", "-dnp", "sleep", "infinity"],
                                              stdin=subprocess.DEVNULL,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              close_fds=True))
            except FileNotFoundError:
                raise EmulationError("mnexec (Mininet's) is not installed; run "
                                     "scripts/install.sh") from None
        for p in procs:
            line = p.stdout.readline()
            if not line.startswith(b"\x01"):
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                err = p.stderr.read().decode(errors="replace").strip()
                raise EmulationError(
                    f"could not make a network namespace for a host (mnexec -n exited "
                    f"{p.returncode}: {err or 'no message'}); the testbed needs root")
            p.stdout.close()
            p.stderr.close()
    except BaseException:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        raise
    return procs


class FastHost(Host):
    """A Mininet host whose shell start does not wait for the prompt.

    Call ``wait_ready()`` before using ``cmd``. With ``holder`` (one of
    ``start_netns_holders``' processes) the host is that process's namespace and ``pid``
    is the holder's; its shell starts at the first command (``cmd``, ``sendCmd``,
    ``write``, ``wait_ready``; once, whatever threads ask), and ``on_shell(pid)`` is then
    called (the emulator records the process).
    """

    def __init__(self, name, holder: subprocess.Popen | None = None,
                 on_shell: Callable[[int], object] | None = None, **params):
        self.holder, self.on_shell = holder, on_shell
        self._shell_lock = threading.Lock()
        super().__init__(name, **params)

    def startShell(self, mnopts=None):
        self._ready = False
        if self.holder is None:
            self._spawn_shell(mnopts)
        else:
            self.pid = self.holder.pid

    def _ensure_shell(self) -> None:
        if self.shell is not None or self.holder is None:
            return
        with self._shell_lock:
            if self.shell is not None:
                return
            if self.holder.poll() is not None:
                raise EmulationError(f"host {self.name}: its namespace is gone (holder "
                                     f"process {self.holder.pid} ended)")
            self._spawn_shell()
            self.pid = self.holder.pid    # popen and `ip ... netns` go by the namespace
            if self.on_shell is not None:
                self.on_shell(self.shell.pid)

    def sendCmd(self, *args, **kwargs):
        self._ensure_shell()
        if not self._ready:
            self.wait_ready()
        return super().sendCmd(*args, **kwargs)

    def write(self, data):
        self._ensure_shell()
        return super().write(data)

    def cmd(self, *args, **kwargs):
        self._ensure_shell()   # Node.cmd needs a shell before it calls sendCmd
        return super().cmd(*args, **kwargs)

    def terminate(self):
        """End the shell (if any) and the namespace's holder."""
        super().terminate()
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()

    def _spawn_shell(self, mnopts=None):
        # Same as Node.startShell up to the prompt wait.
        import pty

        if self.holder is not None:   # into the holder's namespaces
            opts, tail = "-d", ["-a", str(self.holder.pid)]
        else:
            opts, tail = ("-cd" if mnopts is None else mnopts), []
            if self.inNamespace:
                opts += "n"
        cmd = ["mnexec", opts, *tail, "env", "PS1=" + chr(127), "bash", "--norc",
               "--noediting", "-is", "mininet:" + self.name]
        self.master, self.slave = pty.openpty()
        # mnexec -c closes the rest (a shell of its own namespace); else Python does
        self.shell = self._popen(cmd, stdin=self.slave, stdout=self.slave,
                                 stderr=self.slave, close_fds=self.holder is not None)
        self.stdin = os.fdopen(self.master, "r")
        self.stdout = self.stdin
        self.pid = self.shell.pid
        self.pollOut = select.poll()
        self.pollOut.register(self.stdout)
        self.outToNode[self.stdout.fileno()] = self
        self.inToNode[self.stdin.fileno()] = self
        self.execed = False
        self.lastCmd = None
        self.lastPid = None
        self.readbuf = ""

    def wait_ready(self, timeout_ms: int = 10000) -> None:
        """Wait for the shell's first prompt and set it up (no history file, no echo, no
        job control). Raises EmulationError if it does not start."""
        if self._ready:
            return
        self._ensure_shell()
        self._wait_prompt(timeout_ms)
        self.cmd(self.SETUP)

    SETUP = "unset HISTFILE; stty -echo; set +m"

    def _wait_prompt(self, timeout_ms: int) -> None:
        data = ""
        while not data.endswith(chr(127)):
            if not self.pollOut.poll(timeout_ms):
                raise EmulationError(f"host {self.name}: shell did not start "
                                     f"(no prompt within {timeout_ms} ms)")
            chunk = self.read(1024)
            if not chunk and self.shell.poll() is not None:
                raise EmulationError(f"host {self.name}: shell exited at start "
                                     f"(is mnexec installed? run scripts/install.sh)")
            data += chunk
        self.waiting = False
        self._ready = True


class QuietIntf(Intf):
    """An interface that already exists and is configured: register it, change nothing."""

    def __init__(self, name, node=None, port=None, mac=None, ip=None, prefix_len=8):
        super().__init__(name, node=node, port=port, mac=mac,
                         moveIntfFn=lambda *_a, **_k: True)
        self.ip, self.prefixLen = ip, prefix_len

    def config(self, **_params):  # the emulator configured it already, in one batch
        return {}

