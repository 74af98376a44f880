"""Names on a real emulation: a topology with the longest names ``topology check``
accepts, and an NS healed by recreate and scaled out and in many times, so the switch
holding its instances has more than 9 ports (``<10 chars>-eth10`` would be 16 characters):
every operation completes and packets still follow the chain."""
from __future__ import annotations

from pathlib import Path

import yaml

from testbed import chain
from testbed.emulator import Emulation
from testbed.emulator.names import IFNAMSIZ
from testbed.nfvi.emulated import EmulatedDriver
from testbed.topology import load_topology

SW1, SW2, H1, H2, N1 = "swmaximal1", "swmaximal2", "hmaximal01", "hmaximal02", "nmaximal01"
VNFD = {"vnfd": {
    "id": "maxfwd", "name": "Forwarder with the longest VNFD id", "version": "1.0",
    "vdu": [{"id": "main", "flavour": {"vcpu": 0.2, "memory_mb": 64, "disk_gb": 1},
             "image": {"program": "forwarder", "params": {"cost_us": 0}},
             "connection_points": [{"id": "cp0"}]}],
    "scaling": {"min": 1, "max": 4, "step": 1},
    "healing": {"mode": "recreate", "max_restarts": 3}}}
NSD = {"nsd": {
    "id": "maxnames", "name": "one forwarder", "version": "1.0",
    "vnfs": [{"vnfd": "maxfwd"}], "virtual_links": [{"id": "data", "connectivity": "ip"}],
    "vnffg": [{"id": "fg1", "classifier": {"ip_proto": 17}, "ingress": H1, "egress": H2,
               "path": ["maxfwd"], "protection": False}]}}
TOPOLOGY = {"name": "maxnames",
            "switches": [SW1, SW2], "links": [{"a": SW1, "b": SW2}],
            # nine endpoints on SW1: its VNF instances get ports 11 and up
            "endpoints": [{"name": H1, "switch": SW1}, {"name": H2, "switch": SW2}]
            + [{"name": f"hmaximal{i:02d}", "switch": SW1} for i in range(3, 11)],
            "computes": [{"name": N1, "switch": SW1, "vcpu": 8, "memory_mb": 4096,
                          "disk_gb": 50}]}


def test_longest_names_survive_many_heals_and_scale_outs(tmp_path):
    """Recreating heals and scale-outs/ins complete on a switch whose port numbers pass 9,
    with interface names within 15 characters, and packets still cross the chain."""
    from mano.nfvo import NFVO

    for name, doc in (("topo.yaml", TOPOLOGY), ("vnfd.yaml", VNFD), ("nsd.yaml", NSD)):
        (tmp_path / name).write_text(yaml.safe_dump(doc))
    with Emulation(load_topology(tmp_path / "topo.yaml")) as emu:
        drv = EmulatedDriver(emu)
        nfvo = NFVO(drv, tmp_path / "nfvo.db")
        try:
            nfvo.onboard_nsd(tmp_path / "nsd.yaml", [tmp_path / "vnfd.yaml"])
            assert nfvo.instantiate("maxnames", "ns")["state"] == "COMPLETED"
            for round_ in range(3):
                iid = next(v["id"] for v in nfvo.show_ns("ns")["vnfs"]
                           if v["state"] == "INSTANTIATED")
                assert nfvo.heal("ns", iid, "recreate")["state"] == "COMPLETED", round_
                assert nfvo.scale("ns", "maxfwd", "out")["state"] == "COMPLETED", round_
                assert nfvo.scale("ns", "maxfwd", "in")["state"] == "COMPLETED", round_
            ports = emu.switches[SW1].ports
            assert max(ports) >= 11
            names = [p.iface for sw in emu.switches.values() for p in sw.ports.values()]
            assert all(len(n) <= IFNAMSIZ and Path(f"/sys/class/net/{n}").exists()
                       for n in names)
            live = [v["id"] for v in nfvo.show_ns("ns")["vnfs"] if v["state"] == "INSTANTIATED"]
            assert all(len(emu.host_iface(i)) <= IFNAMSIZ for i in live)
            res = chain.Probe(emu, H1, H2, port=5001, rate=500, duration=0.6,
                              tag="maxnames").start().wait()
            assert res["received"] >= 0.95 * res["sent"]
        finally:
            nfvo.close()
            drv.close()
