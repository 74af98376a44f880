"""Hand-made Ethernet frames, sent and counted: the testbed's tool for auditing isolation
(spoofed VLAN tags, priority tags, QinQ, spoofed source MAC/IP), standard library only.

Sender (inside a host's namespace, as root)::

    python -m testbed.programs.rawframes send --iface IF --frames FILE.json [--rate PPS]
        [--out FILE]

``FILE.json`` is a list of frame groups; each is sent ``count`` times (default 1) per VLAN
stack, in order, at ``--rate`` frames/s (default 20,000)::

    {"tag": "name (what counts it)", "dst_mac", "src_mac", "src_ip", "dst_ip",
     "proto": 17, "sport": 40000, "dport": 5001, "count": 1,
     "vlans": [[TPID, VID, PCP], ...]   one stack, outermost first (default: untagged)
     "vid_sweep": [TPID, FIRST, LAST]   or: one frame per VID FIRST..LAST (single tag)}

A frame is Ethernet (+ 802.1Q/802.1ad tags) + IPv4 (checksum set) + UDP (checksum 0, which
IPv4 allows) or a bare IPv4 payload for other protocols; its payload is the marker
``MAGIC`` + the tag (16 bytes, NUL-padded) + a sequence number, so a counter recognises it
whatever was done to the headers on the way. ``--out`` gets {"sent": {tag: n}, "errors"}.

Counter::

    python -m testbed.programs.rawframes count --iface IF --out FILE

listens on an AF_PACKET socket (promiscuous), writes {"ready": true, "counts": {}} once
listening, then, every 0.2 s when changed and at SIGTERM/SIGINT, {"counts": {tag: n},
"tagged": {tag: n}}: frames arriving at the interface (never the ones it sends) that carry
the marker, and how many of them still had a VLAN tag. Set-up errors print one line to
stderr and exit 2.
"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time

from testbed.programs.common import StopFlag, write_json_atomic
from testbed.programs.vnf import checksum

MAGIC = b"TBRF"
TAG_LEN = 16
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
VLAN_TPIDS = (0x8100, 0x88A8)
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC, PACKET_AUXDATA = 263, 1, 1, 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
DEFAULT_RATE = 20_000


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"{text!r} is not a MAC address")
    return raw


def marker(tag: str, seq: int) -> bytes:
    """The payload that identifies a frame: MAGIC + tag (16 bytes) + seq (u32)."""
    name = tag.encode()
    if len(name) > TAG_LEN:
        raise ValueError(f"tag {tag!r} is longer than {TAG_LEN} bytes")
    return MAGIC + name.ljust(TAG_LEN, b"\0") + struct.pack("!I", seq)


def build_frame(*, dst_mac: str, src_mac: str, src_ip: str, dst_ip: str, tag: str,
                seq: int = 0, proto: int = 17, sport: int = 40000, dport: int = 5001,
                vlans: list | tuple = ()) -> bytes:
    """One frame: Ethernet, the ``vlans`` stack (``[TPID, VID, PCP]``, outermost first),
    IPv4 and UDP (or, for another ``proto``, the marker right after the IPv4 header)."""
    eth = _mac(dst_mac) + _mac(src_mac)
    for tpid, vid, pcp in vlans:
        if tpid not in VLAN_TPIDS or not 0 <= vid <= 4095 or not 0 <= pcp <= 7:
            raise ValueError(f"VLAN tag {[tpid, vid, pcp]} needs a TPID in "
                             f"{[hex(t) for t in VLAN_TPIDS]}, VID 0..4095, PCP 0..7")
        eth += struct.pack("!HH", tpid, pcp << 13 | vid)
    eth += struct.pack("!H", ETH_P_IP)
    payload = marker(tag, seq)
    if proto == 17:
        payload = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), seq & 0xFFFF, 0, 64, proto,
                     0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return eth + ip + payload


def read_marker(frame: bytes) -> tuple[str, int] | None:
    """(tag, seq) of a frame carrying the marker anywhere, else None."""
    at = frame.find(MAGIC)
    if at < 0 or len(frame) < at + len(MAGIC) + TAG_LEN + 4:
        return None
    raw = frame[at + len(MAGIC): at + len(MAGIC) + TAG_LEN]
    (seq,) = struct.unpack_from("!I", frame, at + len(MAGIC) + TAG_LEN)
    return raw.rstrip(b"\0").decode(errors="replace"), seq


def frames_of(group: dict) -> list[bytes]:
    """Every frame of one group of the frames file (see the module docstring)."""
    keys = ("dst_mac", "src_mac", "src_ip", "dst_ip", "tag", "proto", "sport", "dport")
    base = {k: group[k] for k in keys if k in group}
    stacks: list = [group.get("vlans", [])]
    if "vid_sweep" in group:
        tpid, first, last = group["vid_sweep"]
        stacks = [[[tpid, vid, 0]] for vid in range(first, last + 1)]
    out = []
    seq = 0
    for _ in range(int(group.get("count", 1))):
        for stack in stacks:
            out.append(build_frame(**base, vlans=stack, seq=seq))
            seq += 1
    return out


def _socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    return sock


def run_send(args: argparse.Namespace) -> int:
    try:
        with open(args.frames) as f:
            groups = json.load(f)
        batches = [(g["tag"], frames_of(g)) for g in groups]
        sock = _socket(args.iface)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"rawframes send: error: {e!r}", file=sys.stderr)
        return 2
    interval = 1.0 / args.rate
    sent: dict[str, int] = {}
    errors = 0
    t = time.monotonic()
    for tag, frames in batches:
        for frame in frames:
            t += interval
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                sock.send(frame)
                sent[tag] = sent.get(tag, 0) + 1
            except OSError:
                errors += 1
    sock.close()
    if args.out:
        write_json_atomic(args.out, {"sent": sent, "errors": errors})
    return 0


def run_count(args: argparse.Namespace) -> int:
    stop = StopFlag()
    stop.install()
    try:
        sock = _socket(args.iface)
        mreq = struct.pack("iHH8s", socket.if_nametoindex(args.iface), PACKET_MR_PROMISC, 0,
                           b"")
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.settimeout(0.1)
    except OSError as e:
        print(f"rawframes count: error: {e}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    tagged: dict[str, int] = {}
    write_json_atomic(args.out, {"ready": True, "counts": counts, "tagged": tagged})
    last, dirty = time.monotonic(), False
    while not stop.flag:
        try:
            frame, anc, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(64))
        except TimeoutError:
            frame = None
        except InterruptedError:
            continue
        if frame is not None and addr[2] != PACKET_OUTGOING:
            got = read_marker(frame)
            if got is not None:
                counts[got[0]] = counts.get(got[0], 0) + 1
                # a tag the kernel took off into metadata (VLAN offload) still counts
                offloaded = any(level == SOL_PACKET and kind == PACKET_AUXDATA
                                and struct.unpack_from("I", data)[0] & TP_STATUS_VLAN_VALID
                                for level, kind, data in anc)
                in_frame = struct.unpack_from("!H", frame, 12)[0] in VLAN_TPIDS
                if offloaded or in_frame:
                    tagged[got[0]] = tagged.get(got[0], 0) + 1
                dirty = True
        if dirty and time.monotonic() - last > 0.2:
            write_json_atomic(args.out, {"ready": True, "counts": counts, "tagged": tagged})
            last, dirty = time.monotonic(), False
    write_json_atomic(args.out, {"ready": True, "done": True, "counts": counts,
                                 "tagged": tagged})
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m testbed.programs.rawframes",
                                description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send", help="send the frames of a frames file")
    s.add_argument("--iface", required=True)
    s.add_argument("--frames", required=True)
    s.add_argument("--rate", type=float, default=DEFAULT_RATE)
    s.add_argument("--out")
    c = sub.add_parser("count", help="count marked frames arriving at an interface")
    c.add_argument("--iface", required=True)
    c.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_send(args) if args.cmd == "send" else run_count(args)


if __name__ == "__main__":
    sys.exit(main())
