"""Switch offloads off with the ethtool ioctl, in-process (no ``ethtool`` process per port).

With the userspace datapath TCP over veth hangs unless offloads are off on both ends of a
link (DESIGN.md). At k=8 an ``ethtool -K`` process per root-namespace port cost a second;
one ``ETHTOOL_SFEATURES`` ioctl per interface does the same in microseconds. The features
turned off are the ones ``ethtool -K IF tx off sg off tso off gso off gro off`` turns off,
found by name in the kernel's feature string table (new kernels add TSO variants).
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import socket
import struct

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS, ETHTOOL_GSSET_INFO, ETHTOOL_SFEATURES = 0x1B, 0x37, 0x3B
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32


def _feature_off(name: str) -> bool:
    return (name.startswith("tx-checksum") or name.startswith("tx-scatter-gather")
            or (name.startswith("tx-tcp") and name.endswith("segmentation"))
            or name == "tx-generic-segmentation" or name == "rx-gro")


def _ioctl(sock: socket.socket, ifname: str, buf: ctypes.Array) -> None:
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(buf))
    ifreq += b"\0" * (40 - len(ifreq))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


@functools.cache
def _feature_names(ifname: str) -> tuple[str, ...]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        info = ctypes.create_string_buffer(struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0,
                                                       1 << ETH_SS_FEATURES, 0), 24)
        _ioctl(s, ifname, info)
        count = struct.unpack_from("I", info.raw, 16)[0]
        strings = ctypes.create_string_buffer(
            struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count),
            12 + count * ETH_GSTRING_LEN)
        _ioctl(s, ifname, strings)
        raw = strings.raw[12:]
    return tuple(raw[i * ETH_GSTRING_LEN:(i + 1) * ETH_GSTRING_LEN].split(b"\0", 1)[0].decode()
                 for i in range(count))


def offloads_off(ifaces) -> list[str]:
    """Turn off tx checksumming, SG, TSO, GSO and GRO; return the interfaces that failed."""
    ifaces = list(ifaces)
    if not ifaces:
        return []
    failed = []
    names = None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for ifname in ifaces:
            try:
                if names is None:
                    names = _feature_names(ifname)
                    blocks = (len(names) + 31) // 32
                    valid = [0] * blocks
                    for i, n in enumerate(names):
                        if _feature_off(n):
                            valid[i // 32] |= 1 << (i % 32)
                    payload = struct.pack("II", ETHTOOL_SFEATURES, blocks) + b"".join(
                        struct.pack("II", v, 0) for v in valid)
                buf = ctypes.create_string_buffer(payload, len(payload))
                _ioctl(s, ifname, buf)
            except OSError:
                failed.append(ifname)
    return failed
