"""Sequence-numbered UDP probe: measures loss, reordering, latency and outages.

Sender::

    python -m testbed.programs.probe send --dst IP --port P --rate PPS --duration S
        [--src-port SP] [--size BYTES] [--stream-id N] [--stats FILE]

issues ``rate * duration`` sequence numbers on an absolute schedule (seq i is due at
start_ns + i/rate: sleep until close, then spin; late packets never shift later ones).
Each datagram carries (magic, stream id, seq, send time ns, rate), the time from
CLOCK_MONOTONIC, which all network namespaces of a machine share. Send errors
(ENETUNREACH, EPERM, ...) are counted and sending goes on (those seqs are lost). Without
--duration it runs until SIGTERM/SIGINT. At exit it writes --stats::

    {"sent": seqs issued (0 .. sent-1), "errors": sends of them that failed,
     "errors_by_errno", "rate", "start_ns": seq 0's due time (CLOCK_MONOTONIC ns),
     "duration", "stream_id", "elapsed_s", "achieved_rate", "max_late_ms", ...}

Receiver::

    python -m testbed.programs.probe recv --port P --out FILE [--records FILE]
        [--sender-stats FILE] [--k K] [--duration S] [--bind ADDR]

writes {"ready": true, ...} to --out once listening, records (seq, recv ns, send ns) per
datagram until --duration elapses or SIGTERM/SIGINT, then writes the raw records to
--records (flat native-order u64 array, see :mod:`testbed.measures`) and overwrites --out
with :func:`testbed.measures.probe_report` plus "ready", "done", "port", "stream_id",
"foreign", "malformed", "schedule_from". The schedule (sent, start_ns, rate) comes from
--sender-stats if that file exists at the end ("schedule_from": "sender"), else it is
inferred from the records ("records": loss after the last packet is then invisible). It
follows the first stream id it sees; datagrams of other streams count as "foreign".

Callers use :func:`read_result` (and :func:`wait_ready`).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import struct
import sys
import time
from array import array

from testbed import measures
from testbed.programs.common import (
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
SPIN_NS = 200_000  # sleep until this close to the send time, then spin


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def wait_ready(path: str, timeout: float = 5.0) -> dict:
    """Wait until a receiver has written its readiness record to ``path``; return it."""
    return _wait_ready(path, timeout, "probe receiver")


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
        "sent": i,
        "errors": errors,
        "errors_by_errno": errors_by_errno,
        "delivered_to_kernel": sent,
        "rate": rate,
        "start_ns": start,
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
    if args.records:
        try:
            measures.write_records(args.records, seqs, recvs, sends)
        except OSError as e:
            print(f"probe recv: error: cannot write {args.records}: {e}", file=sys.stderr)
    result = _report(args, seqs, recvs, sends, rate)
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


def _sender_stats(path: str | None) -> dict | None:
    """The sender's stats if ``path`` holds a complete one, else None."""
    if not path:
        return None
    try:
        stats = read_result(path)
    except (OSError, ValueError):
        return None
    if all(stats.get(key) is not None for key in ("rate", "sent", "start_ns")):
        return stats
    return None


def _report(args: argparse.Namespace, seqs: array, recvs: array, sends: array,
            rate: float | None) -> dict:
    """The receiver's analysis: measures.probe_report with the best schedule it has."""
    flat = array("Q", bytes(24 * len(seqs)))
    flat[0::3], flat[1::3], flat[2::3] = seqs, recvs, sends
    records = measures.Records(flat)
    stats = _sender_stats(args.sender_stats)
    if stats is not None:
        result = measures.probe_report_with_sender(records, stats, k=args.k)
        result["schedule_from"] = "sender"
        return result
    if rate:
        sent, start_ns = measures.infer_schedule(records, rate)
        result = measures.probe_report(records, rate=rate, sent=sent, start_ns=start_ns,
                                       k=args.k)
    else:  # nothing received and no sender stats: nothing is known about the stream
        result = {"sent": None, "received": 0, "unique": 0, "duplicates": 0, "reordered": 0,
                  "unexpected": 0, "lost": None, "loss_pct": None, "first_seq": None,
                  "last_seq": None, "rate": None, "interval_ms": None, "k": args.k,
                  "gaps": [], "outage_ms": None, "max_gap_ms": None, "recovered": None,
                  "latency_ms": {"min": None, "median": None, "p99": None}}
    result["schedule_from"] = "records"
    return result


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
    r.add_argument("--records", default=None,
                   help="raw records file written at exit (native u64: seq, recv_ns, send_ns)")
    r.add_argument("--sender-stats", default=None,
                   help="the sender's --stats file, read at exit for its count and schedule")
    r.add_argument("--k", type=float, default=measures.DEFAULT_K,
                   help="a gap is an outage when longer than K inter-packet intervals")
    args = p.parse_args(argv)
    if args.mode == "recv" and args.k < 1:
        r.error("--k must be >= 1")
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
