"""Onboarding foreign descriptors (NFVO with a fake NFVI driver: pure logic; one chain on
the simulated NFVI; the emulated run is tests/integration/test_descriptor_interop.py), the
VIM's anti-affinity constraint, and the ``testbed descriptor`` commands."""
from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from test_nfvo import FakeDriver  # tests/unit is on sys.path (rootdir-relative)

from mano.descriptors import load_catalogue, read_descriptors
from mano.descriptors.readers.common import vnfd_id_for
from mano.errors import DescriptorError, PlacementError
from mano.nfvi import ComputeNodeInfo, Flavour
from mano.nfvo import NFVO
from mano.vim import VIM, BestFit, PlacementRequest
from testbed.cli import main
from testbed.nfvi.simulated.experiment import SimulatedNfvi
from testbed.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "descriptors"
CSAR = DATA / "tacker-sol001" / "sample_vnf_package_csar"
SAMPLE = vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177")
CIRROS = vnfd_id_for("cirros_vnffg-vnf")
FW = vnfd_id_for("7f1c9a2e-scal-4e0b-9d43-fw0000000001")


@pytest.fixture
def nfvo(tmp_path):
    n = NFVO(FakeDriver(), tmp_path / "db.sqlite")
    yield n
    n.close()


# ------------------------------------------------------------------ the VIM constraint
def test_vim_never_puts_two_instances_of_an_anti_affine_vnf_on_one_node():
    """With best-fit (which stacks instances on one node), anti-affine requests land on
    three different nodes and a fourth is refused naming the constraint; requests without
    the constraint stack on one node."""
    nodes = [ComputeNodeInfo(f"n{i}", f"e{i}", 4.0, 4096, 100) for i in (1, 2, 3)]
    vim = VIM(nodes, BestFit())
    f = Flavour(1, 256, 1)
    placed = [vim.place(PlacementRequest("fw", f"fw_{i}", f, anti_affinity=True))
              for i in (1, 2, 3)]
    assert sorted(placed) == ["n1", "n2", "n3"]
    with pytest.raises(PlacementError, match=r"anti-affinity of VNF fw: no compute node with "
                                             r"room for fw_4 is free of its instances "
                                             r"\(hosting one already: n1, n2, n3\)"):
        vim.place(PlacementRequest("fw", "fw_4", f, anti_affinity=True))
    stacked = {vim.place(PlacementRequest("lb", f"lb_{i}", f)) for i in (1, 2, 3)}
    assert len(stacked) == 1


# ------------------------------------------------------------------ the NFVO
def test_nfvo_onboards_a_sol001_package_and_a_sol006_nsd_and_instantiates_the_chain(nfvo):
    """The Tacker CSAR, the OSM-style VNFD and the SOL006 NSD are onboarded unmodified; the
    graph's ends are bound by the classifier's addresses (h1, h16) and instantiation steers
    through both VNFs in order."""
    a = nfvo.onboard(CSAR)
    b = nfvo.onboard(DATA / "sol006" / "cirros_vnffg_vnfd.yaml")
    c = nfvo.onboard(DATA / "sol006" / "fw_vnffg_nsd.yaml")
    assert (a["vnfds"], b["vnfds"], c["nsds"]) == ([SAMPLE], [CIRROS], ["fw_vnffg-ns"])
    assert a["format"] == "sol001-csar" and any("forwarder" in w for w in a["warnings"])
    assert nfvo.onboarding_warnings[SAMPLE] == a["warnings"]
    op = nfvo.instantiate("fw_vnffg-ns", "web")
    assert op["state"] == "COMPLETED"
    g = nfvo.driver.graphs["web.forwardingpath1"]
    assert g["hops"] == ["h1", f"{SAMPLE}_1", f"{CIRROS}_1", "h16"]
    assert g["match"] == {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.16",
                          "udp_dst": 5001}


