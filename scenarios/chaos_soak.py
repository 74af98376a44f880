"""Random faults for the whole run (VNF crashes and hangs, link cuts), drawn from the seed
with per-component MTBF and MTTR; auto-healing on. At the end every NS must be
INSTANTIATED with packets flowing and nothing left over, else the run fails."""
DURATION = 40


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("descriptors/nsd/chain3.yaml", vnfds=["fw", "fwd", "fwd2"])
    s.instantiate("chain3", "web")
    s.load("web", {"type": "diurnal", "mean": 400, "amplitude": 200,
                   "period_s": s.param("period", 20.0)})
    mtbf, mttr = s.param("mtbf", 15.0), s.param("mttr", 3.0)
    s.random_faults("vnf_crash", ["fw", "fwd2"], mtbf_s=mtbf, mttr_s=mttr)
    s.random_faults("vnf_hang", ["fwd"], mtbf_s=2 * mtbf, mttr_s=mttr)
    s.random_faults("link_down", ["auto"], mtbf_s=mtbf, mttr_s=mttr)
    # Faults come every few seconds for the whole run, so a VNF's "run of failures" may never
    # end: the healers must not give up after healing.max_restarts recreates (they would in
    # a real deployment, to stop a crash loop; here every fault is injected and repaired).
    never_give_up = s.param("max_restarts", 1_000_000)
    s.policy("liveness", max_restarts=never_give_up)
    s.policy("datapath", loss_pct=60.0, window_s=1.5, max_restarts=never_give_up)
    s.expect(healthy_at_end=True)
