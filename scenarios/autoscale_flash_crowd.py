"""A flash crowd hits a CPU-hungry VNF; a threshold policy on CPU scales it out, and back
in when the crowd is gone. Measured: reaction time from the load step to the scale-out."""
DURATION = 30


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/busy_chain.yaml", vnfds=["busy"])
    s.instantiate("busy_chain", "web")
    s.load("web", {"type": "flash_crowd", "base": s.param("base", 200),
                   "peak": s.param("peak", 1000), "at": s.param("at", 5.0),
                   "rise_s": 1.0, "hold_s": s.param("hold", 12.0), "decay_s": 2.0})
    s.policy("threshold", metric="cpu_util", high=s.param("high", 0.22),
             low=s.param("low", 0.1), window_s=2.0, cooldown_s=4.0)
    s.expect(scale_out=True, healthy_at_end=True)
