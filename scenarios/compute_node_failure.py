"""A compute node hosting a VNF of the chain fails (all its instances die); the liveness
policy re-creates them elsewhere. Measured: time to detect, time to heal, outage."""
DURATION = 20


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "constant", "rate": 300})
    s.fault(at=s.param("fail_at", 6.0), kind="compute_down", target="auto",
            duration=s.param("down_for", 10.0))
    # compare healing policies on the same timeline: --set healer=datapath (or liveness)
    s.policy(s.param("healer", "liveness"))
    s.expect(min_heals=1, healthy_at_end=True)
