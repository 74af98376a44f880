"""Sequence-numbered UDP probe: measures loss, reordering, latency and outages.

Sender::

    python -m testbed.programs.probe send --dst IP --port P --rate PPS --duration S
        [--src-port SP] [--size BYTES] [--stream-id N] [--stats FILE]

sends ``rate * duration`` datagrams on an absolute schedule (packet i leaves at
start + i/rate: sleep until close, then spin; late packets never shift later ones). Each
datagram carries (magic, stream id, seq, send time ns, rate), the time from
CLOCK_MONOTONIC, which all network namespaces of a machine share. Send errors
(ENETUNREACH, EPERM, ...) are counted and sending goes on. Without --duration it runs
until SIGTERM/SIGINT. At exit it writes --stats::

    {"sent", "errors", "errors_by_errno", "rate", "duration", "stream_id",
     "elapsed_s", "achieved_rate", "max_late_ms"}

Receiver::

    python -m testbed.programs.probe recv --port P --out FILE [--duration S] [--bind ADDR]

writes {"ready": true, ...} to --out once listening, records (seq, recv ns, send ns) per
datagram until --duration elapses or SIGTERM/SIGINT, then overwrites --out with
``analyse(records, rate)`` plus "ready", "done", "port", "stream_id", "foreign",
"malformed". It follows the first stream id it sees; datagrams of other streams count as
"foreign".

Callers use :func:`read_result` (and :func:`wait_ready`); :func:`analyse` is pure.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import os
import socket
import struct
import sys
import time
from array import array
from collections.abc import Iterable

from testbed.programs.common import (  # noqa: F401  (read_result: callers' API)
    StopFlag,
    read_result,
    udp_receiver,
    write_json_atomic,
)
from testbed.programs.common import wait_ready as _wait_ready

MAGIC = b"TBP1"
# magic, stream id (u32), seq (u64), send time ns (u64), sender rate in pps (double)
HEADER = struct.Struct("!4sIQQd")
HEADER_SIZE = HEADER.size  # 32
MAX_GAPS = 10
SPIN_NS = 200_000  # sleep until this close to the send time, then spin


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def wait_ready(path: str, timeout: float = 5.0) -> dict:
    """Wait until a receiver has written its readiness record to ``path``; return it."""
    return _wait_ready(path, timeout, "probe receiver")


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list (q in 0..100)."""
    n = len(sorted_values)
    rank = max(1, -(-int(q * n) // 100))  # ceil(q*n/100), at least 1
    return sorted_values[min(rank, n) - 1]


def analyse(records: Iterable[tuple[int, int, int]], rate: float | None) -> dict:
    """Summarise received probe datagrams.

    ``records`` are (seq, recv_ns, send_ns) in the order they were received (send_ns 0 or
    None if unknown); ``rate`` is the sender's nominal packets per second (None if
    unknown). Gaps are receive-time gaps between consecutive received datagrams; the
    outage is the largest gap minus the nominal interval 1/rate.
    """
    received = 0
    seen: set[int] = set()
    duplicates = 0
    reordered = 0
    max_seq = -1
    min_seq = None
    latencies: list[float] = []
    gaps: list[tuple[int, int, int, int]] = []  # (gap_ns, recv_ns of previous, after, before)
    prev_seq = prev_recv = None
    for seq, recv_ns, send_ns in records:
        received += 1
        if seq in seen:
            duplicates += 1
        else:
            seen.add(seq)
            if seq < max_seq:
                reordered += 1
        max_seq = max(max_seq, seq)
        if min_seq is None or seq < min_seq:
            min_seq = seq
        if send_ns:
            latencies.append((recv_ns - send_ns) / 1e6)
        if prev_recv is not None:
            gaps.append((recv_ns - prev_recv, prev_recv, prev_seq, seq))
        prev_seq, prev_recv = seq, recv_ns

    interval_ms = 1000.0 / rate if rate else None
    result: dict = {
        "received": received,
        "unique": len(seen),
        "duplicates": duplicates,
        "reordered": reordered,
        "first_seq": min_seq,
        "last_seq": max_seq if received else None,
        "lost": (max_seq - min_seq + 1 - len(seen)) if received else 0,
        "rate": rate,
        "interval_ms": interval_ms,
        "max_gap_ms": 0.0,
        "outage_ms": 0.0,
        "gaps": [],
        "latency_ms": {"median": None, "p99": None},
    }
    if gaps:
        top = heapq.nlargest(MAX_GAPS, gaps, key=lambda g: g[0])
        max_gap_ms = top[0][0] / 1e6
        result["max_gap_ms"] = max_gap_ms
        result["outage_ms"] = max(0.0, max_gap_ms - (interval_ms or 0.0))
        result["gaps"] = [
            {
                "after_seq": after,
                "before_seq": before,
                "lost": max(0, before - after - 1),
                "gap_ms": gap_ns / 1e6,
                "start_ns": start_ns,
            }
            for gap_ns, start_ns, after, before in top
        ]
    if latencies:
        latencies.sort()
        result["latency_ms"] = {
            "median": _percentile(latencies, 50),
            "p99": _percentile(latencies, 99),
        }
    return result


def run_send(args: argparse.Namespace) -> int:
    stop = StopFlag()
    stop.install()
    rate = float(args.rate)
    interval_ns = 1e9 / rate
    total = round(rate * args.duration) if args.duration is not None else None
    stream_id = args.stream_id if args.stream_id is not None else (os.getpid() & 0xFFFFFFFF)
    size = max(HEADER_SIZE, args.size)
    buf = bytearray(size)
    pack_into = HEADER.pack_into
    try:
        family = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if args.src_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", args.src_port))
    except OSError as e:
        print(f"probe send: error: {e}", file=sys.stderr)
        return 2
    dest = (args.dst, args.port)
    sendto = sock.sendto
    clock = time.clock_gettime_ns
    mono = time.CLOCK_MONOTONIC
    sleep = time.sleep
    sent = errors = 0
    errors_by_errno: dict[str, int] = {}
    max_late = 0
    start = clock(mono) + 1_000_000
    i = 0
    while not stop.flag and (total is None or i < total):
        due = start + int(i * interval_ns)
        now = clock(mono)
        ahead = due - now
        if ahead > SPIN_NS:
            sleep((ahead - SPIN_NS) / 1e9)
            if stop.flag:
                break
        while clock(mono) < due:
            pass
        t = clock(mono)
        max_late = max(max_late, t - due)
        pack_into(buf, 0, MAGIC, stream_id, i, t, rate)
        try:
            sendto(buf, dest)
            sent += 1
        except OSError as e:
            errors += 1
            name = errno.errorcode.get(e.errno, str(e.errno))
            errors_by_errno[name] = errors_by_errno.get(name, 0) + 1
        i += 1
    elapsed = (clock(mono) - start) / 1e9
    sock.close()
    stats = {
        "sent": sent,
        "errors": errors,
        "errors_by_errno": errors_by_errno,
        "attempted": i,
        "rate": rate,
        "duration": args.duration,
        "stream_id": stream_id,
        "dst": args.dst,
        "port": args.port,
        "size": size,
        "elapsed_s": elapsed,
        "achieved_rate": (i / elapsed) if elapsed > 0 else None,
        "max_late_ms": max_late / 1e6,
        "interrupted": stop.flag,
    }
    if args.stats:
        write_json_atomic(args.stats, stats)
    return 0


def run_recv(args: argparse.Namespace) -> int:
    stop = StopFlag()
    stop.install()
    try:
        sock = udp_receiver(args.bind, args.port, 0.1)
    except OSError as e:
        print(f"probe recv: error: cannot bind port {args.port}: {e}", file=sys.stderr)
        return 2
    try:
        write_json_atomic(
            args.out, {"ready": True, "done": False, "port": args.port, "pid": os.getpid()}
        )
    except OSError as e:
        print(f"probe recv: error: cannot write {args.out}: {e}", file=sys.stderr)
        return 2

    seqs = array("Q")
    recvs = array("Q")
    sends = array("Q")
    stream_id = None
    rate = None
    foreign = malformed = 0
    buf = bytearray(65536)
    recv_into = sock.recv_into
    unpack_from = HEADER.unpack_from
    clock = time.clock_gettime_ns
    mono = time.CLOCK_MONOTONIC
    end = clock(mono) + int(args.duration * 1e9) if args.duration is not None else None
    while not stop.flag:
        try:
            n = recv_into(buf)
        except TimeoutError:
            n = -1
        except InterruptedError:
            n = -1
        t = clock(mono)
        if n >= HEADER_SIZE:
            magic, sid, seq, sent_ns, prate = unpack_from(buf, 0)
            if magic != MAGIC:
                malformed += 1
            elif stream_id is None or sid == stream_id:
                stream_id = sid
                rate = prate
                seqs.append(seq)
                recvs.append(t)
                sends.append(sent_ns)
            else:
                foreign += 1
        elif n >= 0:
            malformed += 1
        if end is not None and t >= end:
            break
    sock.close()
    result = analyse(zip(seqs, recvs, sends), rate)
    result.update(
        {
            "ready": True,
            "done": True,
            "port": args.port,
            "pid": os.getpid(),
            "stream_id": stream_id,
            "foreign": foreign,
            "malformed": malformed,
        }
    )
    if recvs:
        result["first_recv_ns"] = recvs[0]
        result["last_recv_ns"] = recvs[-1]
    write_json_atomic(args.out, result)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m testbed.programs.probe",
        description="Sequence-numbered UDP probe to measure loss and outages.",
    )
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send", help="send a paced, numbered UDP stream")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--rate", type=float, required=True, help="packets per second")
    s.add_argument("--duration", type=float, default=None, help="seconds (default: until signal)")
    s.add_argument("--src-port", type=int, default=0)
    s.add_argument("--size", type=int, default=64, help=f"UDP payload bytes (min {HEADER_SIZE})")
    s.add_argument("--stream-id", type=int, default=None, help="default: the sender's PID")
    s.add_argument("--stats", default=None, help="JSON stats file written at exit")
    r = sub.add_parser("recv", help="receive a stream and write loss/outage analysis")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--out", required=True, help="JSON result file")
    r.add_argument("--duration", type=float, default=None, help="seconds (default: until signal)")
    r.add_argument("--bind", default="", help="local address (default: all)")
    args = p.parse_args(argv)
    if args.mode == "send":
        if args.rate <= 0:
            s.error("--rate must be > 0")
        if args.duration is not None and args.duration < 0:
            s.error("--duration must be >= 0")
        if args.size > 65507:
            s.error("--size too large")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "send":
        return run_send(args)
    return run_recv(args)


if __name__ == "__main__":
    sys.exit(main())
