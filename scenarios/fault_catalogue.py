"""One of every fault kind, spaced out, on a 3-VNF chain with auto-healing: a quick tour of
what the testbed can break and how the MANO stack and the controller recover."""
DURATION = 40


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "constant", "rate": 300})
    gap = s.param("gap", 6.0)
    s.fault(at=4, kind="link_down", target="auto", duration=3)
    s.fault(at=4 + gap, kind="vnf_hang", target="fwd", duration=None)
    s.fault(at=4 + 2 * gap, kind="controller_restart")
    s.fault(at=4 + 3 * gap, kind="vnf_crash", target="fw")
    s.fault(at=4 + 4 * gap, kind="nfvo_restart")
    s.fault(at=4 + 5 * gap, kind="switch_down", target="c1", duration=3)
    s.policy("liveness")
    s.policy("datapath", loss_pct=60.0, window_s=1.5)
    s.expect(healthy_at_end=True, min_heals=2)
