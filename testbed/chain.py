"""Service chains on a live emulation: VNF forwarders, probes, and outage measurement.

What the demo, the integration tests and ``bench/outage.py`` share:

- ``start_vnf``: a VNF instance = a host added at run time to a switch, running the
  forwarder program (``testbed.programs.forwarder``) that counts what it forwards;
- ``Probe``: a sequence-numbered UDP stream from one endpoint to another, whose receiver
  reports gaps (the data-path outage) and loss;
- ``measure_link_cut``: cut a link on a graph's active path while a probe runs.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from testbed import measures
from testbed.errors import TestbedError
from testbed.programs.probe import read_result, wait_ready


def _wait_file(path: Path, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.02)
    raise TestbedError(f"{what} did not start within {timeout:.0f} s (no {path})")


@dataclass
class VNF:
    name: str
    switch: str
    stats_path: Path
    proc: object

    def stats(self) -> dict:
        return json.loads(self.stats_path.read_text())

    @property
    def packets(self) -> int:
        return int(self.stats()["packets"])


def start_vnf(emu, name: str, switch: str, *, cost_us: float = 0.0,
              program: str = "forwarder", params: dict | None = None) -> VNF:
    """Add a VNF host to ``switch`` and start ``program`` (one of
    ``testbed.programs.vnf.PROGRAMS``, configured by ``params``) in it; ready when it
    returns."""
    emu.add_host(name, switch)
    stats = emu.run_dir / f"vnf-{name}.json"
    stats.unlink(missing_ok=True)
    proc = emu.popen(name, [sys.executable, "-m", "testbed.programs.forwarder",
                            "--iface", emu.host_iface(name), "--stats", str(stats),
                            "--cost-us", str(cost_us), "--name", name,
                            "--program", program, "--params", json.dumps(params or {})],
                     what=program)
    _wait_file(stats, 10, f"forwarder of VNF {name}")
    return VNF(name, switch, stats, proc)


class Probe:
    """A UDP probe stream src -> dst:port at ``rate`` packets/s for ``duration`` s.

    Files in ``emu.run_dir``: ``{tag}-recv.json`` (the receiver's report),
    ``{tag}-send.json`` (the sender's stats) and ``{tag}-records.bin`` (the raw records,
    see :mod:`testbed.measures`).
    """

    def __init__(self, emu, src: str, dst: str, *, port: int = 5001, rate: int = 2000,
                 duration: float = 3.0, tag: str = "probe", src_port: int | None = None):
        self.emu, self.src, self.dst = emu, src, dst
        self.port, self.rate, self.duration = port, rate, duration
        self.src_port = src_port or port
        self.out = emu.run_dir / f"{tag}-recv.json"
        self.stats = emu.run_dir / f"{tag}-send.json"
        self.records = emu.run_dir / f"{tag}-records.bin"
        self.recv = self.send = None

    def start(self) -> Probe:
        for p in (self.out, self.stats, self.records):
            p.unlink(missing_ok=True)
        py = [sys.executable, "-m", "testbed.programs.probe"]
        self.recv = self.emu.popen(self.dst, py + [
            "recv", "--port", str(self.port), "--out", str(self.out),
            "--records", str(self.records), "--sender-stats", str(self.stats)],
            what="probe-recv")
        wait_ready(str(self.out), timeout=10)
        dst_ip = self.emu.attachments[self.dst].ip
        self.send = self.emu.popen(self.src, py + [
            "send", "--dst", dst_ip, "--port", str(self.port), "--rate", str(self.rate),
            "--duration", str(self.duration), "--src-port", str(self.src_port),
            "--stats", str(self.stats)], what="probe-send")
        return self

    def wait(self) -> dict:
        """Wait for the sender to finish, stop the receiver, return the stream's report.

        The report is :func:`testbed.measures.probe_report` against the sender's count and
        schedule (keys sent, received, lost, gaps (all of them), outage_ms, max_gap_ms,
        latency_ms {"min", "median", "p99"}, ...), plus the receiver's "foreign",
        "malformed" and the sender's "send_errors". Without the sender's stats (it died),
        "sent" is None and the rest is inferred from the records.
        """
        self.send.wait(self.duration + 30)
        time.sleep(0.2)  # the last packets in flight
        self.emu.stop_process(self.recv)
        self.emu.stop_process(self.send)
        result = read_result(str(self.out))
        try:
            stats = json.loads(self.stats.read_text())
        except (OSError, ValueError):
            stats = None
        if (stats is not None and result.get("schedule_from") != "sender"
                and self.records.exists()):
            # the receiver ended before the sender's stats were there: redo it with them
            result.update(measures.probe_report_with_sender(
                measures.read_records(self.records), stats))
            result["schedule_from"] = "sender"
        result["sent"] = stats.get("sent") if stats else None
        result["send_errors"] = stats.get("errors") if stats else None
        return result


def chain_graph(name: str, src, dst, hops: list[str], *, udp_dst: int,
                protection: bool = False) -> dict:
    """A forwarding graph for UDP to ``dst``:``udp_dst`` through ``hops`` (VNF names)."""
    return {"name": name,
            "match": {"ip_proto": 17, "ipv4_src": src.ip, "ipv4_dst": dst.ip,
                      "udp_dst": udp_dst},
            "hops": [src.name, *hops, dst.name], "protection": protection}


def active_link(paths: list[list[str]]) -> tuple[str, str]:
    """A switch-to-switch link used by a graph: the first of its longest segment path."""
    longest = max(paths, key=len)
    if len(longest) < 2:
        raise TestbedError("the graph's paths use no link between switches; nothing to cut")
    mid = len(longest) // 2
    return longest[mid - 1], longest[mid]


def measure_link_cut(emu, graph: dict, *, rate: int = 2000, before: float = 1.0,
                     after: float = 1.5, tag: str = "cut") -> dict:
    """Run a probe through ``graph``, cut a link on its active path, return the outage."""
    ctl = emu.ctl
    view = ctl.put_graph(graph)
    a, b = active_link(view["paths"])
    src, dst = graph["hops"][0], graph["hops"][-1]
    probe = Probe(emu, src, dst, port=graph["match"]["udp_dst"], rate=rate,
                  duration=before + after, tag=tag).start()
    time.sleep(before)
    t_cut = time.monotonic()
    emu.link_down(a, b)
    result = probe.wait()
    new_paths = ctl.graph(graph["name"])["paths"]
    emu.link_up(a, b)
    return {"link": f"{a}-{b}", "cut_at_s": before, "outage_ms": result.get("outage_ms"),
            "max_gap_ms": result.get("max_gap_ms"), "lost": result.get("lost"),
            "loss_runs": result.get("loss_runs"),
            "received": result.get("received"), "sent": result.get("sent"),
            "paths_before": view["paths"], "paths_after": new_paths,
            "protection": graph.get("protection", False), "t_cut": t_cut}
