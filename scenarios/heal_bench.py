"""One fault kind, repeated, on a 3-VNF chain under constant load, healed automatically:
what ``bench/heal.py`` runs. ``--set kind=vnf_crash`` (default), ``vnf_hang`` or
``compute_down``; ``reps`` faults ``gap`` s apart, the first at ``first`` s. Measured per
fault: detect, decide, execute, and the data-path outage until the service is restored."""
DURATION = 40


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "constant", "rate": s.param("rate", 300)})
    kind, reps, gap = s.param("kind", "vnf_crash"), s.param("reps", 3), s.param("gap", 4.0)
    for i in range(reps):
        at = s.param("first", 4.0) + i * gap
        if kind == "compute_down":
            # the node comes back before the next fault (whose target was drawn at the start)
            s.fault(at=at, kind=kind, target="auto", duration=gap / 2)
        elif kind == "vnf_hang":
            s.fault(at=at, kind=kind, target="fwd", duration=None)
        else:
            s.fault(at=at, kind=kind, target="fwd")
    # each fault is a failure of its own once the VNF was healthy for `reset` s (else the
    # VNFD's max_restarts would make the healers give up after a few repetitions)
    reset = s.param("reset", 1.0)
    s.policy("liveness", healthy_reset_s=reset)
    # a hung VNF is alive: only the data path tells (loss over the window, an idle instance)
    s.policy("datapath", loss_pct=s.param("loss_pct", 50.0), window_s=s.param("window", 1.0),
             healthy_reset_s=reset)
    s.expect(healthy_at_end=True)