def test_nfvo_onboards_strict_sol006_and_instantiates_the_chain(nfvo, tmp_path, capsys):
    """The shipped firewall, forwarders and chain3, converted to strict SOL006, are
    onboarded from that form; the firewall keeps its rules and instantiation steers h1 ->
    fw -> fwd -> fwd2 -> h16 with the classifier read from the NFP rule."""
    assert main(["descriptor", "convert", str(REPO / "descriptors"), "--to", "sol006",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    for v in ("fw", "fwd", "fwd2"):
        assert nfvo.onboard(tmp_path / "vnfd" / f"{v}.yaml")["format"] == "sol006"
    assert nfvo.onboard(tmp_path / "nsd" / "chain3.yaml")["nsds"] == ["chain3"]
    assert nfvo.vnfd("fw") == read_descriptors(REPO / "descriptors" / "vnfd" / "fw.yaml"
                                                ).vnfds[0]
    assert nfvo.instantiate("chain3", "c3")["state"] == "COMPLETED"
    g = nfvo.driver.graphs["c3.fg1"]
    assert g["hops"] == ["h1", "fw_1", "fwd_1", "fwd2_1", "h16"]
    assert g["match"] == {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.16"}


def test_foreign_chain_instantiates_on_the_simulated_nfvi_and_carries_its_packets(tmp_path):
    """On the simulated NFVI (fat-tree k=4), the Tacker CSAR, the OSM-style VNFD and the
    SOL006 NSD onboarded unmodified instantiate: the graph is steered h1's edge switch ->
    first VNF -> second VNF -> h16's edge switch, and UDP to port 5001 from h1 reaches
    h16, every packet sent received."""
    with SimulatedNfvi(load_topology(REPO / "topologies" / "fat_tree4.yaml"),
                       tmp_path / "run") as nfvi:
        n = NFVO(nfvi.driver, tmp_path / "db.sqlite", clock=nfvi.clock)
        try:
            for p in (CSAR, DATA / "sol006" / "cirros_vnffg_vnfd.yaml",
                      DATA / "sol006" / "fw_vnffg_nsd.yaml"):
                n.onboard(p)
            env, box = nfvi.env, {}

            def proc():
                box["op"] = yield from nfvi.call(env, lambda: n.instantiate("fw_vnffg-ns",
                                                                             "web"))
            env.run(until=env.process(proc()))
            assert box["op"].result()["state"] == "COMPLETED"
            rows = {r["id"] for r in n.store.list_vnf_instances(ns_id="web")}
            assert rows == {f"{SAMPLE}_1", f"{CIRROS}_1"}
            hops = ["h1", f"{SAMPLE}_1", f"{CIRROS}_1", "h16"]
            sw = [nfvi.endpoint_switch(h) for h in hops]
            paths = nfvi.graph_paths("web.forwardingpath1")
            assert [(p[0], p[-1]) for p in paths] == list(pairwise(sw))
            nfvi.start_load("l", "h1", "h16", 5001, 4)
            nfvi.command_load("l", 1000.0)
            env.run(until=env.now + 1.0)
            c = nfvi.stop_load("l")
            assert sum(c.sent.values()) > 500 and c.received == c.sent
        finally:
            n.close()


def test_anti_affine_vnf_scales_out_onto_distinct_compute_nodes(nfvo):
    """The SOL001 VNF with an AntiAffinityRule, scaled out by its delta (2), has its three
    instances on three compute nodes, although latency-aware placement prefers one."""
    nfvo.onboard(CSAR)
    nfvo.onboard(DATA / "sol001" / "scaling_vnf")
    nfvo.onboard(DATA / "sol001" / "chain_nsd.yaml")
    nfvo.instantiate("web-chain", "web")
    nfvo.scale("web", FW, "out")
    rows = nfvo.vnfm.instances("web", FW)
    assert len(rows) == 3
    assert len({r["compute_node"] for r in rows}) == 3


def test_onboarding_refuses_an_nsd_whose_vnfds_are_missing_and_a_vnfd_too_big(nfvo, tmp_path):
    """An NSD naming a VNFD not onboarded is refused naming the field, the id the NSD
    wrote and the onboarded ones; a flavour no compute node can hold is refused naming the
    largest node."""
    nfvo.onboard(CSAR)
    with pytest.raises(DescriptorError, match=rf"fw_vnffg_nsd.yaml: nsd.vnfs\[1\].vnfd: "
                                              rf"unknown VNFD '{CIRROS}' \(the descriptor's "
                                              rf"VNFD 'cirros_vnffg-vnf': descriptors/README"
                                              rf".md, Identifiers\); onboarded: {SAMPLE}"):
        nfvo.onboard(DATA / "sol006" / "fw_vnffg_nsd.yaml")
    doc = yaml.safe_load((DATA / "sol006" / "cirros_vnffg_vnfd.yaml").read_text())
    doc["vnfd"]["virtual-compute-desc"][0]["virtual-cpu"]["num-virtual-cpu"] = 64
    f = tmp_path / "big.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(DescriptorError, match="needs 64.0 vCPU, 256 MB, 1 GB, which fits no "
                                              "compute node"):
        nfvo.onboard_vnfd(f)


# ------------------------------------------------------------------ the commands
def test_descriptor_check_summarises_vnfs_scaling_graphs_and_warnings(capsys):
    """``testbed descriptor check`` prints the flavour, program, scaling, placement, graphs
    and warnings; a refused descriptor is one error line and exit status 2."""
    assert main(["descriptor", "check", str(DATA / "sol001" / "scaling_vnf")]) == 0
    out = capsys.readouterr().out
    assert f"VNFD {FW}: 'Scaling firewall' version 2.0" in out
    assert "flavour: 1 vCPU, 128 MB memory, 1 GB disk" in out and "program: firewall" in out
    assert "scaling: 1 at instantiation, up to 5, step 2" in out
    assert "placement: anti-affinity" in out and "warnings (2):" in out
    assert main(["descriptor", "check", str(DATA / "sol006" / "fw_vnffg_nsd.yaml")]) == 0
    out = capsys.readouterr().out
    assert (f"graph forwardingpath1: auto -> {SAMPLE} -> {CIRROS} -> auto; classifier udp "
            f"10.0.0.1 -> 10.0.0.16:5001") in out
    assert main(["descriptor", "check", str(DATA / "osm-nbi" / "hackfest3charmed_vnfd.yaml")]) \
        == 2
    err = capsys.readouterr().err
    assert err.startswith("testbed: error: hackfest3charmed_vnfd.yaml: vnfd.vdu: 2 VDUs")


@pytest.mark.parametrize("target", ["sol006", "osm"])
def test_convert_to_sol006_reads_back_to_the_same_model(tmp_path, capsys, target):
    """A VNFD and an NSD converted to strict SOL006 or to OSM's variant and read back give
    equal models (strict SOL006 has no NSD description: it is the one field lost, with a
    warning). Every shipped descriptor: tests/unit/test_descriptor_sol006.py."""
    v = read_descriptors(DATA / "sol001" / "scaling_vnf").vnfds[0]
    n = read_descriptors(DATA / "sol006" / "fw_vnffg_nsd.yaml").nsds[0]
    for src in (DATA / "sol001" / "scaling_vnf", DATA / "sol006" / "fw_vnffg_nsd.yaml"):
        assert main(["descriptor", "convert", str(src), "--to", target, "--out",
                     str(tmp_path)]) == 0
    v2 = read_descriptors(tmp_path / "vnfd" / f"{v.id}.yaml").vnfds[0]
    n2 = read_descriptors(tmp_path / "nsd" / f"{n.id}.yaml").nsds[0]
    assert v2 == v
    assert n2 == (n.model_copy(update={"description": ""}) if target == "sol006" else n)
    if target == "sol006":
        assert ("testbed: warning: fw_vnffg_nsd.yaml: nsd.description: 'Two VNFs of two "
                "vendors chained by a VNFFG': an NSD of SOL006 has no description; not "
                "written") in capsys.readouterr().err


def test_convert_to_native_gives_a_catalogue_the_testbed_loads(tmp_path, capsys):
    """Converting foreign VNFDs and an NSD to the native format writes vnfd/ and nsd/
    files that load_catalogue reads and cross-checks; warnings go to standard error."""
    for src in (CSAR, DATA / "sol006" / "cirros_vnffg_vnfd.yaml",
                DATA / "sol006" / "fw_vnffg_nsd.yaml"):
        assert main(["descriptor", "convert", str(src), "--to", "native", "--out",
                     str(tmp_path)]) == 0
    assert "testbed: warning: " in capsys.readouterr().err
    vnfds, nsds = load_catalogue(tmp_path)
    assert set(vnfds) == {SAMPLE, CIRROS} and nsds["fw_vnffg-ns"].vnffg[0].ingress == "auto"
    assert main(["descriptor", "convert", str(DATA / "sol001" / "scaling_vnf"), "--to",
                 "native"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["vnfd"]["placement"] == {"anti_affinity": True}


def test_convert_refuses_what_osms_layout_cannot_carry(capsys):
    """A firewall with rules cannot become OSM's layout (its rules would be lost): refused
    naming the field; strict SOL006 carries the rules (in configurable-properties)."""
    fw = str(REPO / "descriptors" / "vnfd" / "fw.yaml")
    assert main(["descriptor", "convert", fw, "--to", "osm"]) == 2
    assert "fw.yaml: vnfd.vdu[0].image: program 'firewall' with params" in \
        capsys.readouterr().err
    assert main(["descriptor", "convert", fw, "--to", "sol006"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    (prop,) = doc["vnfd"]["vdu"][0]["configurable-properties"]
    assert prop["key"] == "nfv-testbed:params" and '"action": "deny"' in prop["value"]


def test_descriptor_commands_import_no_emulator_and_need_no_root():
    """``testbed descriptor check`` runs as a plain user's process without importing
    mininet or os_ken."""
    code = ("import sys; from testbed.cli import main; "
            f"rc = main(['descriptor', 'check', {str(CSAR)!r}]); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mininet', 'os_ken')]; "
            "assert rc == 0 and not bad, (rc, bad)")
    r = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True,
                       text=True, user=65534 if os.geteuid() == 0 else None)
    assert r.returncode == 0, r.stderr
    assert "VNFD" in r.stdout


def test_check_reads_a_catalogue_folder_and_convert_reports_an_unwritable_folder(capsys,
                                                                              tmp_path):
    """``check descriptors/`` reads every VNFD and NSD of the catalogue; ``convert --out``
    into a path that is a file is one error line, not a traceback."""
    assert main(["descriptor", "check", str(REPO / "descriptors")]) == 0
    out = capsys.readouterr().out
    assert "catalogue: 6 VNFD(s), 3 NSD(s)" in out and "graph fg1: h1 -> fw -> fwd" in out
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["descriptor", "convert", str(CSAR), "--to", "native", "--out",
                 str(blocker)]) == 2
    assert f"--out {blocker}: cannot write" in capsys.readouterr().err
