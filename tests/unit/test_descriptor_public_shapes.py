"""Shapes of public descriptors that the testbed misread or refused unclearly (found by
onboarding Tacker, OPNFV SFC and OSM samples that are not in this repository): each is
read as its authors meant, or refused naming the field and what is read instead. The
documents here are written for the tests, in the shape of those samples."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mano.descriptors import check_ns, read_descriptors
from mano.descriptors.readers.common import vnfd_id_for
from mano.errors import DescriptorError

TACKER = "tosca_simple_profile_for_nfv_1_0_0"
CSAR = Path(__file__).resolve().parents[1] / "data" / "descriptors" / "tacker-sol001" / \
    "sample_vnf_package_csar"


def _write(path, doc) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _refused(path, *parts) -> str:
    with pytest.raises(DescriptorError) as err:
        read_descriptors(path)
    for p in parts:
        assert p in str(err.value), str(err.value)
    return str(err.value)


def _vnffgd(criteria: list, forwarders=("fwa", "fwb")) -> dict:
    return {"tosca_definitions_version": TACKER, "topology_template": {
        "inputs": {"ip_dst": {"type": "string", "default": "10.0.0.16/32"}},
        "node_templates": {"Forwarding_path1": {
            "type": "tosca.nodes.nfv.FP.Tacker",
            "properties": {"id": 1, "policy": {"type": "ACL", "criteria": criteria},
                           "path": [{"forwarder": f, "capability": "CP1"}
                                    for f in forwarders]}}}}}


# ------------------------------------------------------------------ Tacker VNFFGD criteria
def test_acl_written_one_key_per_entry_is_one_classifier(tmp_path):
    """Criteria written as unnamed one-key entries (Tacker's first VNFFG samples, OPNFV
    SFC's templates) are one classifier, TCP to port 80 here, with a warning; before,
    each entry was a classifier of its own and the port was refused for lack of a
    protocol."""
    f = _write(tmp_path / "split.yaml", _vnffgd([
        {"network_src_port_id": "640dfd77-c92b-45a3-b8fc-22712de480e1"},
        {"destination_port_range": "80-80"}, {"ip_proto": 6},
        {"ip_dst_prefix": {"get_input": "ip_dst"}}]))
    b = read_descriptors(f)
    (n,) = b.nsds
    assert [g.id for g in n.vnffg] == ["Forwarding_path1"]
    assert n.vnffg[0].classifier == {"ip_proto": 6, "ipv4_dst": "10.0.0.16", "tcp_dst": 80}
    assert any("4 unnamed entries of one key each (network_src_port_id, "
               "destination_port_range, ip_proto, ip_dst_prefix) are read as one classifier"
               in w for w in b.warnings)


def test_acl_entries_of_several_keys_or_a_repeated_key_stay_separate(tmp_path):
    """Unnamed entries that repeat a key, or hold several keys, are one classifier each
    (one graph per criterion), as Tacker reads them."""
    (n,) = read_descriptors(_write(tmp_path / "two.yaml", _vnffgd(
        [{"ip_proto": 6}, {"ip_proto": 17}]))).nsds
    assert [g.classifier for g in n.vnffg] == [{"ip_proto": 6}, {"ip_proto": 17}]
    (n,) = read_descriptors(_write(tmp_path / "multi.yaml", _vnffgd(
        [{"ip_proto": 6, "destination_port_range": "80-80"},
         {"ip_proto": 17, "destination_port_range": "53-53"}]))).nsds
    assert [g.classifier for g in n.vnffg] == [{"ip_proto": 6, "tcp_dst": 80},
                                               {"ip_proto": 17, "udp_dst": 53}]


def test_missing_forwarder_vnfd_is_named_as_the_vnffgd_wrote_it(tmp_path):
    """A VNFFGD whose forwarder names a VNFD that is not onboarded is refused at
    onboarding naming the testbed id and the name the VNFFGD wrote."""
    (n,) = read_descriptors(_write(tmp_path / "g.yaml", _vnffgd(
        [{"ip_proto": 17}], forwarders=("test-vnfd2",)))).nsds
    with pytest.raises(DescriptorError, match=(
            rf"g.yaml: nsd.vnfs\[0\].vnfd: unknown VNFD '{vnfd_id_for('test-vnfd2')}' "
            r"\(the descriptor's VNFD 'test-vnfd2': descriptors/README.md, Identifiers\); "
            r"onboarded: none")):
        check_ns(n, {})


# ------------------------------------------------------------------ Tacker NSD forwarders
def _legacy_vnfd(node_type: str) -> dict:
    return {"tosca_definitions_version": TACKER,
            "topology_template": {
                "substitution_mappings": {"node_type": node_type},
                "node_templates": {
                    "VDU1": {"type": "tosca.nodes.nfv.VDU.Tacker",
                             "properties": {"image": "cirros", "flavor": "m1.tiny"}},
                    "CP12": {"type": "tosca.nodes.nfv.CP.Tacker",
                             "requirements": [{"virtualBinding": {"node": "VDU1"}}]}}}}


def test_nsd_forwarder_may_name_the_imported_vnfd(tmp_path):
    """In Tacker's NSD samples a forwarding path names the imported VNFD (sample-vnfd1),
    not the node template (VNF1): both are read as that VNF; a name that is neither is
    refused listing both kinds."""
    _write(tmp_path / "sample-vnfd1.yaml", _legacy_vnfd("tosca.nodes.nfv.VNF1"))
    _write(tmp_path / "sample-vnfd2.yaml", _legacy_vnfd("tosca.nodes.nfv.VNF2"))
    nsd = {"tosca_definitions_version": TACKER, "imports": ["sample-vnfd1", "sample-vnfd2"],
           "topology_template": {"node_templates": {
               "VNF1": {"type": "tosca.nodes.nfv.VNF1"},
               "VNF2": {"type": "tosca.nodes.nfv.VNF2"},
               "Forwarding_path1": {"type": "tosca.nodes.nfv.FP.TackerV2", "properties": {
                   "policy": {"type": "ACL", "criteria": [{"name": "udp", "classifier": {
                       "ip_proto": 17}}]},
                   "path": [{"forwarder": "sample-vnfd1", "capability": "CP12"},
                            {"forwarder": "VNF2", "capability": "CP12"}]}}}}}
    f = _write(tmp_path / "ns.yaml", nsd)
    b = read_descriptors(f)
    (n,) = b.nsds
    ids = tuple(vnfd_id_for(x) for x in ("sample-vnfd1", "sample-vnfd2"))
    assert n.vnfs == ids and n.vnffg[0].path == ids
    path = nsd["topology_template"]["node_templates"]["Forwarding_path1"]["properties"]["path"]
    path[0]["forwarder"] = "VNFD1"
    _write(tmp_path / "ns.yaml", nsd)
    _refused(f, "path[0].forwarder: unknown forwarder 'VNFD1'; VNFs of the NSD: VNF1, VNF2, "
                "or the VNFDs they import: sample-vnfd1, sample-vnfd2")


# ------------------------------------------------------------------ SOL006 references
def _sol006_vnfd() -> dict:
    return {"vnfd": {
        "id": "test-vnf", "product-name": "test-vnf", "version": "1.0",
        "ext-cpd": [{"id": "eth0-ext", "int-cpd": {"vdu-id": "test", "cpd": "eth0-int"}}],
        "vdu": [{"id": "test", "int-cpd": [{"id": "eth0-int"}],
                 "virtual-compute-desc": "c"}],
        "virtual-compute-desc": [{"id": "c", "virtual-cpu": {"num-virtual-cpu": 1},
                                  "virtual-memory": {"size": 1.0}}],
        "df": [{"id": "default-df",
                "vdu-profile": [{"id": "test", "min-number-of-instances": 1,
                                 "max-number-of-instances": 3}],
                "instantiation-level": [{"id": "default", "vdu-level": [
                    {"vdu-id": "test", "number-of-instances": 1}]}],
                "scaling-aspect": [{"id": "out", "max-scale-level": 2,
                                    "aspect-delta-details": {"deltas": [
                                        {"id": "d1", "vdu-delta": [
                                            {"id": "test", "number-of-instances": 1}]}]}}]}]}}


@pytest.mark.parametrize("where, field", [
    (("vdu-profile", 0, "id"), "vnfd.df[0].vdu-profile[0].id"),
    (("instantiation-level", 0, "vdu-level", 0, "vdu-id"),
     "vnfd.df[0].instantiation-level[0].vdu-level[0].vdu-id"),
    (("scaling-aspect", 0, "aspect-delta-details", "deltas", 0, "vdu-delta", 0, "id"),
     "vnfd.df[0].scaling-aspect[0].aspect-delta-details.deltas[0].vdu-delta[0].id")])
def test_flavour_naming_a_vdu_the_vnfd_lacks_is_refused(tmp_path, where, field):
    """A deployment flavour whose VDU profile, instantiation level or scaling delta names
    a VDU the VNFD does not define (as a public OSM package does: 'testVdu' for VDU
    'test') is refused naming the field; before, its counts were silently dropped."""
    doc = _sol006_vnfd()
    (v,) = read_descriptors(_write(tmp_path / "ok.yaml", doc)).vnfds
    assert (v.scaling.min, v.scaling.max, v.scaling.step) == (1, 3, 1)
    node = doc["vnfd"]["df"][0]
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = "testVdu"
    _refused(_write(tmp_path / "bad.yaml", doc),
             f"bad.yaml: {field}: 'testVdu' names no VDU of this VNFD; its VDU is 'test'")


# ------------------------------------------------------------------ formats that came before
@pytest.mark.parametrize("doc, key, what", [
    ({"vnfd:vnfd-catalog": {"vnfd": [{"id": "v"}]}}, "vnfd:vnfd-catalog",
     "OSM's information model before SOL006"),
    ({"nsd:nsd-catalog": {"nsd": [{"id": "n"}]}}, "nsd:nsd-catalog",
     "OSM's information model before SOL006"),
    ({"vnfd-catalog": {"vnfd": []}}, "vnfd-catalog", "OSM's information model before SOL006"),
    ({"template_name": "t", "service_properties": {"Id": "x"}, "vdus": {"vdu1": {}}},
     "vdus", "Tacker's pre-TOSCA VNFD template is not read")])
def test_older_formats_are_refused_saying_which_and_what_is_read(tmp_path, doc, key, what):
    """OSM's pre-SOL006 catalogues and Tacker's pre-TOSCA templates are refused naming the
    key that shows the format, the format, and what the testbed reads instead."""
    msg = _refused(_write(tmp_path / "old.yaml", doc), f"old.yaml: {key}: {what}")
    assert "reads" in msg


def test_own_parameter_without_a_value_is_refused_not_a_traceback(tmp_path):
    """A testbed parameter (``nfv-testbed:memory-mb``) given without its value is refused
    naming the entry; it raised a TypeError before (found by the property test)."""
    doc = _sol006_vnfd()
    doc["vnfd"]["virtual-compute-desc"][0]["virtual-memory"]["vdu-mem-requirements"] = [
        {"key": "nfv-testbed:memory-mb"}]
    _refused(_write(tmp_path / "mem.yaml", doc),
             "mem.yaml: vnfd.virtual-compute-desc[0].virtual-memory.vdu-mem-requirements[0]: "
             "missing required key 'value' (the parameter's value)")


# ------------------------------------------------------------------ node templates not read
def test_tacker_node_templates_not_read_are_warned(tmp_path):
    """A Tacker VNFD's block storage and attachment nodes (tosca-vnfd-block-attach) and a
    node written without a type (OPNFV's test-vnffgd nests ``groups`` under
    node_templates) are each named in a warning; before, they were dropped silently."""
    doc = _legacy_vnfd("x.VNF")
    nodes = doc["topology_template"]["node_templates"]
    nodes["VB1"] = {"type": "tosca.nodes.BlockStorage.Tacker",
                    "properties": {"size": "1 GB"}}
    nodes["CB1"] = {"type": "tosca.nodes.BlockStorageAttachment",
                    "requirements": [{"virtualBinding": {"node": "VDU1"}},
                                     {"virtualAttachment": {"node": "VB1"}}]}
    b = read_descriptors(_write(tmp_path / "blk.yaml", doc))
    text = "\n".join(b.warnings)
    assert "node_templates.VB1: node type 'tosca.nodes.BlockStorage.Tacker' has no " \
           "meaning here; ignored" in text
    assert "node_templates.CB1: node type 'tosca.nodes.BlockStorageAttachment'" in text
    g = _vnffgd([{"ip_proto": 6}])
    g["topology_template"]["node_templates"]["groups"] = {
        "VNFFG1": {"type": "tosca.groups.nfv.VNFFG", "members": ["Forwarding_path1"]}}
    b = read_descriptors(_write(tmp_path / "g.yaml", g))
    assert any("node_templates.groups: no type: not a node template the testbed can read; "
               "ignored" in w for w in b.warnings)


def test_sol001_node_templates_not_read_are_warned(tmp_path):
    """A SOL001 flavour's node template of a type the reader does not use (a file
    storage) is named in a warning; a block storage the VDU names keeps its own warning
    and no second one."""
    pkg = tmp_path / "pkg"
    shutil.copytree(CSAR, pkg)
    df = pkg / "Definitions" / "sample_vnfd_df_simple.yaml"
    doc = yaml.safe_load(df.read_text())
    nodes = doc["topology_template"]["node_templates"]
    nodes["Files"] = {"type": "tosca.nodes.nfv.Vdu.VirtualFileStorage",
                      "properties": {"virtual_file_storage_data": {"size_of_storage": "1 GB"}}}
    nodes["Disk"] = {"type": "tosca.nodes.nfv.Vdu.VirtualBlockStorage",
                     "properties": {"virtual_block_storage_data": {"size_of_storage": "1 GB"}}}
    nodes["VDU1"].setdefault("requirements", []).append({"virtual_storage": "Disk"})
    df.write_text(yaml.safe_dump(doc, sort_keys=False))
    b = read_descriptors(pkg)
    assert any("virtual storage 'Disk' is not attached" in w for w in b.warnings)
    hits = [w for w in b.warnings if "node type" in w]
    assert hits == [("pkg/Definitions/sample_vnfd_df_simple.yaml: topology_template."
                    "node_templates.Files: node type 'tosca.nodes.nfv.Vdu.VirtualFileStorage' "
                    "has no meaning here; ignored")], hits


# ------------------------------------------------------------------ compute and port requests
def test_compute_and_port_requests_not_honoured_are_warned(tmp_path):
    """Dedicated CPUs (tosca-vnfd-cpu-dedicate), fixed MAC and IP addresses
    (tosca-vnfd-mac-ip), SOL001's requested additional capabilities and SOL006's CPU
    pinning are each named in a warning; before, they were dropped silently."""
    doc = _legacy_vnfd("x.VNF")
    nodes = doc["topology_template"]["node_templates"]
    del nodes["VDU1"]["properties"]["flavor"]
    nodes["VDU1"]["capabilities"] = {"nfv_compute": {"properties": {
        "num_cpus": 2, "mem_size": "2048 MB", "disk_size": "10 GB",
        "cpu_allocation": {"cpu_affinity": "dedicated"}}}}
    nodes["CP12"]["properties"] = {"management": True, "mac_address": "6c:40:08:a0:de:0a",
                                   "ip_address": "10.10.1.12"}
    text = "\n".join(read_descriptors(_write(tmp_path / "t.yaml", doc)).warnings)
    for field in ("VDU1.capabilities.nfv_compute.properties.cpu_allocation",
                  "CP12.properties.mac_address", "CP12.properties.ip_address"):
        assert f"node_templates.{field}: has no meaning on this NFVI" in text, field
    assert "properties.management" not in text

    pkg = tmp_path / "pkg"
    shutil.copytree(CSAR, pkg)
    df = pkg / "Definitions" / "sample_vnfd_df_simple.yaml"
    d = yaml.safe_load(df.read_text())
    vc = d["topology_template"]["node_templates"]["VDU1"]["capabilities"][
        "virtual_compute"]["properties"]
    vc["requested_additional_capabilities"] = {"properties": {
        "requested_additional_capability_name": "m1.tiny", "support_mandatory": True}}
    vc["virtual_cpu"]["virtual_cpu_pinning"] = {"virtual_cpu_pinning_policy": "static"}
    df.write_text(yaml.safe_dump(d, sort_keys=False))
    text = "\n".join(read_descriptors(pkg).warnings)
    for field in ("requested_additional_capabilities", "virtual_cpu.virtual_cpu_pinning"):
        assert f"virtual_compute.properties.{field}: has no meaning on this NFVI" in text

    s = _sol006_vnfd()
    s["vnfd"]["virtual-compute-desc"][0]["virtual-cpu"]["pinning"] = {"policy": "dedicated"}
    text = "\n".join(read_descriptors(_write(tmp_path / "s.yaml", s)).warnings)
    assert "vnfd.virtual-compute-desc[0].virtual-cpu.pinning: has no meaning on this NFVI" \
        in text


def test_containerized_tacker_vnfd_is_refused_naming_vnfcs(tmp_path):
    """A Tacker VNFD whose VDU runs Kubernetes containers (tosca-vnfd-containerized) is
    refused naming ``vnfcs`` as a missing feature, not as a missing flavor."""
    doc = _legacy_vnfd("x.VNF")
    vdu = doc["topology_template"]["node_templates"]["VDU1"]
    vdu["properties"] = {"namespace": "default", "vnfcs": {"web_server": {
        "num_cpus": 0.2, "mem_size": "100 MB", "image": "k8s.gcr.io/hpa-example"}}}
    _refused(_write(tmp_path / "c.yaml", doc),
             "c.yaml: topology_template.node_templates.VDU1.properties.vnfcs: containerized "
             "VNFCs (Kubernetes) cannot run on this NFVI (required feature missing)")


def test_package_without_tosca_meta_names_its_definitions_files(tmp_path):
    """A package directory or zip with Definitions/ but neither TOSCA-Metadata nor a root
    YAML file (as a copy of Tacker's ansible_vnf_package without its metadata) is refused
    listing the definitions files one could onboard instead (not the ETSI type files)."""
    pkg = tmp_path / "pkg"
    shutil.copytree(CSAR / "Definitions", pkg / "Definitions")
    (pkg / "Definitions" / "etsi_nfv_sol001_vnfd_types.yaml").write_text("{}\n")
    want = ("no TOSCA-Metadata/TOSCA.meta and 0 YAML files at the root; expected "
            "TOSCA-Metadata or exactly one; or onboard its top-level definitions file "
            "itself (one of Definitions/sample_vnfd_df_simple.yaml, "
            "Definitions/sample_vnfd_top.yaml, Definitions/sample_vnfd_types.yaml)")
    _refused(pkg, f"pkg: {want}")
    z = tmp_path / "pkg.zip"
    shutil.make_archive(str(tmp_path / "pkg"), "zip", pkg)
    _refused(z, f"pkg.zip: {want}")


def test_sol001_cnf_vdu_without_virtual_compute_is_refused_as_a_cnf(tmp_path):
    """A SOL001 Vdu.Compute without virtual_compute (a Kubernetes resource of a Tacker
    CNF package, as test_cnf_helmchart's) is refused naming the capability and saying that
    CNFs cannot run here."""
    pkg = tmp_path / "pkg"
    shutil.copytree(CSAR, pkg)
    df = pkg / "Definitions" / "sample_vnfd_df_simple.yaml"
    d = yaml.safe_load(df.read_text())
    del d["topology_template"]["node_templates"]["VDU1"]["capabilities"]["virtual_compute"]
    df.write_text(yaml.safe_dump(d, sort_keys=False))
    _refused(pkg, "node_templates.VDU1.capabilities: missing required key 'virtual_compute' "
                  "(the flavour; a VDU without one is a Kubernetes resource of a CNF, which "
                  "cannot run on this NFVI)")
