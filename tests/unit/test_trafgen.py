"""Tests of the commanded-rate traffic generator ``testbed.programs.trafgen``.

The pure tests check the stdin command parser. The real-packet tests build their own
network namespaces (``tbg-<pid>-a/b``) joined by a veth pair, run the sender and receiver
in them with ``ip netns exec``, command rates through the sender's stdin, and always
delete the namespaces again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.programs import trafgen

REPO = Path(__file__).resolve().parents[2]
PREFIX = f"tbg-{os.getpid()}-"
PORT = 6001
INTERVAL = 0.25

# --------------------------------------------------------------------------- pure tests


def test_parse_command_valid():
    """``rate X``, ``stats`` and ``stop`` parse, with surrounding blanks and any case."""
    assert trafgen.parse_command("rate 500\n") == ("rate", 500.0)
    assert trafgen.parse_command("  RATE 0.5 ") == ("rate", 0.5)
    assert trafgen.parse_command("rate 0") == ("rate", 0.0)
    assert trafgen.parse_command("stats") == ("stats", None)
    assert trafgen.parse_command("stop\n") == ("stop", None)


@pytest.mark.parametrize(
    "line", ["", "rate", "rate -1", "rate x", "rate nan", "rate inf", "rate 1 2", "go", "stop now"]
)
def test_parse_command_invalid(line):
    """Malformed commands raise ValueError with a message instead of being guessed at."""
    with pytest.raises(ValueError):
        trafgen.parse_command(line)


def test_rates_divides_by_interval():
    """``rates`` turns a receiver's samples into packets per second."""
    res = {"interval": 0.5, "samples": [[1.0, 100, 6400], [1.5, 0, 0]]}
    assert trafgen.rates(res) == [(1.0, 200.0), (1.5, 0.0)]


def test_send_bad_arguments_exit_2():
    """Nonsense arguments (no flows) are refused by the argument parser with exit code 2."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "testbed.programs.trafgen",
            "send",
            "--dst",
            "127.0.0.1",
            "--port",
            "9",
            "--flows",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
        env=_env(),
        check=False,
    )
    assert p.returncode == 2 and "--flows" in p.stderr


# --------------------------------------------------------------------------- helpers


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def _our_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


class Lab:
    """Two namespaces joined by a veth, and the processes of one test; torn down by the fixture."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def pair(self) -> tuple[str, str]:
        a, b = PREFIX + "a", PREFIX + "b"
        for ns in (a, b):
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
        for ns, ifname, addr in ((a, "va", "10.98.0.1/24"), (b, "vb", "10.98.0.2/24")):
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "ethtool",
                    "-K",
                    ifname,
                    "tx",
                    "off",
                    "tso",
                    "off",
                    "gso",
                    "off",
                    "gro",
                    "off",
                    "sg",
                    "off",
                ],
                check=False,
                capture_output=True,
                timeout=20,
            )
            _ip("-n", ns, "addr", "add", addr, "dev", ifname)
            _ip("-n", ns, "link", "set", ifname, "up")
        return a, b

    def run(self, ns: str, *args: str, **kw) -> subprocess.Popen:
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "testbed.programs.trafgen", *args],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kw,
        )
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)


