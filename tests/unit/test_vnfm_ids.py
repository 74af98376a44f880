"""VNF instance ids: the VNFM's remembered last number gives what listing every record and
NFVI instance gives (``VNFM.new_instance_id``), through instantiations, scale-outs that
fail placement, scale-ins, heals by recreation, terminations and deleted NS records (whose
numbers are handed out again), with an orphan instance in the NFVI from the start."""
from __future__ import annotations

import random

import pytest
from test_nfvo import ROOT, FakeDriver  # tests/unit is on sys.path (rootdir-relative)

from mano.errors import MANOError
from mano.nfvi import InstanceInfo
from mano.nfvo import NFVO


def listed_id(vnfm, vnfd_id: str) -> str:
    """The id by definition: one more than the highest ``<vnfd_id>_<n>`` among the store's
    records of the VNFD and the NFVI's instances."""
    used = {r["id"] for r in vnfm.store.list_vnf_instances(vnfd_id=vnfd_id)}
    used |= {i.instance_id for i in vnfm.driver.list_instances()}
    prefix = f"{vnfd_id}_"
    nums = [int(u[len(prefix):]) for u in used
            if u.startswith(prefix) and u[len(prefix):].isdigit()]
    return f"{vnfd_id}_{1 + max(nums, default=0)}"


@pytest.mark.parametrize("seed", range(4))
def test_new_instance_ids_equal_listing_everything(tmp_path, seed):
    """Every id handed out equals the listed definition, whatever came and went before
    (ids of deleted records come back, as the definition says)."""
    rng = random.Random(seed)
    drv = FakeDriver()
    nfvo = NFVO(drv, tmp_path / "db.sqlite")
    nfvo.onboard_nsd(ROOT / "nsd" / "chain3.yaml", sorted((ROOT / "vnfd").glob("*.yaml")))
    drv.instances["fwd_7"] = InstanceInfo("fwd_7", "n1", "e1", "10.1.0.99",
                                          "02:00:00:00:00:99")     # an orphan, no record
    vnfm = nfvo.vnfm
    given: list[str] = []
    issue = vnfm.new_instance_id

    def checked(vnfd_id: str) -> str:
        want = listed_id(vnfm, vnfd_id)
        got = issue(vnfd_id)
        assert got == want
        given.append(got)
        return got
    vnfm.new_instance_id = checked
    live: list[str] = []
    dead: list[str] = []
    try:
        for step in range(40):
            r = rng.random()
            try:
                if r < 0.3 or not live:
                    ns = f"ns{step}"
                    a, b = rng.sample(range(1, 17), 2)
                    nfvo.instantiate("chain3", ns, sap={"h1": f"h{a}", "h16": f"h{b}"})
                    live.append(ns)
                elif r < 0.55:
                    nfvo.scale(rng.choice(live), rng.choice(["fw", "fwd", "fwd2"]), "out")
                elif r < 0.65:
                    nfvo.scale(rng.choice(live), rng.choice(["fw", "fwd", "fwd2"]), "in")
                elif r < 0.75:
                    ns = rng.choice(live)
                    rows = nfvo.store.list_vnf_instances(ns_id=ns, state="INSTANTIATED")
                    nfvo.heal(ns, rng.choice(rows)["id"], "recreate")
                elif r < 0.9:
                    ns = rng.choice(live)
                    nfvo.terminate(ns)
                    live.remove(ns)
                    dead.append(ns)
                elif dead:
                    nfvo.delete_ns(dead.pop(rng.randrange(len(dead))))
            except MANOError:
                pass            # refused or failed (no room on the nodes): ids go on
        for ns in live:         # the newest numbers' records go: they are handed out again
            nfvo.terminate(ns)
            nfvo.delete_ns(ns)
        for k in range(40):     # until the nodes are full: a placement fails after the id
            try:
                nfvo.instantiate("chain3", f"fill{k}", sap={"h1": f"h{k % 16 + 1}",
                                                            "h16": f"h{(k + 5) % 16 + 1}"})
            except MANOError:
                pass
    finally:
        nfvo.close()
    assert len(given) > 20 and len(set(given)) < len(given)   # numbers were handed out again
    assert "fwd_8" in given                                    # the orphan's number was skipped
