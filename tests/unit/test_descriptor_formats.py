"""Foreign descriptor formats (mano.descriptors.readers): ETSI SOL001 packages and NSDs,
ETSI SOL006/OSM descriptors and Tacker legacy templates are read into the model with what
they mean here, what cannot be honoured is warned, and what the testbed lacks is refused
naming the field."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from mano.descriptors import read_descriptors, resolve_endpoints
from mano.descriptors.readers.common import vnfd_id_for
from mano.errors import DescriptorError

DATA = Path(__file__).resolve().parents[1] / "data" / "descriptors"
CSAR = DATA / "tacker-sol001" / "sample_vnf_package_csar"
SCALING = DATA / "sol001" / "scaling_vnf"
SOL006 = DATA / "sol006"
LEGACY = DATA / "tacker-legacy"
ENDPOINTS = {f"h{i}": f"10.0.0.{i}" for i in range(1, 17)}


def _refused(path, *parts):
    with pytest.raises(DescriptorError) as err:
        read_descriptors(path)
    for p in parts:
        assert p in str(err.value), str(err.value)
    return str(err.value)


# ------------------------------------------------------------------ ETSI SOL001 VNFD
def test_tacker_sol001_package_gives_flavour_program_and_connection_point():
    """The Tacker sample CSAR (imports resolved inside it, ETSI types known by name) is one
    VNFD: virtual_compute is the flavour, the unknown image runs the default forwarder (a
    warning says so), the VduCp is the connection point."""
    b = read_descriptors(CSAR)
    assert b.format == "sol001-csar" and b.nsds == []
    (v,) = b.vnfds
    assert v.id == vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177") and v.name == "Sample VNF"
    assert (v.flavour.vcpu, v.flavour.memory_mb, v.flavour.disk_gb) == (1, 512, 1)
    assert v.image.program == "forwarder" and v.vdu.connection_points[0].id == "CP1"
    assert (v.scaling.min, v.scaling.max) == (1, 1) and not v.placement.anti_affinity
    assert v.origin == "sol001:b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"
    text = "\n".join(b.warnings)
    assert "sw_image_data.name: software image 'Software of VDU1': the testbed has no " \
           "program for it; the default program 'forwarder' runs instead" in text
    assert "internalVL1: internal virtual link" in text
    assert all(w.startswith("sample_vnf_package_csar/Definitions/") for w in b.warnings)


def test_zipped_package_and_single_flavour_file_read_the_same(tmp_path):
    """The same package zipped, and its flavour file read on its own (its imports resolved
    next to it), give the same VNFD as the directory."""
    z = tmp_path / "pkg.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in CSAR.rglob("*"):
            if p.is_file():
                f.write(p, p.relative_to(CSAR).as_posix())
    want = read_descriptors(CSAR).vnfds[0]
    assert read_descriptors(z).vnfds[0] == want
    single = read_descriptors(CSAR / "Definitions" / "sample_vnfd_df_simple.yaml")
    assert single.format == "sol001" and single.vnfds[0] == want


def test_sol001_policies_give_scaling_bounds_and_anti_affinity():
    """ScalingAspects (max level 2) x VduScalingAspectDeltas (2 per step) from the default
    instantiation level (1 instance) give scaling 1..5 step 2; AntiAffinityRule on the VDU
    gives the placement constraint; an image named testbed-firewall runs the firewall."""
    b = read_descriptors(SCALING)
    (v,) = b.vnfds
    assert (v.scaling.min, v.scaling.max, v.scaling.step) == (1, 5, 2)
    assert v.placement.anti_affinity and v.image.program == "firewall"
    assert (v.flavour.vcpu, v.flavour.memory_mb) == (1, 128)
    assert any("boot_data: has no meaning on this NFVI" in w for w in b.warnings)
    assert not any("software image" in w for w in b.warnings)


def test_package_imports_stay_inside_the_package(tmp_path):
    """An import that leaves the package, or names a file it lacks, is refused naming the
    import."""
    pkg = tmp_path / "pkg"
    shutil.copytree(SCALING, pkg)
    top = pkg / "Definitions" / "scaling_vnfd_top.yaml"
    doc = yaml.safe_load(top.read_text())
    doc["imports"].append("../../secret.yaml")
    top.write_text(yaml.safe_dump(doc))
    _refused(pkg, "scaling_vnfd_top.yaml: imports[4]: import '../../secret.yaml' is outside "
                  "the package")
    doc["imports"][-1] = "missing_types.yaml"
    top.write_text(yaml.safe_dump(doc))
    _refused(pkg, "imports[4]: import 'missing_types.yaml' is not in the package")
    (pkg / "TOSCA-Metadata" / "TOSCA.meta").write_text("TOSCA-Meta-File-Version: 1.0\n")
    _refused(pkg, "TOSCA.meta: missing 'Entry-Definitions'")


def test_sol001_vnfd_with_two_vdus_is_refused_naming_them(tmp_path):
    """A VNF of two VDUs is refused: the testbed runs one VDU per VNF."""
    pkg = tmp_path / "pkg"
    shutil.copytree(CSAR, pkg)
    df = pkg / "Definitions" / "sample_vnfd_df_simple.yaml"
    doc = yaml.safe_load(df.read_text())
    doc["topology_template"]["node_templates"]["VDU2"] = \
        doc["topology_template"]["node_templates"]["VDU1"]
    df.write_text(yaml.safe_dump(doc))
    _refused(pkg, "topology_template.node_templates: 2 VDUs (VDU1, VDU2); the testbed runs "
                  "one VDU per VNF")


# ------------------------------------------------------------------ ETSI SOL001 NSD
def test_sol001_nsd_gives_a_graph_from_nfp_positions_and_its_nfp_rule():
    """NFP -> NfpPosition -> Forwarding -> VNF gives the chain in order, the NfpRule the
    classifier; VNFs are named by their descriptor_id; the ends are bound later."""
    b = read_descriptors(DATA / "sol001" / "chain_nsd.yaml")
    (n,) = b.nsds
    assert n.id == "web-chain" and n.virtual_links[0].id == "data_vl"
    fw, sample = (vnfd_id_for("7f1c9a2e-scal-4e0b-9d43-fw0000000001"),
                  vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"))
    (fg,) = n.vnffg
    assert fg.id == "web_nfp" and fg.path == (fw, sample) and n.vnfs == (fw, sample)
    assert fg.classifier == {"ip_proto": 6, "ipv4_src": "10.0.0.2", "ipv4_dst": "10.0.0.15",
                             "tcp_dst": 80}
    assert (fg.ingress, fg.egress) == ("auto", "auto")
    bound, notes = resolve_endpoints(n, ENDPOINTS)
    assert (bound.vnffg[0].ingress, bound.vnffg[0].egress) == ("h2", "h15") and notes == []


def test_sol001_nfp_rule_the_controller_cannot_match_is_refused(tmp_path):
    """An NfpRule on MAC addresses is refused naming the field (the classifier matches IPv4
    5-tuples only); a port range of several ports too."""
    doc = yaml.safe_load((DATA / "sol001" / "chain_nsd.yaml").read_text())
    rule = doc["topology_template"]["policies"][0]["web_rule"]["properties"]
    rule["ether_source_address"] = "02:00:00:00:00:01"
    f = tmp_path / "nsd.yaml"
    f.write_text(yaml.safe_dump(doc))
    _refused(f, "policies[0].web_rule.properties.ether_source_address: the testbed's "
                "classifier matches IPv4 5-tuple fields only")
    del rule["ether_source_address"]
    rule["destination_port_range"] = [80, 90]
    f.write_text(yaml.safe_dump(doc))
    _refused(f, "destination_port_range: port range [80, 90]")


# ------------------------------------------------------------------ ETSI SOL006 / OSM
def test_sol006_vnfd_gives_flavour_scaling_anti_affinity_and_monitoring():
    """The OSM-style VNFD: virtual-compute-desc (GB of memory) is the flavour, the
    instantiation level and scaling aspect give 1..3 step 1, the anti-affinity group the
    constraint, cpu_utilization the cpu_util monitoring; cloud-init is warned."""
    b = read_descriptors(SOL006 / "cirros_vnffg_vnfd.yaml")
    (v,) = b.vnfds
    assert b.format == "sol006" and v.id == vnfd_id_for("cirros_vnffg-vnf")
    assert (v.flavour.vcpu, v.flavour.memory_mb, v.flavour.disk_gb) == (1, 256, 1)
    assert (v.scaling.min, v.scaling.max, v.scaling.step) == (1, 3, 1)
    assert v.placement.anti_affinity and v.monitoring[0].metric == "cpu_util"
    assert v.vdu.connection_points[0].id == "eth0-ext"
    assert any("vnfd.vdu[0].cloud-init-file: has no meaning" in w for w in b.warnings)


def test_sol006_nsd_gives_the_chain_of_vnf_profiles_and_the_match_attributes():
    """The OSM-style NSD's nfpd: cp-profile-id entries in order give the chain of the VNF
    profiles' VNFDs, match-attributes the classifier (source port 0 is any)."""
    (n,) = read_descriptors(SOL006 / "fw_vnffg_nsd.yaml").nsds
    (fg,) = n.vnffg
    assert fg.path == (vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"),
                       vnfd_id_for("cirros_vnffg-vnf"))
    assert fg.classifier == {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.16",
                             "udp_dst": 5001}


