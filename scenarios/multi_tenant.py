"""Three network services from two NSDs share one fat-tree: two tenants' 3-VNF chains (one
NSD, bound to different hosts) and a CPU-hungry single-VNF service. Each gets its load and
probe, each is hit by a fault of its own, and the policies (healing and scaling) watch all
three. Measured per NS: outages, heals and scaling."""
DURATION = 30


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.onboard("descriptors/nsd/busy_chain.yaml", vnfds=["busy"])
    s.instantiate("chain3", "web")                                   # h1 -> h16
    s.instantiate("chain3", "shop", sap={"h1": "h3", "h16": "h14"})  # same NSD, other hosts
    s.instantiate("busy_chain", "api", sap={"h1": "h5", "h16": "h12"})
    s.probe(rate=100, ns="api")     # the busy VNF pays CPU per packet, the probe's too
    rate = s.param("rate", 150)
    s.load("web", {"type": "constant", "rate": rate})
    s.load("shop", {"type": "diurnal", "mean": rate, "amplitude": rate / 2, "period_s": 20.0})
    s.load("api", {"type": "constant", "rate": rate})
    s.fault(at=s.param("cut_at", 6.0), kind="link_down", target="auto", duration=4, ns="web")
    s.fault(at=s.param("crash_at", 10.0), kind="vnf_crash", target="fw", ns="shop")
    s.fault(at=s.param("node_at", 16.0), kind="compute_down", target="auto", duration=8,
            ns="api")
    s.policy("liveness")
    s.policy("datapath", loss_pct=60.0, window_s=1.5)
    s.policy("threshold")
    s.expect(healthy_at_end=True, min_heals=2, max_outage_ms=3000)
