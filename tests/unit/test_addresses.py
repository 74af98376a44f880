"""Run-time hosts (VNF instances) never get an address an endpoint or another host holds
(pure logic of the emulation's address counters; nothing is started)."""
from __future__ import annotations

from testbed.emulator.net import Attachment, Emulation
from testbed.topology import load_topology

TOPO = """
name: clash
switches: [s1, s2]
links: [{a: s1, b: s2}]
endpoints:
  - {name: h1, switch: s1}
  - {name: h2, switch: s2, ip: 10.1.0.1, mac: "02:00:00:10:00:01"}
  - {name: h3, switch: s2, ip: 10.1.0.2, mac: "02:00:00:10:00:02"}
computes:
  - {name: n1, switch: s1, vcpu: 4, memory_mb: 4096, disk_gb: 10}
"""


def test_vnf_addresses_skip_the_endpoints_and_each_other(tmp_path):
    """Endpoints holding the first addresses of the VNF range (10.1.0.1, 02:00:00:10:00:01)
    push the first VNF past them; a hundred more never repeat one."""
    path = tmp_path / "clash.yaml"
    path.write_text(TOPO)
    emu = Emulation(load_topology(path), run_dir=tmp_path / "run")
    taken_ips = {e.ip for e in emu.topology.endpoints()}
    taken_macs = {e.mac.lower() for e in emu.topology.endpoints()}
    seen_ips, seen_macs = set(), set()
    for i in range(100):
        ip, mac = emu._next_ip(), emu._next_mac()
        assert ip not in taken_ips and mac not in taken_macs
        assert ip not in seen_ips and mac not in seen_macs
        seen_ips.add(ip)
        seen_macs.add(mac)
        emu.attachments[f"v{i}"] = Attachment(f"v{i}", "s1", 10 + i, mac, ip)
    assert "10.1.0.3" in seen_ips and "10.1.0.1" not in seen_ips
