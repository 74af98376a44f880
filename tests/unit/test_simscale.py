"""bench/simscale.py's model at a tiny size: stochastic faults, diurnal load and the
event-driven healing and scaling policies act through the real NFVO on the simulated NFVI."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("simscale", ROOT / "bench/simscale.py")
simscale = importlib.util.module_from_spec(_spec)
sys.modules["simscale"] = simscale      # its dataclasses look their module up
_spec.loader.exec_module(simscale)


def test_faults_are_healed_and_load_scales_on_a_small_fat_tree(tmp_path):
    """Fat-tree k=4 (16 servers, 16 endpoints), 20 NSs (more than endpoints: each gets its
    own pair), 6 modelled hours with failures every few hours per component: instances
    crash and are healed, servers and links fail and come back, the diurnal peak scales VNFs
    out and the trough back in, and every NS ends INSTANTIATED."""
    cfg = simscale.Config("tiny", simscale.fat_tree_servers(4), 20, 6.0,
                          mtbf_instance_s=4 * 3600.0, mtbf_node_s=12 * 3600.0,
                          mttr_node_s=600.0, mtbf_link_s=12 * 3600.0, mttr_link_s=120.0,
                          # about 0.4 of a VNF's vCPU at the mean with the shipped
                          # calibration (41 us per packet forwarded): peaks scale out,
                          # troughs scale in
                          mean_pps=(7000.0, 8000.0))
    r = simscale.ScaleRun(cfg, 3, tmp_path)
    try:
        r.setup()
        r.run()
        c = r.counts
        assert len(cfg.topology.computes) == 16 and len(r.services) == 20
        assert c.faults >= 5 and c.heals >= 3 and c.repairs >= 1
        assert c.scale_outs >= 1 and c.scale_ins >= 1
        assert c.load_changes == 20 * 24         # every 15 minutes for 6 hours, per NS
        states = {r.nfvo.store.get_ns_instance(ns)["state"] for ns in r.services}
        assert states == {"INSTANTIATED"}
        assert r.events > 1000
    finally:
        r.close()

