"""Tests of the programs that run inside emulated hosts: probe, forwarder and VNF programs.

The pure tests check the VNF programs' per-packet functions on
hand-built frames (checksums verified by an independent recomputation). The real-packet tests build their own network
namespaces (``tbt-<pid>-*``) joined by veth pairs, run the programs in them with
``ip netns exec``, and always delete the namespaces again.
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

from testbed.programs import forwarder, probe, vnf

REPO = Path(__file__).resolve().parents[2]
PREFIX = f"tbt-{os.getpid()}-"


# --------------------------------------------------------------------------- pure tests


def test_flow_key_parses_udp():
    """The forwarder's flow key is "src>dst/proto:dport" read from the IPv4/UDP headers."""
    frame = _ipv4_udp_frame(b"\x02\x00\x00\x00\x00\x99", b"\x02\x00\x00\x00\x00\x01", 5000)
    assert forwarder.flow_key(frame) == "10.0.0.1>10.0.0.2/17:5000"


def test_forwarder_bad_interface_exits_2(tmp_path):
    """A missing interface (or missing root) gives one stderr line, no traceback, and exit code 2."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "testbed.programs.forwarder",
            "--iface",
            "nope-tbt0",
            "--stats",
            str(tmp_path / "s.json"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
        env=_env(),
    )
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert "nope-tbt0" in p.stderr or "root" in p.stderr


# --------------------------------------------------------------------------- helpers


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _ipv4_udp_frame(
    dst_mac: bytes, src_mac: bytes, dport: int, payload: bytes = b"x" * 18
) -> bytes:
    import struct

    udp_len = 8 + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + udp_len,
        1,
        0,
        64,
        17,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    udp = struct.pack("!HHHH", 40000, dport, udp_len, 0)
    return dst_mac + src_mac + b"\x08\x00" + ip + udp + payload


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def _our_namespaces() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def _can_use_netns() -> str | None:
    """Return a reason to skip real-packet tests, or None if they can run."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    return None


class Lab:
    """Network namespaces and processes of one test, torn down by the fixture."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def ns(self, suffix: str) -> str:
        name = PREFIX + suffix
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """Create a veth pair directly inside the namespaces (no names in the root namespace)."""
        _ip("-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
            # Offloads off, as everywhere in the testbed (DESIGN.md); best effort.
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
            _ip("-n", ns, "link", "set", ifname, "up")

    def run(self, ns: str, *args: str, **kw) -> subprocess.Popen:
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, *args],
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
    reason = _can_use_netns()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
        left = _our_namespaces()
        assert left == [], f"namespaces left behind: {left}"


def _wait_file(path: Path, proc: subprocess.Popen, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode}: {proc.stderr.read()}")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise AssertionError(f"{path} did not appear")


def _finish(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Wait for ``proc`` to exit 0 (it was asked to stop, or ends by itself)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, proc.stderr.read()


def _probe_pair(lab: Lab):
    a, b = lab.ns("a"), lab.ns("b")
    lab.veth(a, "va", b, "vb")
    _ip("-n", a, "addr", "add", "10.99.0.1/24", "dev", "va")
    _ip("-n", b, "addr", "add", "10.99.0.2/24", "dev", "vb")
    return a, b


def _run_probe(lab: Lab, tmp_path: Path, rate: int, duration: float, during=None):
    a, b = _probe_pair(lab)
    out, stats = tmp_path / "recv.json", tmp_path / "send.json"
    recv = lab.run(b, "-m", "testbed.programs.probe", "recv", "--port", "5001", "--out", str(out),
                   "--records", str(tmp_path / "records.bin"), "--sender-stats", str(stats))
    assert _wait_file(out, recv)["ready"] is True
    send = lab.run(
        a,
        "-m",
        "testbed.programs.probe",
        "send",
        "--dst",
        "10.99.0.2",
        "--port",
        "5001",
        "--rate",
        str(rate),
        "--duration",
        str(duration),
        "--stats",
        str(stats),
    )
    if during:
        during(a, b)
    _finish(send, timeout=duration + 20)
    time.sleep(0.2)
    recv.send_signal(signal.SIGTERM)
    _finish(recv)
    return probe.read_result(str(out)), probe.read_result(str(stats))


# --------------------------------------------------------------------------- real packets


def test_probe_2000pps_no_loss(lab, tmp_path):
    """Over a veth pair a 2,000 pps probe for 1 s arrives complete: received == sent == 2000."""
    res, st = _run_probe(lab, tmp_path, 2000, 1.0)
    assert st["sent"] == 2000 and st["errors"] == 0
    assert st["achieved_rate"] == pytest.approx(2000, rel=0.02)
    assert res["done"] is True
    assert res["received"] == st["sent"]
    assert res["lost"] == 0 and res["duplicates"] == 0
    assert res["first_seq"] == 0 and res["last_seq"] == 1999
    assert res["rate"] == 2000 and res["schedule_from"] == "sender"
    # a busy 2-core host delays some packets by a millisecond or so: gaps without loss
    assert res["recovered"] is True and all(g["lost"] == 0 for g in res["gaps"]), res["gaps"]
    assert res["latency_ms"]["median"] is not None and res["latency_ms"]["median"] < 5


def test_probe_link_down_100ms_gives_outage(lab, tmp_path):
    """Taking the sender's link down for 100 ms mid-stream shows one outage of 80-300 ms."""

    def flap(a, b):
        time.sleep(0.8)
        _ip("-n", a, "link", "set", "dev", "va", "down")
        time.sleep(0.1)
        _ip("-n", a, "link", "set", "dev", "va", "up")

    res, st = _run_probe(lab, tmp_path, 2000, 2.0, during=flap)
    assert 80 <= res["outage_ms"] <= 300, res["gaps"]
    worst = max(res["gaps"], key=lambda g: g["outage_ms"])
    assert worst["lost"] > 0 and worst["recovered"] is True
    assert res["lost"] == st["sent"] - res["unique"]
    assert st["sent"] == 4000


