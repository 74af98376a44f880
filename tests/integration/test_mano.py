"""The MANO stack on the emulated data center, with real packets: NS instantiation of a
3-VNF chain, scale out/in, heal, terminate, and NFVO reconciliation after a kill."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed import chain
from testbed.emulator import Emulation
from testbed.nfvi.emulated import EmulatedDriver
from testbed.programs import trafgen
from testbed.topology.builders import fat_tree

ROOT = Path(__file__).resolve().parents[2]
VNFD = ROOT / "descriptors" / "vnfd"
NSD = ROOT / "descriptors" / "nsd"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mano.nfvo import NFVO

    with Emulation(fat_tree(4)) as emu:
        drv = EmulatedDriver(emu)
        nfvo = NFVO(drv, tmp_path_factory.mktemp("mano") / "nfvo.db")
        nfvo.onboard_nsd(NSD / "chain3.yaml", sorted(VNFD.glob("*.yaml")))
        nfvo.start_monitoring(interval=0.2)
        yield emu, drv, nfvo
        nfvo.close()
        drv.close()


def _flows(emu, n=8, port=5001, tag="f"):
    probes = [chain.Probe(emu, "h1", "h16", port=port, rate=500, duration=0.4,
                          tag=f"{tag}{i}", src_port=7000 + i) for i in range(n)]
    # one receiver per flow would need one port per flow: run them one after another
    out = []
    for p in probes:
        out.append(p.start().wait()["received"])
    return out


def _packets(drv, iid):
    time.sleep(0.3)
    return drv.instance_metrics(iid).packets


def test_ns_of_three_vnfs_carries_traffic_through_the_chain(env):
    """Instantiating chain3 places three VNFs, installs the graph, and packets from h1 reach
    h16 having passed every VNF (each VNF's counter covers what arrived)."""
    emu, drv, nfvo = env
    op = nfvo.instantiate("chain3", "web")
    assert op["state"] == "COMPLETED"
    ns = nfvo.show_ns("web")
    assert ns["state"] == "INSTANTIATED"
    vnfs = [v for v in ns["vnfs"] if v["state"] == "INSTANTIATED"]
    assert len(vnfs) == 3
    before = {v["id"]: drv.instance_metrics(v["id"]).packets for v in vnfs}
    res = chain.Probe(emu, "h1", "h16", port=5001, rate=1000, duration=1.0,
                      tag="ns").start().wait()
    assert res["received"] >= 990
    for v in vnfs:
        assert _packets(drv, v["id"]) - before[v["id"]] >= res["received"]
    # monitoring: CPU from cgroup accounting and packet rates, per instance, on one clock
    time.sleep(0.5)
    for v in vnfs:
        assert nfvo.metrics.latest("alive", instance=v["id"]) == 1.0
        assert max(nfvo.metrics.window("packets_rate", 0, instance=v["id"])) > 100
        assert max(nfvo.metrics.window("cpu_util", 0, instance=v["id"])) > 0
    m = nfvo.measure_ns("web", duration=0.5)["fg1"]
    assert m["loss_pct"] < 1 and 0 < m["latency_ms"] < 50
    assert nfvo.metrics.latest("loss_pct", ns="web") == m["loss_pct"]
    stats = drv.graph_stats("web.fg1")
    assert [len(s["from"]) if isinstance(s["from"], list) else 1
            for s in stats["segments"]] == [1, 1, 1, 1]
    assert stats["delivered_packets"] >= res["received"]


def test_three_instances_share_many_flows_evenly(env):
    """Scaled out to 3 instances, fwd carries 64 UDP flows of the load generator (consecutive
    source ports) with each instance's share of the packets within 10 % of a third; then
    it is scaled back in to one."""
    emu, drv, nfvo = env
    nfvo.scale("web", "fwd", "out", steps=2)
    inst = [r["id"] for r in nfvo.vnfm.instances("web", "fwd")]
    assert len(inst) == 3
    before = {i: drv.instance_metrics(i).packets for i in inst}
    out = emu.run_dir / "split-recv.json"
    py = [sys.executable, "-m", "testbed.programs.trafgen"]
    rcv = emu.popen("h16", py + ["recv", "--port", "6001", "--out", str(out)], what="recv")
    trafgen.wait_ready(str(out), timeout=10)
    snd = emu.popen("h1", py + ["send", "--dst", emu.attachments["h16"].ip, "--port", "6001",
                                "--flows", "64"], what="send", stdin=subprocess.PIPE)
    snd.stdin.write(b"rate 1280\n")
    snd.stdin.flush()
    time.sleep(2.0)
    snd.stdin.write(b"stop\n")
    snd.stdin.flush()
    snd.wait(10)
    emu.stop_process(rcv)
    share = {i: _packets(drv, i) - before[i] for i in inst}
    total = sum(share.values())
    assert total > 2000, share
    assert all(abs(3 * v / total - 1) <= 0.10 for v in share.values()), share
    nfvo.scale("web", "fwd", "in", steps=2)
    assert len(nfvo.vnfm.instances("web", "fwd")) == 1


def test_scale_out_shares_flows_and_scale_in_drains(env):
    """Scale-out adds an instance that receives a share of the flows; scale-in removes it
    (its host goes) and every flow reaches the remaining instance."""
    emu, drv, nfvo = env
    nfvo.scale("web", "fwd", "out")
    inst = [v["id"] for v in nfvo.show_ns("web")["vnfs"]
            if v["vnfd_id"] == "fwd" and v["state"] == "INSTANTIATED"]
    assert len(inst) == 2
    before = {i: drv.instance_metrics(i).packets for i in inst}
    got = _flows(emu, tag="so")
    share = {i: _packets(drv, i) - before[i] for i in inst}
    assert sum(got) >= 0.98 * 8 * 200
    assert all(v > 0 for v in share.values()), share
    nfvo.scale("web", "fwd", "in")
    left = [v["id"] for v in nfvo.show_ns("web")["vnfs"]
            if v["vnfd_id"] == "fwd" and v["state"] == "INSTANTIATED"]
    gone = set(inst) - set(left)
    assert len(left) == 1 and len(gone) == 1 and not gone & set(emu.hosts)
    before = drv.instance_metrics(left[0]).packets
    got = _flows(emu, tag="si")
    assert sum(got) >= 0.98 * 8 * 200
    assert _packets(drv, left[0]) - before >= sum(got)


def test_heal_brings_traffic_back_on_a_new_instance(env):
    """Killing a VNF's program stops the chain; heal (recreate) puts a new instance in its
    place and traffic flows again."""
    emu, drv, nfvo = env
    victim = next(v["id"] for v in nfvo.show_ns("web")["vnfs"]
                  if v["vnfd_id"] == "fwd2" and v["state"] == "INSTANTIATED")
    drv.kill_instance(victim)
    dead = chain.Probe(emu, "h1", "h16", port=5001, rate=500, duration=0.4,
                       tag="dead").start().wait()
    assert dead["received"] == 0
    nfvo.heal("web", victim, "recreate")
    now = [v["id"] for v in nfvo.show_ns("web")["vnfs"]
           if v["vnfd_id"] == "fwd2" and v["state"] == "INSTANTIATED"]
    assert len(now) == 1 and now[0] != victim
    back = chain.Probe(emu, "h1", "h16", port=5001, rate=500, duration=0.6,
                       tag="back").start().wait()
    assert back["received"] >= 290


def test_terminate_leaves_no_host_flow_group_or_cgroup(env):
    """Terminating the NS removes its hosts, veths, flows, groups and cgroups; the records
    say TERMINATED."""
    emu, drv, nfvo = env
    ids = [v["id"] for v in nfvo.show_ns("web")["vnfs"]]
    nfvo.terminate("web")
    ns = nfvo.show_ns("web")
    assert ns["state"] == "TERMINATED"
    assert all(v["state"] == "TERMINATED" for v in ns["vnfs"])
    assert not set(ids) & set(emu.hosts)
    assert not any(Path(f"/sys/class/net/{i}-eth0").exists() for i in ids)
    assert drv.list_instances() == [] and drv.list_graphs() == []
    assert not (emu.cgroups and set(ids) & set(emu.cgroups.groups))
    for s in emu.switches:
        st = emu.ctl.switch_state(s)
        assert st["groups"] == [] and all(f["cookie"] == 0 for f in st["flows"])
    assert nfvo.vim.active_servers() == 0