def test_osm_nbi_samples_are_refused_naming_the_field():
    """OSM's hackfest VNFD (two VDUs) and its inconsistent cirros_vnffg NSD are refused,
    each naming the field."""
    _refused(DATA / "osm-nbi" / "hackfest3charmed_vnfd.yaml",
             "hackfest3charmed_vnfd.yaml: vnfd.vdu: 2 VDUs (mgmtVM, dataVM)")
    _refused(DATA / "osm-nbi" / "cirros_vnffg_nsd.yaml",
             "cirros_vnffg_nsd.yaml: nsd.nsd[0].vnfd-id: VNF profile '2' uses a VNFD that "
             "vnfd-id does not list")


def test_sol006_unknown_references_and_kdus_are_refused(tmp_path):
    """A VDU naming an unknown compute descriptor, an NFP position naming an unknown VNF
    profile, and a KDU are refused naming the field and the known values."""
    vnfd = yaml.safe_load((SOL006 / "cirros_vnffg_vnfd.yaml").read_text())
    vnfd["vnfd"]["vdu"][0]["virtual-compute-desc"] = "big"
    f = tmp_path / "v.yaml"
    f.write_text(yaml.safe_dump(vnfd))
    _refused(f, "v.yaml: vnfd.vdu[0].virtual-compute-desc: unknown virtual-compute-desc "
                "'big'; known: cirros_vnffg-VM-compute")
    vnfd["vnfd"]["kdu"] = [{"name": "x", "helm-chart": "y"}]
    f.write_text(yaml.safe_dump(vnfd))
    _refused(f, "vnfd.kdu: KDUs (Kubernetes/Helm) cannot run on this NFVI")
    nsd = yaml.safe_load((SOL006 / "fw_vnffg_nsd.yaml").read_text())
    pos = nsd["nsd"]["nsd"][0]["vnffgd"][0]["nfpd"][0]["position-desc-id"][0]
    pos["cp-profile-id"][1]["constituent-profile-elements"][0][
        "constituent-base-element-id"] = "9"
    f.write_text(yaml.safe_dump(nsd))
    _refused(f, "cp-profile-id[1].constituent-profile-elements[0].constituent-base-element-id"
                ": unknown VNF profile '9'; known: 1, 2")