_ECHO_CLIENT = r"""
import json, socket, struct, sys, time
iface, fw_mac, n = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((iface, 0))
s.settimeout(0.05)
me = s.getsockname()[4]
foreign = bytes.fromhex("020000000099")
def ipv4(dst, tag, i):
    payload = tag + struct.pack("!I", i) + b"p" * 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), i & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", 40000, 5000, 8 + len(payload), 0)
    return dst + me + b"\x08\x00" + ip + udp + payload
arp = (b"\xff" * 6 + me + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
       + me + bytes([10, 0, 0, 1]) + b"\x00" * 6 + bytes([10, 0, 0, 2]) + b"TARP")
sent = []
for i in range(n):
    f = ipv4(foreign, b"FWD!", i)
    sent.append(f)
    s.send(f)
    s.send(ipv4(fw_mac, b"MINE", i))        # addressed to the VNF itself: not forwarded
    s.send(ipv4(b"\xff" * 6, b"BCST", i))   # broadcast IPv4: not forwarded
    s.send(arp)                             # ARP request: not forwarded
    if i % 50 == 49:
        time.sleep(0.002)
back, other, identical = 0, {}, 0
want = set(sent)
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == 4:  # PACKET_OUTGOING: our own sends
        continue
    if data in want:
        identical += 1
    if b"FWD!" in data:
        back += 1
    for tag in (b"MINE", b"BCST", b"TARP"):
        if tag in data:
            other[tag.decode()] = other.get(tag.decode(), 0) + 1
print(json.dumps({"back": back, "identical": identical, "other": other}))
"""


def test_forwarder_echoes_transit_frames_only(lab, tmp_path):
    """The forwarder sends transit IPv4 frames back unchanged on the same interface, counts them,
    and does not echo ARP, broadcast or frames addressed to itself."""
    fw_ns, t_ns = lab.ns("fw"), lab.ns("t")
    lab.veth(fw_ns, "fw0", t_ns, "tst0")
    stats = tmp_path / "fw.json"
    fw = lab.run(
        fw_ns,
        "-m",
        "testbed.programs.forwarder",
        "--iface",
        "fw0",
        "--stats",
        str(stats),
        "--name",
        "vnf1",
        "--cost-us",
        "5",
    )
    first = _wait_file(stats, fw)
    assert first["packets"] == 0 and first["name"] == "vnf1" and first["iface"] == "fw0"
    n = 200
    client = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            t_ns,
            sys.executable,
            "-c",
            _ECHO_CLIENT,
            "tst0",
            first["mac"],
            str(n),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert client.returncode == 0, client.stderr
    got = json.loads(client.stdout)
    assert got["back"] == n
    assert got["identical"] == n  # unchanged, byte for byte
    assert got["other"] == {}
    fw.send_signal(signal.SIGTERM)
    _finish(fw)
    final = json.loads(stats.read_text())
    assert final["packets"] == n
    assert final["bytes"] == n * (14 + 20 + 8 + 22)
    assert final["flows"] == {"10.0.0.1>10.0.0.2/17:5000": n}
    assert final["ignored"] >= 3 * n  # MINE + BCST + ARP, plus its own outgoing copies
    assert final["updated"] >= final["started"]



