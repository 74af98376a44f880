"""A VNF that sends every transit IPv4 frame back out the interface it arrived on,
unchanged (forwarder) or processed by a firewall, a NAT or a load balancer.

The SDN switch hands a service chain's packets to the VNF's single interface and expects
them back on the same interface; the controller then steers them to the next hop. The
frames are addressed to the final destination, not to this host, so the interface is put
in promiscuous mode and frames are read with an AF_PACKET socket.

Usage (inside a host's namespace, as root)::

    python -m testbed.programs.forwarder --iface IF --stats FILE [--cost-us N] [--name NAME]
        [--program forwarder|firewall|nat|lb] [--params JSON]
    python -m testbed.programs.forwarder --await-args

``--await-args`` (alone) starts the program ahead of its instance: it imports its code, then
reads its arguments as one line of stdin, a JSON list of the words above, and runs as if
given them; end of input before that line exits 0 (the emulator's spare hosts,
``testbed.emulator.spares``, pre-start VNF programs so).

``--program`` (default forwarder) picks the per-packet processing of
:mod:`testbed.programs.vnf`, configured by ``--params`` (a JSON object, default ``{}``;
the parameters of each program are documented there). A frame the program drops (the
firewall's denied packets) is not sent back and counts in "dropped"; a rewritten frame is
sent back with its IPv4 and TCP/UDP checksums fixed.

Forwarded: IPv4 (ethertype 0x0800) unicast frames whose destination MAC is not this
interface's. Ignored: frames the socket sees going out (our own sends), frames to our MAC,
broadcast and multicast (ARP, IPv6 ND, ...), non-IPv4.

``--cost-us N`` burns N microseconds of CPU time per processed packet (forwarded or
dropped), so a cgroup CPU quota saturates the VNF at a predictable rate.

Stats are written atomically (tmp file + os.replace) as JSON: once at start (packets 0,
a readiness signal), every 0.2 s when changed, and on SIGTERM/SIGINT, after which the
program exits 0::

    {"name", "iface", "pid", "mac", "cost_us", "program", "params", "packets", "bytes",
     "dropped", "ignored", "send_errors", "recv_errors",
     "flows": {"10.0.0.1>10.0.0.2/17:5000": n, ...}, "started", "updated",
     ...the program's own counters (vnf.py): "malformed", and "rule_hits"/"default_hits"
     (firewall), "public_ip"/"rewritten"/"mappings" (nat), "backends" (lb)}

``packets``/``bytes`` count frames sent back. ``flows`` (keys of the frames as received)
holds at most MAX_FLOWS keys; packets of further flows count under "other". Set-up errors
(no such interface, not root, bad --program/--params) print one line to stderr and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import struct
import sys
import time

from testbed.programs.common import write_json_atomic
from testbed.programs.vnf import PROGRAMS, ParamsError, Processor, make_processor

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4

STATS_INTERVAL_S = 0.2
MAX_FLOWS = 1024
OTHER_FLOWS_KEY = "other"
_PORT_PROTOS = (6, 17, 132)  # TCP, UDP, SCTP: the 16-bit dport follows the sport


def flow_key(frame: bytes) -> str | None:
    """Return "src>dst/proto:dport" for an Ethernet+IPv4 frame (dport 0 if none), or None."""
    if len(frame) < 34:
        return None
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    src = socket.inet_ntoa(frame[26:30])
    dst = socket.inet_ntoa(frame[30:34])
    dport = 0
    frag_offset = ((frame[20] << 8) | frame[21]) & 0x1FFF
    off = 14 + ihl
    if proto in _PORT_PROTOS and frag_offset == 0 and len(frame) >= off + 4:
        dport = (frame[off + 2] << 8) | frame[off + 3]
    return f"{src}>{dst}/{proto}:{dport}"


class Forwarder:
    """The receive/forward loop and its counters."""

    def __init__(self, iface: str, stats_path: str, cost_us: float = 0.0, name: str | None = None,
                 processor: Processor | None = None, params: dict | None = None):
        self.iface = iface
        self.processor = processor or Processor()
        self.params = dict(params or {})
        self.dropped = 0
        self.stats_path = stats_path
        self.cost_ns = int(cost_us * 1000)
        self.cost_us = cost_us
        self.name = name or iface
        self.packets = 0
        self.bytes = 0
        self.ignored = 0
        self.send_errors = 0
        self.recv_errors = 0
        self.flows: dict[str, int] = {}
        self.started = time.time()
        self.stop = False
        self.sock: socket.socket | None = None
        self.mac = b""

    def open(self) -> None:
        """Open the AF_PACKET socket on the interface and make the interface promiscuous."""
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((self.iface, 0))
            ifindex = socket.if_nametoindex(self.iface)
            # struct packet_mreq { int ifindex; u16 type; u16 alen; u8 address[8]; }
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            # (ifname, proto, pkttype, hatype, hwaddr): the MAC, read in our namespace.
            self.mac = sock.getsockname()[4]
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
            sock.settimeout(STATS_INTERVAL_S)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "iface": self.iface,
            "pid": os.getpid(),
            "mac": ":".join(f"{b:02x}" for b in self.mac),
            "cost_us": self.cost_us,
            **self.processor.counters(),
            "program": self.processor.program,
            "params": self.params,
            "packets": self.packets,
            "bytes": self.bytes,
            "dropped": self.dropped,
            "ignored": self.ignored,
            "send_errors": self.send_errors,
            "recv_errors": self.recv_errors,
            "flows": dict(self.flows),
            "started": self.started,
            "updated": time.time(),
        }

    def write_stats(self) -> None:
        write_json_atomic(self.stats_path, self.snapshot())

    def _count_flow(self, frame: bytes) -> None:
        key = flow_key(frame)
        if key is None:
            return
        flows = self.flows
        if key in flows:
            flows[key] += 1
        elif len(flows) < MAX_FLOWS:
            flows[key] = 1
        else:
            flows[OTHER_FLOWS_KEY] = flows.get(OTHER_FLOWS_KEY, 0) + 1

    def run(self) -> None:
        sock = self.sock
        assert sock is not None
        mac = self.mac
        cost_ns = self.cost_ns
        cpu_ns = time.thread_time_ns
        mono = time.monotonic
        recvfrom = sock.recvfrom
        send = sock.send
        # The plain forwarder skips the processing call: its hot loop stays as it was.
        process = None if type(self.processor) is Processor else self.processor.process
        written = (self.packets, self.dropped, self.ignored, self.send_errors, self.recv_errors)
        next_write = mono() + STATS_INTERVAL_S
        while not self.stop:
            try:
                frame, addr = recvfrom(65600)
            except TimeoutError:
                frame = None
            except InterruptedError:
                frame = None
            except OSError as e:
                # ENETDOWN while the link is down: keep going, it may come back.
                self.recv_errors += 1
                frame = None
                if e.errno in (errno.ENETDOWN, errno.ENXIO, errno.ENODEV):
                    time.sleep(0.05)
            if frame is not None:
                if (
                    addr[2] == PACKET_OUTGOING
                    or len(frame) < 34
                    or frame[0] & 1  # broadcast / multicast
                    or frame[12] != 0x08
                    or frame[13] != 0x00
                    or frame[0:6] == mac
                ):
                    self.ignored += 1
                else:
                    if cost_ns:
                        end = cpu_ns() + cost_ns
                        while cpu_ns() < end:
                            pass
                    self._count_flow(frame)
                    out = frame if process is None else process(frame)
                    if out is None:
                        self.dropped += 1
                    else:
                        try:
                            send(out)
                        except OSError:
                            self.send_errors += 1
                        else:
                            self.packets += 1
                            self.bytes += len(out)
            now = mono()
            if now >= next_write:
                next_write = now + STATS_INTERVAL_S
                state = (self.packets, self.dropped, self.ignored, self.send_errors,
                         self.recv_errors)
                if state != written:
                    written = state
                    self.write_stats()
        self.write_stats()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m testbed.programs.forwarder",
        description="Forward transit IPv4 frames back out the interface they arrived on.",
    )
    p.add_argument("--iface", required=True, help="interface to receive on and send back out")
    p.add_argument("--stats", required=True, help="JSON stats file (written atomically)")
    p.add_argument("--cost-us", type=float, default=0.0, help="CPU microseconds burnt per packet")
    p.add_argument("--name", default=None, help="name reported in the stats (default: iface)")
    p.add_argument("--program", default="forwarder", choices=PROGRAMS,
                   help="per-packet processing (default: forwarder)")
    p.add_argument("--params", default="{}",
                   help="JSON object of the program's parameters (default: {})")
    args = p.parse_args(argv)
    if args.cost_us < 0:
        p.error("--cost-us must be >= 0")
    try:
        args.params = json.loads(args.params)
    except ValueError as e:
        p.error(f"--params is not valid JSON: {e}")
    return args


AWAIT_ARGS = "--await-args"


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv == [AWAIT_ARGS]:
        line = sys.stdin.readline()
        if not line.strip():
            return 0          # not needed after all
        try:
            argv = json.loads(line)
        except ValueError:
            argv = None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            print(f"forwarder: error: {AWAIT_ARGS}: stdin must give a JSON list of strings, "
                  f"not {line.strip()[:200]}", file=sys.stderr)
            return 2
    args = parse_args(argv)
    try:
        processor = make_processor(args.program, args.params)
    except ParamsError as e:
        print(f"forwarder: error: --program {args.program} --params: {e}", file=sys.stderr)
        return 2
    fw = Forwarder(args.iface, args.stats, args.cost_us, args.name, processor, args.params)

    def on_signal(signum, frame):
        fw.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        fw.open()
    except PermissionError as e:
        print(f"forwarder: error: raw sockets need root (CAP_NET_RAW): {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENXIO):
            print(f"forwarder: error: no such interface: {args.iface}", file=sys.stderr)
        else:
            print(f"forwarder: error: cannot open {args.iface}: {e}", file=sys.stderr)
        return 2
    try:
        try:
            fw.write_stats()
        except OSError as e:
            print(f"forwarder: error: cannot write stats file {args.stats}: {e}", file=sys.stderr)
            return 2
        fw.run()
    finally:
        fw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