# ------------------------------------------------------------------ Tacker legacy
def test_tacker_vnffgd_becomes_an_nsd_with_its_acl_classifier():
    """The legacy VNFFGD's forwarding path is the chain of the VNFDs it names and its ACL
    criterion the classifier (host bits cleared, Neutron ports warned)."""
    b = read_descriptors(LEGACY / "vnffgd" / "tosca-vnffgd-sample-VNF1.yaml")
    (n,) = b.nsds
    assert b.format == "tacker" and n.vnfs == (vnfd_id_for("VNFD1"),)
    assert n.vnffg[0].classifier == {"ip_proto": 6, "ipv4_dst": "192.168.1.0/24",
                                     "tcp_dst": 8080}
    text = "\n".join(b.warnings)
    assert "ip_dst_prefix: '192.168.1.2/24' has host bits set; matching 192.168.1.0/24" in text
    assert "network_src_port_id: a Neutron port or network has no meaning here" in text
    bound, notes = resolve_endpoints(n, ENDPOINTS)
    assert (bound.vnffg[0].ingress, bound.vnffg[0].egress) == ("h1", "h16")
    assert bound.vnffg[0].classifier["ipv4_dst"] == "10.0.0.16"
    assert "nsd.vnffg[0].egress: no endpoint given; using h16 (the classifier's ipv4_dst " \
           "192.168.1.0/24 is no endpoint of the topology; it becomes 10.0.0.16)" in notes[1]


