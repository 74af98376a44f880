"""Batched system commands: one process for many operations.

Stock Mininet pays one process (or one shell round-trip) per interface; bringing up a large
fat-tree that way takes minutes. Here every kind of operation is collected and run in one go:
``ip -batch`` for links, one ``ovs-vsctl`` transaction for all bridges and ports, one shell
for all ``ethtool`` calls of the root namespace.
"""
from __future__ import annotations

import shlex
import subprocess
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


def tc_batch(lines: Iterable[str]) -> None:
    """Run many ``tc`` commands in one process (``tc -batch -``)."""
    text = "\n".join(lines)
    if text:
        run(["tc", "-batch", "-"], input=text + "\n")


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
