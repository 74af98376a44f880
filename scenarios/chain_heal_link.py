"""A 3-VNF chain under constant load loses a link on its active path; the controller
reroutes. Measured: the data-path outage and packets lost, from the probe."""
DURATION = 20


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    # --set protection=true: fast-failover groups switch over locally, before the controller
    s.instantiate("chain3", "web", protection=s.param("protection", False))
    s.load("web", {"type": "constant", "rate": s.param("rate", 400)})
    s.fault(at=s.param("cut_at", 6.0), kind="link_down", target="auto",
            duration=s.param("down_for", 5.0))
    s.policy("liveness")
    s.expect(max_outage_ms=2000, healthy_at_end=True)