def test_tacker_templates_the_testbed_cannot_run_are_refused():
    """A port range of many ports, an input without default and an NSD whose VNFDs have
    two VDUs are each refused naming the field (and the VNFD's file)."""
    _refused(LEGACY / "vnffgd" / "tosca-vnffgd-legacy-sample.yaml",
             "criteria[0].destination_port_range: port range '80-1024'")
    _refused(LEGACY / "vnffgd" / "tosca-vnffgd-param-sample.yaml",
             "input 'dst_port_range' has no default")
    _refused(LEGACY / "nsd" / "sample-tosca-nsd.yaml",
             "sample-tosca-vnfd1.yaml: topology_template.node_templates: 2 VDUs (VDU1, VDU2)")


def test_tacker_vnfd_with_nfv_compute_scaling_and_placement(tmp_path):
    """A legacy VNFD's nfv_compute is the flavour, its Scaling policy the bounds and its
    Placement anti-affinity the constraint; OpenStack flavour names are read too."""
    doc = {"tosca_definitions_version": "tosca_simple_profile_for_nfv_1_0_0",
           "metadata": {"template_name": "fwd"},
           "topology_template": {
               "node_templates": {
                   "VDU1": {"type": "tosca.nodes.nfv.VDU.Tacker",
                            "capabilities": {"nfv_compute": {"properties": {
                                "num_cpus": 1, "mem_size": "256 MB", "disk_size": "2 GB"}}},
                            "properties": {"image": "testbed-forwarder",
                                           "mgmt_driver": "noop"}},
                   "CP1": {"type": "tosca.nodes.nfv.CP.Tacker",
                           "requirements": [{"virtualBinding": {"node": "VDU1"}}]}},
               "policies": [
                   {"SP1": {"type": "tosca.policies.tacker.Scaling", "targets": ["VDU1"],
                            "properties": {"increment": 1, "min_instances": 1,
                                           "max_instances": 3, "default_instances": 1}}},
                   {"PL": {"type": "tosca.policies.tacker.Placement", "targets": ["VDU1"],
                           "properties": {"policy": "anti-affinity"}}}]}}
    f = tmp_path / "fwd.yaml"
    f.write_text(yaml.safe_dump(doc))
    (v,) = read_descriptors(f).vnfds
    assert v.id == "fwd" and (v.flavour.memory_mb, v.flavour.disk_gb) == (256, 2)
    assert (v.scaling.min, v.scaling.max, v.scaling.step) == (1, 3, 1)
    assert v.placement.anti_affinity and v.vdu.connection_points[0].id == "CP1"
    vdu = doc["topology_template"]["node_templates"]["VDU1"]
    del vdu["capabilities"]
    vdu["properties"]["flavor"] = "m1.tiny"
    f.write_text(yaml.safe_dump(doc))
    assert read_descriptors(f).vnfds[0].flavour.memory_mb == 512
    vdu["properties"]["flavor"] = "m1.huge"
    f.write_text(yaml.safe_dump(doc))
    _refused(f, "VDU1.properties.flavor: unknown flavor 'm1.huge'; known (OpenStack's "
                "defaults): m1.tiny")