@pytest.fixture
def lab():
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`)")
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
        left = _our_namespaces()
        assert left == [], f"namespaces left behind: {left}"


def _wait_ready(path: Path, proc: subprocess.Popen, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"receiver exited {proc.returncode}: {proc.stderr.read()}")
        try:
            data = json.loads(path.read_text())
            if data.get("ready"):
                return data
        except (OSError, ValueError):
            pass
        time.sleep(0.01)
    raise AssertionError(f"{path} did not appear")


def _command(proc: subprocess.Popen, line: str) -> float:
    """Write one command line to the sender; return the CLOCK_MONOTONIC time it was sent."""
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return time.monotonic()


def _stats(proc: subprocess.Popen) -> dict:
    _command(proc, "stats")
    return json.loads(proc.stdout.readline())


def _within(samples, t0: float, t1: float, margin: float = 0.05) -> list[float]:
    """Rates (pps) of the samples whose whole interval lies in [t0 + margin, t1]."""
    return [n / INTERVAL for t, n, *_ in samples if t - INTERVAL >= t0 + margin and t <= t1]


def _finish(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, proc.stderr.read()


# --------------------------------------------------------------------------- real packets


def test_commanded_rates_are_achieved(lab, tmp_path):
    """500 pps for 1 s then 2000 pps for 1 s arrive at ~500 then ~2000 pps; rate 0 stops traffic."""
    a, b = lab.pair()
    out = tmp_path / "recv.json"
    recv = lab.run(b, "recv", "--port", str(PORT), "--out", str(out), "--interval", str(INTERVAL))
    first = _wait_ready(out, recv)
    assert first["samples"] == []
    sstats = tmp_path / "send.json"
    send = lab.run(
        a, "send", "--dst", "10.98.0.2", "--port", str(PORT), "--flows", "4",
        "--stats", str(sstats), "--interval", str(INTERVAL), stdin=subprocess.PIPE
    )
    time.sleep(0.3)  # started, idle at rate 0
    assert _stats(send)["sent"] == 0
    t1 = _command(send, "rate 500")
    time.sleep(1.0)
    t2 = _command(send, "rate 2000")
    time.sleep(1.0)
    t3 = _command(send, "rate 0")
    st = _stats(send)
    assert set(st) >= {"sent", "rate", "t"} and st["rate"] == 0
    assert st["sent"] == pytest.approx(500 + 2000, rel=0.05)
    assert abs(st["t"] - time.monotonic()) < 1.0  # the same clock as ours
    time.sleep(0.8)
    t4 = time.monotonic()
    _command(send, "stop")
    _finish(send)
    assert send.stdout.read() == ""  # nothing but the stats lines on stdout
    recv.send_signal(signal.SIGTERM)
    _finish(recv)
    res = trafgen.read_result(str(out))
    assert res["ready"] is True and res["done"] is True
    samples = res["samples"]
    slow, fast = _within(samples, t1, t2), _within(samples, t2, t3)
    idle = _within(samples, t3, t4, margin=0.1)
    assert len(slow) >= 2 and len(fast) >= 2 and len(idle) >= 1, samples
    for r in slow:
        assert r == pytest.approx(500, rel=0.10), samples
    for r in fast:
        assert r == pytest.approx(2000, rel=0.10), samples
    assert idle and all(r == 0 for r in idle), samples
    assert res["total"] == st["sent"]  # no loss on a veth
    # the same packets counted by send-time interval on both sides
    counts = json.loads(sstats.read_text())
    assert {k: v for k, v in counts["sent_by_interval"].items() if v} == res[
        "received_by_interval"]
    assert res["total_bytes"] == 64 * res["total"]
    # each interval with packets carries their mean one-way latency (ms), idle ones None
    lat = [s_[3] for s_ in samples if s_[1] > 0]
    assert lat and all(0 < x < 50 for x in lat), samples
    assert all(s_[3] is None for s_ in samples if s_[1] == 0)


def test_flows_use_distinct_source_ports(lab, tmp_path):
    """Packets round-robin over N source ports B..B+N-1 and carry magic, seq and send time."""
    a, b = lab.pair()
    catcher = (
        f"import socket,struct,sys,json\nPORT={PORT}\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',PORT)); s.settimeout(5)\n"
        "print('ready',flush=True)\n"
        "got=[]\n"
        "for _ in range(9):\n"
        "    d,addr=s.recvfrom(2048); m,seq,ns=struct.unpack_from('!4sQQ',d)\n"
        "    got.append([addr[1],m.decode(),seq,ns,len(d)])\n"
        "print(json.dumps(got),flush=True)\n"
    )
    c = subprocess.Popen(
        ["ip", "netns", "exec", b, sys.executable, "-c", catcher],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lab.procs.append(c)
    assert c.stdout.readline().strip() == "ready"
    send = lab.run(
        a,
        "send",
        "--dst",
        "10.98.0.2",
        "--port",
        str(PORT),
        "--flows",
        "3",
        "--src-port-base",
        "31000",
        "--size",
        "100",
        stdin=subprocess.PIPE,
    )
    _command(send, "rate 200")
    got = json.loads(c.stdout.readline())
    _command(send, "stop")
    _finish(send)
    assert [g[0] for g in got] == [31000, 31001, 31002] * 3
    assert [g[2] for g in got] == list(range(9))
    assert all(g[1] == "TBG1" and g[4] == 100 for g in got)
    sends = [g[3] for g in got]
    assert sends == sorted(sends)
    assert (sends[-1] - sends[0]) / 1e9 == pytest.approx(8 / 200, rel=0.2)


def test_sender_exits_on_eof(lab):
    """Closing the sender's stdin (end of input) stops it with exit code 0."""
    a, _b = lab.pair()
    send = lab.run(a, "send", "--dst", "10.98.0.2", "--port", str(PORT), stdin=subprocess.PIPE)
    _command(send, "rate 100")
    _command(send, "bogus")
    time.sleep(0.2)
    send.stdin.close()
    _finish(send)
    assert "unknown command" in send.stderr.read()
