"""Configure hosts' network namespaces from this process, with rtnetlink.

A host's set-up is its loopback up, its address, its interface up, static ARP entries for
the other endpoints and its interface's offloads off. Run as an ``ip -batch`` and an
``ethtool`` process in each host's shell, it cost 0.28 s for fat-tree k=8's 128 hosts
(16,256 ARP entries): two processes per host. Here a thread enters each namespace in turn
(``setns(2)`` moves only the calling thread), opens a netlink socket there (a socket stays
in the namespace it was made in) and sends the host's set-up as rtnetlink requests (RFC
3549; ``rtnetlink(7)``) in datagrams of at most 32 KiB (one at k=8), each asking for one
acknowledgement, at its end; the kernel answers a failed request anyway. The messages are
those ``ip address add``, ``ip link set up`` and ``ip neigh replace ... nud permanent``
send.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from testbed.emulator.ethtool import offloads_off
from testbed.emulator.shell import offload_script, run
from testbed.errors import EmulationError

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWNEIGH = 16, 20, 28
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
IFF_UP = 0x1
IFA_ADDRESS, IFA_LOCAL = 1, 2
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80
LOOPBACK_IFINDEX = 1   # the first device of every network namespace
SOL_NETLINK, NETLINK_CAP_ACK = 270, 10
DATAGRAM_BYTES = 32 * 1024   # well under a netlink socket's default buffers (208 KiB)

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class HostNet:
    """What one host's namespace gets.

    ``pid``: a process in the namespace; ``iface``: the host's interface there (it exists);
    ``ip``/``prefix_len``: its IPv4 address; ``neighbours``: (IPv4, MAC) pairs entered as
    permanent ARP entries on ``iface``; ``offloads``: switch its offloads off (as
    ``ethtool -K IF tx off sg off tso off gso off gro off``); ``ipv6``: leave IPv6 on
    ``iface`` (else ``disable_ipv6``: the fabric carries IPv4 only)."""

    pid: int
    iface: str
    ip: str
    prefix_len: int
    neighbours: Sequence[tuple[str, str]] = field(default=())
    offloads: bool = True
    ipv6: bool = False


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("HH", size, kind) + data + b"\0" * (-size % 4)


def _msg(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    # no NLM_F_ACK: the kernel answers a request that failed anyway (NLMSG_ERROR);
    # ``datagrams`` asks it of each datagram's last request
    return struct.pack("IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body


def _link_up(seq: int, ifindex: int) -> bytes:
    # struct ifinfomsg: family, pad, type, index, flags, change
    return _msg(RTM_NEWLINK, 0, seq, struct.pack("BBHiII", socket.AF_UNSPEC, 0, 0, ifindex,
                                                 IFF_UP, IFF_UP))


def _ipv4(ip: str) -> bytes:
    try:
        return socket.inet_pton(socket.AF_INET, ip)
    except OSError:
        raise ValueError(f"{ip!r} is not an IPv4 address") from None


@functools.lru_cache(maxsize=4096)
def _neigh_attrs(ip: str, mac: str) -> bytes:
    try:
        lladdr = bytes.fromhex(mac.replace(":", ""))
    except ValueError:
        lladdr = b""
    if len(lladdr) != 6:
        raise ValueError(f"{mac!r} is not a MAC address")
    return _attr(NDA_DST, _ipv4(ip)) + _attr(NDA_LLADDR, lladdr)


def requests(host: HostNet, ifindex: int) -> list[tuple[str, bytes]]:
    """The host's rtnetlink requests, in order, each with what it does (for errors):
    loopback up, the address, the interface up, the ARP entries. None asks for an
    acknowledgement (``datagrams`` marks the last of each datagram; the kernel answers a
    failed request anyway). Sequence numbers are the list's positions from 1. Raises
    ValueError for a malformed address."""
    addr = _ipv4(host.ip)
    # struct ifaddrmsg: family, prefixlen, flags, scope (universe), index
    address = (struct.pack("BBBBI", socket.AF_INET, host.prefix_len, 0, 0, ifindex)
               + _attr(IFA_LOCAL, addr) + _attr(IFA_ADDRESS, addr))
    out = [("set lo up", _link_up(1, LOOPBACK_IFINDEX)),
           (f"add address {host.ip}/{host.prefix_len} to {host.iface}",
            _msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 2, address)),
           (f"set {host.iface} up", _link_up(3, ifindex))]
    # struct ndmsg: family, pad1, pad2, ifindex, state, flags, type
    ndmsg = struct.pack("BBHiHBB", socket.AF_INET, 0, 0, ifindex, NUD_PERMANENT, 0, 0)
    for ip, mac in host.neighbours:
        out.append((f"add ARP entry {ip} -> {mac}",
                    _msg(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, len(out) + 1,
                         ndmsg + _neigh_attrs(ip, mac))))
    return out


def _with_ack(msg: bytes) -> bytes:
    flags = struct.unpack_from("H", msg, 6)[0] | NLM_F_ACK
    return msg[:6] + struct.pack("H", flags) + msg[8:]


def datagrams(reqs: Sequence[tuple[str, bytes]], limit: int = DATAGRAM_BYTES
              ) -> list[tuple[int, bytes]]:
    """``reqs`` (``requests``' list) cut into datagrams of at most ``limit`` bytes (a
    request longer than that goes alone), each one's last request asking for an
    acknowledgement: [(that request's sequence number, datagram)]."""
    out: list[tuple[int, bytes]] = []
    batch: list[bytes] = []
    size = 0
    for i, (_what, msg) in enumerate(reqs, start=1):
        if batch and size + len(msg) > limit:
            out.append((i - 1, b"".join(batch[:-1] + [_with_ack(batch[-1])])))
            batch, size = [], 0
        batch.append(msg)
        size += len(msg)
    if batch:
        out.append((len(reqs), b"".join(batch[:-1] + [_with_ack(batch[-1])])))
    return out


def _acks(sock: socket.socket, last: int) -> dict[int, int]:
    """Read the kernel's answers up to the acknowledgement of request ``last``; return
    {sequence number: errno} of the requests that failed."""
    failed: dict[int, int] = {}
    while True:
        data = sock.recv(1 << 16)
        off = 0
        while off + 16 <= len(data):
            length, kind, _flags, seq, _pid = struct.unpack_from("IHHII", data, off)
            if kind == NLMSG_ERROR:
                code = struct.unpack_from("i", data, off + 16)[0]
                if code:
                    failed[seq] = -code
                if seq == last:
                    return failed
            if length < 16:
                break
            off += (length + 3) & ~3


def _configure_one(host: HostNet) -> None:
    where = f"host interface {host.iface} (namespace of process {host.pid})"
    try:
        fd = os.open(f"/proc/{host.pid}/ns/net", os.O_RDONLY)
    except OSError as exc:
        raise EmulationError(f"{where}: the namespace is gone ({exc.strerror})") from None
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise EmulationError(f"{where}: cannot enter the namespace: {os.strerror(err)}; "
                                 f"run the testbed as root")
    finally:
        os.close(fd)
    try:
        ifindex = socket.if_nametoindex(host.iface)
    except OSError:
        raise EmulationError(f"no interface {host.iface!r} in the namespace of process "
                             f"{host.pid}") from None
    try:
        reqs = requests(host, ifindex)
    except ValueError as exc:
        raise EmulationError(f"{where}: {exc}") from None
    if not host.ipv6:   # this thread's namespace's sysctl (/proc/sys/net is per namespace)
        try:
            with open(f"/proc/sys/net/ipv6/conf/{host.iface}/disable_ipv6", "w") as f:
                f.write("1")
        except FileNotFoundError:
            pass   # a kernel without IPv6
    failed: dict[int, int] = {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
            sock.settimeout(10)
            # an error answer without a copy of the request it answers
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            sock.bind((0, 0))
            for last, datagram in datagrams(reqs):
                sock.send(datagram)
                failed.update(_acks(sock, last))
    except TimeoutError:
        raise EmulationError(f"{where}: the kernel did not answer the set-up requests "
                             f"within 10 s") from None
    except OSError as exc:
        raise EmulationError(f"{where}: rtnetlink failed: {exc.strerror or exc}") from None
    if failed:
        seq, code = min(failed.items())
        raise EmulationError(f"{where}: could not {reqs[seq - 1][0]}: "
                             f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"
                             + (f"; {len(failed) - 1} more requests failed"
                                if len(failed) > 1 else ""))
    if host.offloads and offloads_off([host.iface]):
        # the ethtool program says why
        run(["nsenter", "-t", str(host.pid), "-n", "sh", "-c", offload_script([host.iface])])


def configure(hosts: Sequence[HostNet]) -> None:
    """Set up every host's namespace (see ``HostNet``), one after the other, on a thread of
    its own (which then ends, with the namespace it was in). Raises EmulationError naming
    the host's interface and the request the kernel refused."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for h in hosts:
                _configure_one(h)
        except BaseException as exc:  # noqa: BLE001  (re-raised on the caller's thread)
            errors.append(exc)

    t = threading.Thread(target=work, name="netns-setup", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]
