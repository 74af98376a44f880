"""Load generator whose rate is commanded at run time, and a receiver that measures it.

Sender::

    python -m testbed.programs.trafgen send --dst IP --port P [--flows N]
        [--src-port-base B] [--size BYTES] [--stats FILE] [--interval S]

sends UDP datagrams to IP:P at an aggregate rate (packets/s) read from stdin, one command
a line:

- ``rate X``  -- send X packets/s from now on (X >= 0; 0 sends nothing). The schedule is
  absolute (packet i leaves at t0 + i/X: sleep until close, then spin, so late packets do
  not shift later ones) and restarts at t0 = now whenever the rate changes. If the sender
  falls more than ``MAX_BEHIND_S`` behind (a starved CPU), the schedule restarts instead of
  bursting out the backlog: the achieved rate is then lower, as the receiver will measure.
- ``stats``   -- write one JSON line to stdout: {"sent", "rate", "t", "errors"}
  (t: CLOCK_MONOTONIC seconds; sent: packets sent so far, the "errors" among them failed
  in sendto). Nothing else is ever written to stdout.
- ``stop`` or end of input (or SIGTERM/SIGINT) -- exit 0.

Bad commands are reported on stderr and ignored. The starting rate is 0. Datagrams go
round-robin over N flows: N sockets bound to source ports B..B+N-1 (default 8 flows from
port 20000), so a switch or load balancer can spread them by 5-tuple. Each payload starts
with (magic b"TBG1", seq u64, send time ns u64), padded to --size bytes.

With --stats FILE the sender counts its packets per *send-time interval*, index
``floor(send_ns / interval_ns)`` with interval_ns = int(S * 1e9) (S = --interval, default
0.5 s), and rewrites FILE atomically once per interval (and at exit, "done": true)::

    {"interval": S, "sent": total, "errors": n, "sent_by_interval": {"<index>": n, ...},
     "commanded_by_interval": {"<index>": mean commanded packets/s over the interval},
     "partial_index": index of the unfinished interval (its counts are partial),
     "done": bool, "pid": ...}

Every interval since the sender started is listed (zeros included); the commanded rate is
the time-weighted mean over the interval, so sent/interval < commanded means the sender
fell behind (see testbed.measures.sender_behind).

Receiver::

    python -m testbed.programs.trafgen recv --port P --out FILE [--interval S] [--bind ADDR]

writes ``{"ready": true, "samples": []}`` to --out as soon as it is bound, then counts
datagrams per interval and rewrites --out atomically after each one::

    {"ready": true, "done": false, "interval": S, "port": P, "pid": ...,
     "samples": [[t, packets, bytes, mean_latency_ms], ...], "total": n, "total_bytes": b}

where t is the end of the interval (CLOCK_MONOTONIC seconds, shared by all network
namespaces of a machine), and packets/bytes are those received during it (UDP payload
bytes). It also counts the packets by the sender's interval index read from each payload's
send time, ``"received_by_interval": {"<index>": n, ...}``: with the same --interval as the
sender, these count the same packets as its "sent_by_interval" (loss per interval:
testbed.measures.interval_loss). With the default 1 s interval, ``packets`` is the achieved rate in packets/s. On
SIGTERM/SIGINT it writes the file a last time with "done": true (the unfinished interval is
not a sample; it is reported as "partial": [t, packets, bytes]) and exits 0.

Callers read the file with :func:`read_result` / :func:`wait_ready`, and compute rates with
:func:`rates`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import struct
import sys
import time

from testbed.programs.common import (  # noqa: F401  (read_result: callers' API)
    StopFlag,
    read_result,
    udp_receiver,
    write_json_atomic,
)
from testbed.programs.common import wait_ready as _wait_ready

MAGIC = b"TBG1"
# magic, seq (u64), send time ns (u64)
HEADER = struct.Struct("!4sQQ")
HEADER_SIZE = HEADER.size  # 20
SPIN_NS = 200_000  # sleep (in select on stdin) until this close to the send time, then spin
POLL_NS = 10_000_000  # while sending back to back, look at stdin at least this often
MAX_BEHIND_S = 0.25  # restart the schedule rather than burst out a larger backlog
IDLE_POLL_S = 0.2  # at rate 0, wake this often to notice signals


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def wait_ready(path: str, timeout: float = 5.0) -> dict:
    """Wait until a receiver has written its readiness record to ``path``; return it."""
    return _wait_ready(path, timeout, "trafgen receiver")


def rates(result: dict) -> list[tuple[float, float]]:
    """(t, packets/s) per sample of a receiver result (packets divided by the interval)."""
    interval = float(result.get("interval") or 1.0)
    return [(s[0], s[1] / interval) for s in result.get("samples") or []]


def parse_command(line: str) -> tuple[str, float | None]:
    """Parse one stdin command: ("rate", X), ("stats", None) or ("stop", None).

    Raises ValueError with a message for anything else (unknown word, missing, negative
    or non-finite rate).
    """
    words = line.split()
    if not words:
        raise ValueError("empty command")
    cmd = words[0].lower()
    if cmd == "rate":
        if len(words) != 2:
            raise ValueError(f"usage: rate X (packets/s), got {line.strip()!r}")
        try:
            x = float(words[1])
        except ValueError:
            raise ValueError(f"rate is not a number: {words[1]!r}") from None
        if not (x >= 0.0) or x == float("inf"):
            raise ValueError(f"rate must be a finite number >= 0, got {words[1]!r}")
        return "rate", x
    if cmd in ("stats", "stop") and len(words) == 1:
        return cmd, None
    raise ValueError(f"unknown command {line.strip()!r} (expected: rate X | stats | stop)")


class _Commands:
    """Non-blocking line reader over a file descriptor (stdin)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False
        os.set_blocking(fd, False)

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (0: just poll) for input; True if there is some."""
        if self.eof:
            if timeout:
                time.sleep(timeout)
            return False
        try:
            r, _w, _x = select.select([self.fd], [], [], timeout)
        except InterruptedError:
            return False
        return bool(r)

    def read_lines(self) -> list[str]:
        """Return the complete lines available now (sets ``eof`` at end of input)."""
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return []
        if not data:
            self.eof = True
            rest, self.buf = self.buf, b""
            return [rest.decode(errors="replace")] if rest.strip() else []
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return [line.decode(errors="replace") for line in lines]


def run_send(args: argparse.Namespace) -> int:
    stop = StopFlag()
    stop.install()
    size = max(HEADER_SIZE, args.size)
    buf = bytearray(size)
    pack_into = HEADER.pack_into
    socks: list[socket.socket] = []
    try:
        family = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
        for k in range(args.flows):
            s = socket.socket(family, socket.SOCK_DGRAM)
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", args.src_port_base + k))
            s.connect((args.dst, args.port))
    except OSError as e:
        print(f"trafgen send: error: {e}", file=sys.stderr)
        for s in socks:
            s.close()
        return 2
    sends = [s.send for s in socks]
    nflows = len(sends)
    cmds = _Commands(sys.stdin.fileno())
    clock = time.clock_gettime_ns
    mono = time.CLOCK_MONOTONIC
    out = sys.stdout

    rate = 0.0
    interval_ns = 0.0
    start = 0  # schedule origin (ns) of the current rate
    i = 0  # packets due so far on the current schedule
    seq = errors = 0
    last_poll = clock(mono)
    running = True
    book = _IntervalBook(int(args.interval * 1e9), last_poll)

    def write_stats(done: bool) -> None:
        if not args.stats:
            return
        try:
            write_json_atomic(args.stats, {**book.as_dict(args.interval), "sent": seq,
                                           "errors": errors, "done": done, "pid": os.getpid()})
        except OSError as e:
            print(f"trafgen send: cannot write {args.stats}: {e}", file=sys.stderr, flush=True)

    write_stats(False)

    def handle(lines: list[str]) -> None:
        nonlocal rate, interval_ns, start, i, running
        for line in lines:
            if not line.strip():
                continue
            try:
                cmd, x = parse_command(line)
            except ValueError as e:
                print(f"trafgen send: {e}", file=sys.stderr, flush=True)
                continue
            if cmd == "stop":
                running = False
                return
            if cmd == "stats":
                out.write(
                    json.dumps(
                        {"sent": seq, "rate": rate, "t": clock(mono) / 1e9, "errors": errors}
                    )
                    + "\n"
                )
                out.flush()
            elif cmd == "rate" and x != rate:
                now = clock(mono)
                if book.roll(now):
                    write_stats(False)
                book.command(now, x)
                rate = x
                interval_ns = 1e9 / rate if rate > 0 else 0.0
                start = now
                i = 0

    while running and not stop.flag:
        if cmds.eof:
            break
        if book.roll(clock(mono)):
            write_stats(False)
        if rate <= 0:
            if cmds.wait(IDLE_POLL_S):
                handle(cmds.read_lines())
            continue
        due = start + int(i * interval_ns)
        now = clock(mono)
        ahead = due - now
        if ahead > SPIN_NS:
            if cmds.wait((ahead - SPIN_NS) / 1e9):
                handle(cmds.read_lines())
                last_poll = clock(mono)
                continue  # the rate may have changed: recompute the due time
            last_poll = clock(mono)
            if stop.flag:
                break
        elif now - last_poll > POLL_NS:
            last_poll = now
            if cmds.wait(0):
                handle(cmds.read_lines())
                continue
        if -ahead > MAX_BEHIND_S * 1e9:
            start, i = now, 0  # too far behind: restart the schedule, do not burst
            due = now
        while clock(mono) < due:
            pass
        t = clock(mono)
        if book.roll(t):
            write_stats(False)
        pack_into(buf, 0, MAGIC, seq, t)
        book.count += 1
        try:
            sends[seq % nflows](buf)
        except OSError as e:
            errors += 1
            if errors == 1:
                name = errno.errorcode.get(e.errno, str(e.errno))
                print(f"trafgen send: send failed ({name}); counting errors", file=sys.stderr)
        seq += 1
        i += 1
    for s in socks:
        s.close()
    book.roll(clock(mono))
    book.finish(clock(mono))
    write_stats(True)
    return 0


class _IntervalBook:
    """The sender's per-interval counts: packets by send-time index, mean commanded rate.

    Interval ``idx`` spans [idx*interval_ns, (idx+1)*interval_ns) of CLOCK_MONOTONIC ns.
    """

    def __init__(self, interval_ns: int, now: int) -> None:
        self.interval_ns = interval_ns
        self.cur = now // interval_ns  # the interval being counted
        self.count = 0  # packets sent in it so far
        self.rate = 0.0  # commanded rate since seg_t
        self.seg_t = now  # start of the current constant-rate segment within ``cur``
        self.area = 0.0  # integral of the commanded rate over ``cur`` up to seg_t (pps*ns)
        self.sent: dict[str, int] = {}
        self.commanded: dict[str, float] = {}
        self.partial: int | None = None

    def roll(self, t: int) -> bool:
        """Close every interval that ended at or before ``t``; True if any closed."""
        closed = False
        while (self.cur + 1) * self.interval_ns <= t:
            end = (self.cur + 1) * self.interval_ns
            self.area += self.rate * (end - self.seg_t)
            self.sent[str(self.cur)] = self.count
            self.commanded[str(self.cur)] = round(self.area / self.interval_ns, 3)
            self.cur, self.count, self.area, self.seg_t = self.cur + 1, 0, 0.0, end
            closed = True
        return closed

    def command(self, t: int, rate: float) -> None:
        """The commanded rate changes at ``t`` (after :meth:`roll` to ``t``)."""
        self.area += self.rate * (t - self.seg_t)
        self.rate, self.seg_t = rate, t

    def finish(self, t: int) -> None:
        """At exit: record the unfinished interval as partial (mean over its elapsed part)."""
        elapsed = t - self.cur * self.interval_ns
        area = self.area + self.rate * (t - self.seg_t)
        self.sent[str(self.cur)] = self.count
        self.commanded[str(self.cur)] = round(area / elapsed, 3) if elapsed > 0 else self.rate
        self.partial = self.cur

    def as_dict(self, interval_s: float) -> dict:
        return {"interval": interval_s, "sent_by_interval": self.sent,
                "commanded_by_interval": self.commanded, "partial_index": self.partial}


def run_recv(args: argparse.Namespace) -> int:
    stop = StopFlag()
    stop.install()
    try:
        sock = udp_receiver(args.bind, args.port, min(0.05, args.interval / 4))
    except OSError as e:
        print(f"trafgen recv: error: cannot bind port {args.port}: {e}", file=sys.stderr)
        return 2
    base = {"ready": True, "interval": args.interval, "port": args.port, "pid": os.getpid()}
    try:
        write_json_atomic(
            args.out, {**base, "done": False, "samples": [], "total": 0, "total_bytes": 0}
        )
    except OSError as e:
        print(f"trafgen recv: error: cannot write {args.out}: {e}", file=sys.stderr)
        return 2

    samples: list[list] = []
    by_interval: dict[int, int] = {}  # send-time interval index -> packets received
    total = total_bytes = 0
    packets = nbytes = 0
    lat_sum = 0  # one-way latency (ns) summed over the interval: the send time rides in the
    #              payload and CLOCK_MONOTONIC is shared by every namespace of the machine
    unpack_from = HEADER.unpack_from
    interval_ns = int(args.interval * 1e9)
    clock = time.clock_gettime_ns
    mono = time.CLOCK_MONOTONIC
    next_end = clock(mono) + interval_ns
    buf = bytearray(65536)
    recv_into = sock.recv_into

    def write(done: bool, partial: list | None = None) -> None:
        data = {
            **base,
            "done": done,
            "samples": samples,
            "total": total,
            "total_bytes": total_bytes,
            "received_by_interval": {str(k): v for k, v in sorted(by_interval.items())},
        }
        if partial is not None:
            data["partial"] = partial
        try:
            write_json_atomic(args.out, data)
        except OSError as e:
            print(f"trafgen recv: cannot write {args.out}: {e}", file=sys.stderr)

    while not stop.flag:
        try:
            n = recv_into(buf)
        except (TimeoutError, InterruptedError):
            n = -1
        t = clock(mono)
        if t >= next_end:
            while t >= next_end:
                samples.append([next_end / 1e9, packets, nbytes,
                                round(lat_sum / packets / 1e6, 4) if packets else None])
                packets = nbytes = lat_sum = 0
                next_end += interval_ns
            write(False)
        if n >= 0:
            packets += 1
            nbytes += n
            if n >= HEADER_SIZE:
                magic, _seq, sent_ns = unpack_from(buf)
                if magic == MAGIC:
                    lat_sum += t - sent_ns
                    idx = sent_ns // interval_ns
                    by_interval[idx] = by_interval.get(idx, 0) + 1
            total += 1
            total_bytes += n
    sock.close()
    write(True, [clock(mono) / 1e9, packets, nbytes])
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m testbed.programs.trafgen",
        description="UDP load generator with a rate commanded on stdin, and its receiver.",
    )
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send", help="send UDP at a rate commanded on stdin (rate X|stats|stop)")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--flows", type=int, default=8, help="number of flows (source ports)")
    s.add_argument("--src-port-base", type=int, default=20000, help="first source port")
    s.add_argument("--size", type=int, default=64, help=f"UDP payload bytes (min {HEADER_SIZE})")
    s.add_argument("--stats", default=None,
                   help="JSON file of per-interval counts, rewritten every interval")
    s.add_argument("--interval", type=float, default=0.5,
                   help="seconds per counting interval (the receiver's --interval must match)")
    r = sub.add_parser("recv", help="count received datagrams per interval")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--out", required=True, help="JSON result file, rewritten every interval")
    r.add_argument("--interval", type=float, default=1.0, help="seconds per sample")
    r.add_argument("--bind", default="", help="local address (default: all)")
    args = p.parse_args(argv)
    if args.mode == "send":
        if args.flows < 1:
            s.error("--flows must be >= 1")
        if not (1 <= args.src_port_base and args.src_port_base + args.flows - 1 <= 65535):
            s.error("source ports out of range (1..65535)")
        if args.size > 65507:
            s.error("--size too large")
        if args.interval <= 0:
            s.error("--interval must be > 0")
    elif args.interval <= 0:
        r.error("--interval must be > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "send":
        return run_send(args)
    return run_recv(args)


if __name__ == "__main__":
    sys.exit(main())
