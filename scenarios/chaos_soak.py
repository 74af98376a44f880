"""Random faults of every kind for the whole run, drawn from the seed with per-component
MTBF and MTTR: VNF crashes and hangs, link cuts, switch and compute-node failures,
controller and NFVO restarts; auto-healing on. At the end every NS must be INSTANTIATED
with packets flowing and nothing left over, else the run fails.

Parameters: ``mtbf`` and ``mttr`` (s, per component and kind), ``kinds`` (a comma-separated
subset of the kinds below, default all), ``max_restarts`` (the healers' limit, default:
never give up)."""
DURATION = 40

KINDS = ("vnf_crash", "vnf_hang", "link_down", "switch_down", "compute_down",
         "controller_restart", "nfvo_restart")


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "diurnal", "mean": 400, "amplitude": 200,
                   "period_s": s.param("period", 20.0)})
    mtbf, mttr = s.param("mtbf", 15.0), s.param("mttr", 3.0)
    kinds = str(s.param("kinds", ",".join(KINDS))).split(",")
    targets = {"vnf_crash": ["fw", "fwd2"], "vnf_hang": ["fwd"], "link_down": ["auto"],
               "switch_down": ["auto"], "compute_down": ["auto"],
               "controller_restart": ["controller"], "nfvo_restart": ["nfvo"]}
    for kind in kinds:
        if kind not in targets:
            raise ValueError(f"chaos_soak: kinds: {kind!r} is not one of {', '.join(KINDS)}")
        s.random_faults(kind, targets[kind], mtbf_s=mtbf, mttr_s=mttr)
    # Faults come every few seconds for the whole run, so a VNF's "run of failures" may never
    # end: the healers must not give up after healing.max_restarts recreates (they would in
    # a real deployment, to stop a crash loop; here every fault is injected and repaired).
    never_give_up = s.param("max_restarts", 1_000_000)
    s.policy("liveness", max_restarts=never_give_up)
    s.policy("datapath", loss_pct=60.0, window_s=1.5, max_restarts=never_give_up)
    s.expect(healthy_at_end=True)