# ------------------------------------------------------------------ VNF programs (pure)
import struct
import zlib


def _ref_sum(data: bytes) -> int:
    """Reference Internet checksum, written independently of vnf.checksum."""
    if len(data) & 1:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_bytes(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def _frame(proto: str = "udp", src: str = "10.0.0.1", dst: str = "10.0.0.2",
           sport: int = 40000, dport: int = 5000, payload: bytes = b"hello, vnf!",
           udp_csum: bool = True, frag_offset: int = 0) -> bytes:
    """An Ethernet + IPv4 + UDP/TCP/ICMP frame with every checksum right."""
    num = {"udp": 17, "tcp": 6, "icmp": 1}[proto]
    if proto == "udp":
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    elif proto == "tcp":
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    else:
        l4 = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + payload
    pseudo = _ip_bytes(src) + _ip_bytes(dst) + struct.pack("!BBH", 0, num, len(l4))
    if proto == "udp" and udp_csum:
        c = _ref_sum(pseudo + l4) or 0xFFFF
        l4 = l4[:6] + struct.pack("!H", c) + l4[8:]
    elif proto == "tcp":
        l4 = l4[:16] + struct.pack("!H", _ref_sum(pseudo + l4)) + l4[18:]
    elif proto == "icmp":
        l4 = l4[:2] + struct.pack("!H", _ref_sum(l4)) + l4[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 7, frag_offset, 64, num, 0,
                     _ip_bytes(src), _ip_bytes(dst))
    ip = ip[:10] + struct.pack("!H", _ref_sum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + l4


def _checksums_ok(frame: bytes) -> bool:
    """Recompute every checksum of the frame from scratch: the verification sum is 0."""
    ihl = (frame[14] & 0xF) * 4
    ip = frame[14:14 + ihl]
    if _ref_sum(ip) != 0:
        return False
    total = struct.unpack("!H", ip[2:4])[0]
    l4 = frame[14 + ihl:14 + total]
    proto = ip[9]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, proto, len(l4))
    if proto == 17:
        return l4[6:8] == b"\x00\x00" or _ref_sum(pseudo + l4) == 0
    if proto == 6:
        return _ref_sum(pseudo + l4) == 0
    return _ref_sum(l4) == 0


def _src(frame: bytes) -> str:
    return ".".join(str(b) for b in frame[26:30])


def _dst(frame: bytes) -> str:
    return ".".join(str(b) for b in frame[30:34])


def test_checksum_of_a_known_header():
    """The IPv4 header checksum of a textbook header is 0xb861."""
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert vnf.checksum(hdr) == 0xB861
    frame = b"\x00" * 14 + hdr[:10] + b"\xb8\x61" + hdr[12:]
    assert vnf.ipv4_header_checksum(frame) == 0xB861


@pytest.mark.parametrize("proto", ["udp", "tcp", "icmp"])
def test_hand_built_frames_are_valid(proto):
    """The test's frames pass both the reference check and vnf's from-scratch checksums."""
    f = _frame(proto)
    assert _checksums_ok(f)
    assert vnf.ipv4_header_checksum(f) == struct.unpack("!H", f[24:26])[0]
    if proto != "icmp":
        off = 34 + (6 if proto == "udp" else 16)
        assert vnf.l4_checksum(f) == struct.unpack("!H", f[off:off + 2])[0]


def test_parse_reads_the_five_tuple():
    """parse gives protocol, addresses and ports; no ports for ICMP or later fragments."""
    h = vnf.parse(_frame("tcp", sport=1234, dport=80))
    assert (h.proto, h.sport, h.dport, h.l4) == (6, 1234, 80, 34)
    assert vnf.parse(_frame("icmp")).dport is None
    h = vnf.parse(_frame("udp", frag_offset=100))
    assert h.dport is None and h.l4 is None
    assert vnf.parse(_frame()[:30]) is None


FW = {"default": "deny", "rules": [
    {"action": "deny", "proto": "udp", "dport": 5001},
    {"action": "allow", "proto": "udp", "src": "10.0.0.0/24"},
    {"action": "allow", "proto": "icmp"},
    {"action": "allow", "proto": "tcp", "dst": "10.0.0.2/32", "dport": 80},
]}


def test_firewall_first_match_wins_then_default():
    """Rules are tried in order; the first match decides; no match takes the default."""
    fw = vnf.make_processor("firewall", FW)
    allowed = _frame("udp", dport=5000)
    assert fw.process(allowed) == allowed  # rule 1, unchanged
    assert fw.process(_frame("udp", dport=5001)) is None  # rule 0 before rule 1
    assert fw.process(_frame("udp", src="10.0.1.1")) is None  # default deny
    assert fw.process(_frame("icmp")) is not None
    assert fw.process(_frame("tcp", dport=80)) is not None
    assert fw.process(_frame("tcp", dport=81)) is None
    assert fw.process(_frame("tcp", dst="10.0.0.3", dport=80)) is None
    assert fw.process(_frame()[:30]) is None  # malformed: dropped
    c = fw.counters()
    assert c["rule_hits"] == [1, 1, 1, 1] and c["default_hits"] == 3 and c["malformed"] == 1


def test_firewall_default_allow_and_fragments():
    """With default allow only matching deny rules drop; a later fragment has no port."""
    fw = vnf.make_processor("firewall", {"rules": [{"action": "deny", "proto": "udp",
                                                    "dport": 5000}]})
    assert fw.process(_frame(dport=5000)) is None
    assert fw.process(_frame(dport=5002)) is not None
    assert fw.process(_frame(dport=5000, frag_offset=10)) is not None


def test_nat_rewrites_source_and_fixes_checksums():
    """Source NAT sets the public address; IPv4, UDP and TCP checksums verify afterwards."""
    nat = vnf.make_processor("nat", {"public_ip": "203.0.113.7"})
    for proto in ("udp", "tcp", "icmp"):
        out = nat.process(_frame(proto))
        assert _src(out) == "203.0.113.7" and _dst(out) == "10.0.0.2"
        assert _checksums_ok(out), proto
        assert out[42:] == _frame(proto)[42:] or proto == "tcp"  # payload untouched
        if proto != "icmp":
            off = 34 + (6 if proto == "udp" else 16)
            assert vnf.l4_checksum(out) == struct.unpack("!H", out[off:off + 2])[0]
    nat.process(_frame("udp", sport=40001))
    nat.process(_frame("udp"))  # an existing mapping
    c = nat.counters()
    assert c["rewritten"] == 5 and c["mappings"] == 4 and c["public_ip"] == "203.0.113.7"


def test_nat_keeps_a_zero_udp_checksum_and_odd_payloads():
    """A UDP datagram without a checksum stays without one; odd lengths still verify."""
    nat = vnf.Nat({"public_ip": "198.51.100.1"})
    out = nat.process(_frame("udp", udp_csum=False))
    assert out[40:42] == b"\x00\x00" and _checksums_ok(out)
    for n in range(9):
        assert _checksums_ok(nat.process(_frame("udp", payload=b"z" * n, sport=1000 + n)))
    same = vnf.Nat({"public_ip": "10.0.0.1"})
    f = _frame()
    assert same.process(f) == f


def test_lb_picks_a_stable_backend_per_flow():
    """The LB rewrites the destination to a backend chosen by the 5-tuple hash: the same
    flow always gets the same backend, many flows use every backend, checksums verify."""
    backends = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
    lb = vnf.make_processor("lb", {"backends": backends, "vip": "10.0.0.2"})
    seen: dict[int, str] = {}
    for sport in range(30000, 30060):
        out = lb.process(_frame("tcp", sport=sport, dport=80))
        assert _checksums_ok(out) and _src(out) == "10.0.0.1"
        seen[sport] = _dst(out)
        assert lb.process(_frame("tcp", sport=sport, dport=80)) == out
    assert set(seen.values()) == set(backends)
    key = struct.pack("!IIBHH", 0x0A000001, 0x0A000002, 6, 30000, 80)
    assert seen[30000] == backends[zlib.crc32(key) % 3]
    other = _frame("udp", dst="10.0.0.9")
    assert lb.process(other) == other  # not for the VIP: passes unchanged
    c = lb.counters()
    assert sum(c["backends"].values()) == 120 and c["passed"] == 1
    assert c["backends"]["10.1.0.1"] == 2 * sum(1 for v in seen.values() if v == "10.1.0.1")


@pytest.mark.parametrize("program,params,message", [
    ("firewall", {"default": "maybe"}, r"params.default: 'maybe' must be 'allow' or 'deny'"),
    ("firewall", {"rules": [{"proto": "udp"}]}, r"params.rules\[0\]: missing key 'action'"),
    ("firewall", {"rules": [{"action": "deny", "proto": "sctp"}]}, r"rules\[0\].proto: 'sctp'"),
    ("firewall", {"rules": [{"action": "deny", "src": "10.0.0.1/8"}]}, r"rules\[0\].src: .*host bits"),
    ("firewall", {"rules": [{"action": "deny", "dport": 80}]}, "needs proto tcp or udp"),
    ("firewall", {"rules": [{"action": "deny", "proto": "tcp", "dport": 70000}]}, "0..65535"),
    ("firewall", {"rules": [{"action": "deny", "port": 1}]}, r"unknown key 'port'"),
    ("nat", {}, "params: missing key 'public_ip'"),
    ("nat", {"public_ip": "1.2.3"}, "params.public_ip: '1.2.3' is not an IPv4 address"),
    ("lb", {"backends": []}, "params.backends: must be a non-empty list"),
    ("lb", {"backends": ["10.0.0.1", "x"]}, r"params.backends\[1\]: 'x' is not an IPv4"),
    ("lb", {"backends": ["10.0.0.1", "10.0.0.1"]}, "lists an address twice"),
    ("forwarder", {"cost": 1}, "params: unknown key 'cost'; known: none"),
    ("router", {}, "unknown program 'router'; known: forwarder, firewall, nat, lb"),
])
def test_bad_params_name_the_field(program, params, message):
    """Each bad parameter raises ParamsError naming the field and what would be valid."""
    with pytest.raises(vnf.ParamsError, match=message):
        vnf.make_processor(program, params)


def test_bad_params_on_the_command_line_exit_2(tmp_path):
    """Bad --params give one stderr line and exit 2, before any socket is opened."""
    p = subprocess.run(
        [sys.executable, "-m", "testbed.programs.forwarder", "--iface", "nope-tbt0",
         "--stats", str(tmp_path / "s.json"), "--program", "nat", "--params", '{"x": 1}'],
        check=False, capture_output=True, text=True, timeout=20, cwd=REPO, env=_env())
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "forwarder: error: --program nat --params: params: unknown key 'x'; known: public_ip"]
    args = forwarder.parse_args(["--iface", "x", "--stats", "s"])
    assert (args.program, args.params) == ("forwarder", {})


