"""VNF programs that read and resend raw frames work on both Open vSwitch datapaths: the
userspace one (``netdev``, everywhere) and the kernel one (``system``, where the
``openvswitch`` module exists, e.g. the Vagrant VM). On the kernel datapath a host's frames
would leave with a partial checksum (offloaded) that a raw-socket VNF passes on unfinished;
the emulator switches the hosts' offloads off so every frame carries its real checksums."""
from __future__ import annotations

import time

import pytest
from conftest import leftovers

from testbed import chain
from testbed.emulator import Emulation, features
from testbed.topology.builders import linear

DATAPATHS = [
    pytest.param("user", id="netdev"),
    pytest.param("system", id="system", marks=pytest.mark.skipif(
        not features.ovs_kernel_datapath(),
        reason="the Open vSwitch kernel module (openvswitch) is not available in this "
               "kernel; the kernel datapath is tested where it is (e.g. the Vagrant VM)")),
]


@pytest.mark.parametrize("datapath", DATAPATHS)
def test_nat_chain_delivers_udp_with_valid_checksums(datapath):
    """h1 -> NAT VNF -> h3 on a forced datapath: the NAT reads raw frames, rewrites the
    source address and updates both checksums (RFC 1624); the receiving kernel drops a UDP
    datagram with a bad checksum, so every probe packet arriving proves the checksums right
    (a partial, offloaded one would not be); the hosts' offloads are off."""
    with Emulation(linear(3), datapath=datapath) as emu:
        assert emu.datapath == {"user": "user", "system": "kernel"}[datapath]
        for host in ("h1", "h3"):
            out = emu.hosts[host].cmd(f"ethtool -k {host}-eth0")
            assert "tx-checksumming: off" in out, out
        vnf = chain.start_vnf(emu, "vnat", "s2", program="nat",
                              params={"public_ip": "10.0.0.200"})
        graph = chain.chain_graph("natted", emu.attachments["h1"], emu.attachments["h3"],
                                  ["vnat"], udp_dst=5001)
        graph["rewrites"] = ["vnat"]   # its packets come back with another source address
        emu.ctl.put_graph(graph)
        res = chain.Probe(emu, "h1", "h3", port=5001, rate=1000, duration=1.0).start().wait()
        assert res["received"] >= 990, res
        time.sleep(0.4)  # the forwarder writes its stats every 0.2 s
        stats = vnf.stats()
        assert stats["rewritten"] >= res["received"], stats
        # the kernel's own UDP counters: no datagram was dropped for its checksum
        snmp = emu.hosts["h3"].cmd("cat /proc/net/snmp")
        udp = [ln.split() for ln in snmp.splitlines() if ln.startswith("Udp:")]
        fields = dict(zip(udp[0][1:], udp[1][1:], strict=True))
        assert int(fields["InCsumErrors"]) == 0, fields
    assert leftovers() == []

