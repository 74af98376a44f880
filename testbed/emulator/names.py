"""Kernel names the emulator derives, bounded for any input.

Linux limits network interface names to ``IFNAMSIZ`` - 1 = 15 characters (``IFNAMSIZ`` is
16 with the terminating NUL, include/uapi/linux/if.h); Open vSwitch port names are the
interface names, so the same limit holds for them. The emulator names a node's port
``<node>-eth<port>`` (``s12-eth3``, ``fw_3-eth0``) while that fits; a longer one (a long
switch name with many ports, a VNF instance whose counter grew after many heals and
scale-outs) becomes ``<node prefix>-<8 hex digits>``: the prefix keeps it readable, the
digits are a BLAKE2s digest of the node name and port, so the name is stable across runs,
and a name already taken in the run gets the next salted digest instead (no collision).
"""
from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Container

IFNAMSIZ = 15                      # usable characters of a Linux interface name
DIGEST_CHARS = 8                   # 32 bits of BLAKE2s, in hex
PREFIX_CHARS = IFNAMSIZ - DIGEST_CHARS - 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def ifname(node: str, port: int, taken: Container[str] = ()) -> str:
    """The interface name of ``node``'s port ``port``: at most 15 characters of
    ``[A-Za-z0-9_-]``, not in ``taken``.

    ``<node>-eth<port>`` when it fits and is free, else ``<node[:6]>-<digest>``; the same
    (node, port, taken) always gives the same name. Raises nothing."""
    natural = f"{node}-eth{port}"
    if len(natural) <= IFNAMSIZ and not _UNSAFE.search(str(node)) and natural not in taken:
        return natural
    prefix = _UNSAFE.sub("_", str(node))[:PREFIX_CHARS]
    for salt in itertools.count():
        digest = hashlib.blake2s(f"{node}\0{port}\0{salt}".encode(),
                                 digest_size=DIGEST_CHARS // 2).hexdigest()
        name = f"{prefix}-{digest}"
        if name not in taken:
            return name
    raise AssertionError("unreachable")  # pragma: no cover - itertools.count is endless