# ------------------------------------------------------------ VNF programs (real veth)
_PROGRAM_CLIENT = r"""
import json, socket, struct, sys, time
iface, n, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3].split(",")]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE (root): our copies count too
except OSError:
    pass
s.bind((iface, 0))
me = s.getsockname()[4]
foreign = bytes.fromhex("020000000099")
back = {}
def frame(dport, i):
    payload = b"PRG!" + struct.pack("!I", i) + b"p" * 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), i & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0)
    return foreign + me + b"\x08\x00" + ip + udp + payload
def drain(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == 4 or b"PRG!" not in data:  # PACKET_OUTGOING: our own sends
            continue
        key = str(struct.unpack("!H", data[36:38])[0])
        back[key] = back.get(key, 0) + 1
for i in range(n):
    for port in ports:
        s.send(frame(port, i))
    if i % 10 == 9:
        drain(0.002)
drain(1.0)
print(json.dumps({"back": back}))
"""


def test_firewall_program_drops_a_denied_port(lab, tmp_path):
    """Run as a real VNF, the firewall sends back packets of allowed ports and drops (and
    counts) those of the denied one."""
    fw_ns, t_ns = lab.ns("fwp"), lab.ns("tp")
    lab.veth(fw_ns, "fw0", t_ns, "tst0")
    stats = tmp_path / "fw.json"
    params = {"rules": [{"action": "deny", "proto": "udp", "dport": 5001}]}
    fw = lab.run(fw_ns, "-m", "testbed.programs.forwarder", "--iface", "fw0", "--stats",
                 str(stats), "--name", "fw1", "--program", "firewall", "--params",
                 json.dumps(params), "--cost-us", "2")
    first = _wait_file(stats, fw)
    assert first["program"] == "firewall" and first["dropped"] == 0
    n = 150
    client = subprocess.run(
        ["ip", "netns", "exec", t_ns, sys.executable, "-c", _PROGRAM_CLIENT, "tst0", str(n),
         "5000,5001,5002"],
        check=False, capture_output=True, text=True, timeout=30)
    assert client.returncode == 0, client.stderr
    assert json.loads(client.stdout)["back"] == {"5000": n, "5002": n}
    fw.send_signal(signal.SIGTERM)
    _finish(fw)
    final = json.loads(stats.read_text())
    assert (final["packets"], final["dropped"]) == (2 * n, n)
    assert final["rule_hits"] == [n] and final["default_hits"] == 2 * n
    assert final["params"] == params and final["cost_us"] == 2