# ------------------------------------------------------------------ detection, binding
def test_format_is_chosen_by_content_not_by_name(tmp_path):
    """A native VNFD and a SOL006 VNFD under misleading names are read by content; a
    document of no known format is refused listing what is expected."""
    native = DATA.parents[2] / "descriptors" / "vnfd" / "fwd.yaml"
    a = tmp_path / "looks_like_osm.yaml"
    a.write_text(native.read_text())
    assert read_descriptors(a).format == "native"
    b = tmp_path / "fwd.yaml"
    b.write_text((SOL006 / "cirros_vnffg_vnfd.yaml").read_text())
    assert read_descriptors(b).format == "sol006"
    c = tmp_path / "x.yaml"
    c.write_text("foo: 1\n")
    _refused(c, "x.yaml: (top): keys foo name no known format")


def test_unbound_ends_take_the_first_and_last_endpoint_with_a_warning():
    """A graph whose classifier names no endpoint runs from the first to the last endpoint
    in natural order, and the warning says so; one with two endpoints fewer is refused."""
    (n,) = read_descriptors(LEGACY / "vnffgd" / "tosca-vnffgd-no-classifier-sample.yaml").nsds
    bound, notes = resolve_endpoints(n, ENDPOINTS)
    assert (bound.vnffg[0].ingress, bound.vnffg[0].egress) == ("h1", "h16")
    assert bound.vnffg[0].classifier == {} and len(notes) == 2
    with pytest.raises(DescriptorError, match="a graph needs two endpoints; the topology has 1"):
        resolve_endpoints(n, {"h1": "10.0.0.1"})


