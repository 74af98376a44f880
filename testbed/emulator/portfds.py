"""Fast removal of userspace-datapath ports: the last close of each port's socket is ours.

With the userspace datapath (``datapath_type=netdev``) ovs-vswitchd reads every switch port
through an ``AF_PACKET`` socket, and each bridge's own port is a tap device. Closing either
waits for a kernel RCU grace period (``packet_release`` and ``tun_detach`` call
``synchronize_net``: about 11 ms each here), and ovs-vswitchd deletes a run's ports one after
the other: 720 closes, about 8 s, at fat-tree k=8.

A grace period is only waited for by the *last* close of a socket. So, before a run's
bridges are deleted, the tear-down copies the daemon's descriptors of the run's ports into
this process (``pidfd_getfd``, Linux >= 5.6); the daemon's own closes are then not the last
ones and cost nothing, and the copies are closed afterwards from many threads at once, whose
grace periods overlap. The daemon is not otherwise touched: a copy only keeps a socket (or a
tap) open a little longer. Where the kernel refuses (older kernel, no ``CAP_SYS_PTRACE``),
nothing is copied and the tear-down takes the slow way.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import threading
from collections.abc import Iterable
from pathlib import Path

SYS_PIDFD_GETFD = 438   # the same number on every architecture (asm-generic syscall table)
CLOSE_THREADS = 64
TUN = "/dev/net/tun"


def vswitchd_pid() -> int | None:
    """The pid of the system's ovs-vswitchd, from its pid file (``OVS_RUNDIR`` or
    ``/var/run/openvswitch``); None if there is none or it has ended."""
    rundir = Path(os.environ.get("OVS_RUNDIR", "/var/run/openvswitch"))
    try:
        pid = int((rundir / "ovs-vswitchd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _ifindexes(names: Iterable[str]) -> set[int]:
    out = set()
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            out.add(int(Path(f"/sys/class/net/{name}/ifindex").read_text()))
    return out


def _packet_socket_inodes(ifindexes: set[int]) -> set[str]:
    """``socket:[inode]`` of every packet socket of this network namespace bound to one of
    ``ifindexes`` (``/proc/net/packet``: columns sk RefCnt Type Proto Iface R Rmem User
    Inode)."""
    out = set()
    try:
        lines = Path("/proc/net/packet").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) >= 9 and f[4].isdigit() and int(f[4]) in ifindexes:
            out.add(f"socket:[{f[8]}]")
    return out


def _tap_name(pid: int, fd: str) -> str | None:
    """The interface a tun/tap descriptor is attached to (its fdinfo's ``iff:`` line)."""
    try:
        info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
    except OSError:
        return None
    for line in info.splitlines():
        if line.startswith("iff:"):
            return line.split()[-1]
    return None


def copy_port_descriptors(pid: int, ifnames: Iterable[str]) -> list[int]:
    """Copies, in this process, of process ``pid``'s descriptors of the interfaces
    ``ifnames``: its packet sockets bound to them and its taps attached to them.

    Returns the new descriptor numbers (close them with :func:`close_all`); an empty list
    where the kernel refuses the copy or ``pid`` has ended. Never raises.
    """
    names = set(ifnames)
    inodes = _packet_socket_inodes(_ifindexes(names))
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    out: list[int] = []
    try:
        wanted = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in inodes or (target == TUN and _tap_name(pid, fd) in names):
                wanted.append(int(fd))
        _room_for(len(wanted))
        for fd in wanted:
            new = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
            if new >= 0:
                out.append(new)
            elif ctypes.get_errno() != errno.EBADF:   # ENOSYS or EPERM: no copies at all
                break
    except OSError:
        pass
    finally:
        os.close(pidfd)
    return out


def _room_for(n: int) -> None:
    """Raise this process's soft limit of open descriptors (up to the hard limit) so that
    ``n`` more fit: a fresh login's 1,024 holds fewer than fat-tree k=10's 1,375 ports.
    Where the limit stays too low, the copies stop at it (the rest close the slow way)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = len(os.listdir("/proc/self/fd")) + n + 64
    if soft != resource.RLIM_INFINITY and soft < need:
        top = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def close_all(fds: list[int], threads: int = CLOSE_THREADS) -> None:
    """Close descriptors from up to ``threads`` threads at once (their RCU grace periods
    overlap: 720 closes take about 0.3 s instead of 8 s). Errors are ignored."""
    if not fds:
        return

    def close(chunk: list[int]) -> None:
        for fd in chunk:
            with contextlib.suppress(OSError):
                os.close(fd)
    workers = [threading.Thread(target=close, args=(fds[i::threads],), daemon=True)
               for i in range(min(threads, len(fds)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