def test_sol006_3x_positions_name_vnf_profiles_through_nfp_position_elements(tmp_path):
    """SOL006 3.x's nfpd.position-desc -> nfp-position-element-id -> nfp-position-element
    desc.vnf-profile.vnf-profile-id gives the chain as OSM's cp-profile-id does."""
    doc = yaml.safe_load((SOL006 / "fw_vnffg_nsd.yaml").read_text())
    fg = doc["nsd"]["nsd"][0]["vnffgd"][0]
    fg["nfp-position-element"] = [
        {"id": "pe2", "desc": {"vnf-profile": {"vnf-profile-id": "2"}}},
        {"id": "pe1", "desc": {"vnf-profile": {"vnf-profile-id": "1"}}}]
    fg["nfpd"][0] = {"id": "p", "position-desc": [{"id": "a", "nfp-position-element-id": [
        "pe2"]}, {"id": "b", "nfp-position-element-id": ["pe1"]}]}
    f = tmp_path / "nsd3.yaml"
    f.write_text(yaml.safe_dump(doc))
    b = read_descriptors(f)
    (fg3,) = b.nsds[0].vnffg
    assert fg3.path == (vnfd_id_for("cirros_vnffg-vnf"),
                        vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"))
    assert fg3.classifier == {} and any("no match-attributes" in w for w in b.warnings)


def _legacy_vnfd(name: str, node_type: str) -> dict:
    return {"tosca_definitions_version": "tosca_simple_profile_for_nfv_1_0_0",
            "node_types": {node_type: {"capabilities": {"forwarder1": {
                "type": "tosca.capabilities.nfv.Forwarder"}}}},
            "topology_template": {
                "substitution_mappings": {"node_type": node_type},
                "node_templates": {
                    "VDU1": {"type": "tosca.nodes.nfv.VDU.Tacker",
                             "properties": {"image": "cirros", "flavor": "m1.tiny"}},
                    "CP1": {"type": "tosca.nodes.nfv.CP.Tacker",
                            "requirements": [{"virtualBinding": {"node": "VDU1"}}]}}}}


def test_tacker_nsd_reads_its_imported_vnfds_and_forwards_through_its_vnfs(tmp_path):
    """A legacy NSD's imports are read from its folder (named as Tacker names them), its
    VNF node templates are matched by node type, and an FP in it forwards through them."""
    (tmp_path / "vnfa.yaml").write_text(yaml.safe_dump(_legacy_vnfd("vnfa", "x.VNFA")))
    (tmp_path / "vnfb.yaml").write_text(yaml.safe_dump(_legacy_vnfd("vnfb", "x.VNFB")))
    nsd = {"tosca_definitions_version": "tosca_simple_profile_for_nfv_1_0_0",
           "imports": ["vnfa", "vnfb"],
           "topology_template": {"node_templates": {
               "A": {"type": "x.VNFA"}, "B": {"type": "x.VNFB"},
               "FP1": {"type": "tosca.nodes.nfv.FP.TackerV2", "properties": {
                   "policy": {"type": "ACL", "criteria": [{"name": "udp", "classifier": {
                       "ip_proto": 17, "ip_src_prefix": "10.0.0.3/32",
                       "destination_port_range": "5001-5001"}}]},
                   "path": [{"forwarder": "B", "capability": "CP1"},
                            {"forwarder": "A", "capability": "CP1"}]}}}}}
    f = tmp_path / "ns.yaml"
    f.write_text(yaml.safe_dump(nsd))
    b = read_descriptors(f)
    assert [v.id for v in b.vnfds] == ["vnfa", "vnfb"]
    (n,) = b.nsds
    assert n.vnfs == ("vnfa", "vnfb") and n.vnffg[0].path == ("vnfb", "vnfa")
    assert n.vnffg[0].classifier == {"ip_proto": 17, "ipv4_src": "10.0.0.3", "udp_dst": 5001}
    nsd["topology_template"]["node_templates"]["FP1"]["properties"]["path"][0]["forwarder"] = "C"
    f.write_text(yaml.safe_dump(nsd))
    _refused(f, "path[0].forwarder: unknown forwarder 'C'; VNFs of the NSD: A, B")


def test_sol001_nfp_through_position_elements_to_vnfs(tmp_path):
    """SOL001 4.x's NfpPosition -> element NfpPositionElement -> profile_element VNF gives
    the same chain as Forwarding nodes do."""
    doc = yaml.safe_load((DATA / "sol001" / "chain_nsd.yaml").read_text())
    nodes = doc["topology_template"]["node_templates"]
    for pos, vnf in (("pos_fw", "fw"), ("pos_sample", "sample")):
        nodes[f"el_{vnf}"] = {"type": "tosca.nodes.nfv.NfpPositionElement",
                              "requirements": [{"profile_element": vnf}]}
        nodes[pos]["requirements"] = [{"element": f"el_{vnf}"}]
    del nodes["fwd_fw"], nodes["fwd_sample"]
    f = tmp_path / "nsd.yaml"
    f.write_text(yaml.safe_dump(doc))
    (n,) = read_descriptors(f).nsds
    assert n.vnffg[0].path == (vnfd_id_for("7f1c9a2e-scal-4e0b-9d43-fw0000000001"),
                               vnfd_id_for("b1bb0ce7-ebca-4fa7-95ed-4840d70a1177"))
    nodes["pos_fw"]["requirements"] = [{"element": "nowhere"}]
    f.write_text(yaml.safe_dump(doc))
    _refused(f, "web_nfp.requirements[0].nfp_position: 'pos_fw' leads to no VNF of the NS "
                "(known VNFs: fw, sample)")
