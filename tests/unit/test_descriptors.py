"""Descriptors (mano.descriptors): the shipped samples load and round-trip; bad descriptors
of many kinds each give their precise error (file, field path, what would be valid)."""
from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
import yaml

from mano.descriptors import (
    check_ns,
    check_vnfd_fits,
    load_catalogue,
    load_nsd,
    load_vnfd,
    parse_nsd,
    parse_vnfd,
)
from mano.errors import DescriptorError
from mano.nfvi import ComputeNodeInfo, Flavour

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "descriptors"
DOCS = {p.stem: yaml.safe_load(p.read_text())
        for p in sorted((ROOT / "vnfd").glob("*.yaml")) + sorted((ROOT / "nsd").glob("*.yaml"))}
DELETE = object()   # marks a key to remove in _edit


def _edit(doc: dict, path: tuple, value) -> dict:
    d = copy.deepcopy(doc)
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is DELETE:
        del node[path[-1]]
    elif isinstance(node, list) and path[-1] == len(node):
        node.append(value)
    else:
        node[path[-1]] = value
    return d


# ------------------------------------------------------------------------ the samples
def test_each_sample_loads_with_the_expected_content():
    """Every shipped VNFD and NSD file loads into a typed model with the documented values."""
    fw = load_vnfd(ROOT / "vnfd" / "fw.yaml")
    assert fw.flavour == Flavour(0.5, 128, 1) and fw.image.program == "firewall"
    assert fw.image.params["rules"] == [{"action": "deny", "proto": "udp", "dport": 9999}]
    assert (fw.scaling.min, fw.scaling.max, fw.scaling.step) == (1, 2, 1)
    assert fw.healing.mode == "restart" and fw.monitoring[0].metric == "cpu_util"
    assert fw.source == "fw.yaml" and fw.vdu.connection_points[0].id == "cp0"
    programs = {n: load_vnfd(ROOT / "vnfd" / f"{n}.yaml").image.program
                for n in ("fwd", "fwd2", "fw", "nat", "lb")}
    assert programs == {"fwd": "forwarder", "fwd2": "forwarder", "fw": "firewall",
                        "nat": "nat", "lb": "lb"}
    chain3 = load_nsd(ROOT / "nsd" / "chain3.yaml")
    fg = chain3.vnffg[0]
    assert (fg.ingress, fg.egress, fg.path) == ("h1", "h16", ("fw", "fwd", "fwd2"))
    assert fg.classifier == {"ip_proto": 17, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.16"}
    assert chain3.sla.max_latency_ms == 50 and chain3.sla.min_throughput_mbit == 10
    assert load_nsd(ROOT / "nsd" / "nat_chain.yaml").vnffg[0].path == ("fw", "nat")


def test_catalogue_loads_every_file_and_cross_checks_the_nsds():
    """load_catalogue returns the VNFDs and NSDs by id, every NSD checked against the VNFDs."""
    vnfds, nsds = load_catalogue(ROOT)
    assert set(vnfds) == {"fw", "fwd", "fwd2", "nat", "lb", "busy"}
    assert set(nsds) == {"chain3", "nat_chain", "busy_chain"}
    nodes = [ComputeNodeInfo("cn1", "e1", 4, 4096, 100)]
    endpoints = {f"h{i}" for i in range(1, 17)}
    for n in nsds.values():
        check_ns(n, vnfds, compute_nodes=nodes, endpoints=endpoints)


def test_round_trip_through_to_dict_json_and_yaml(tmp_path):
    """to_dict parses back to an equal model, also after JSON and after a YAML file."""
    vnfds, nsds = load_catalogue(ROOT)
    for model, parse, load in [*((v, parse_vnfd, load_vnfd) for v in vnfds.values()),
                               *((n, parse_nsd, load_nsd) for n in nsds.values())]:
        d = model.to_dict()
        assert parse(d, "rt") == model
        assert parse(json.loads(json.dumps(d)), "rt").to_dict() == d
        f = tmp_path / f"{model.id}.yaml"
        f.write_text(yaml.safe_dump(d))
        assert load(f) == model


def test_equality_includes_program_params_and_models_are_frozen():
    """Two VNFDs that differ only in firewall rules are not equal; models cannot be mutated
    and can be hashed."""
    other = parse_vnfd(_edit(DOCS["fw"], ("vnfd", "vdu", 0, "image", "params", "default"),
                             "deny"), "fw.yaml")
    fw = load_vnfd(ROOT / "vnfd" / "fw.yaml")
    assert other != fw and other.flavour == fw.flavour
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        fw.id = "x"   # type: ignore[misc]
    assert len({fw, other, load_nsd(ROOT / "nsd" / "chain3.yaml")}) == 3


def test_defaults_fill_optional_fields():
    """A minimal VNFD gets scaling 1/1/1, restart healing, no monitoring and connection
    point cp0; a minimal NSD gets no virtual links, an empty SLA and no protection."""
    v = parse_vnfd({"vnfd": {"id": "min", "vdu": [
        {"id": "m", "flavour": {"vcpu": 1, "memory_mb": 64}, "image": {"program": "forwarder"}}
    ]}}, "min.yaml")
    assert (v.scaling.min, v.scaling.max, v.scaling.step) == (1, 1, 1)
    assert v.healing.mode == "restart" and v.monitoring == () and v.flavour.disk_gb == 0
    assert v.vdu.connection_points[0].id == "cp0" and v.image.params == {}
    assert v.name == "min" and v.version == "1.0"
    n = parse_nsd({"nsd": {"id": "n", "vnfs": [{"vnfd": "min"}], "vnffg": [
        {"id": "g", "classifier": {}, "ingress": "h1", "egress": "h2", "path": ["min"]}]}},
        "n.yaml")
    assert n.virtual_links == () and n.sla.to_dict() == {} and not n.vnffg[0].protection


# --------------------------------------------------------------------- bad VNFDs
RULE0 = ("vnfd", "vdu", 0, "image", "params", "rules", 0)
PARAMS = ("vnfd", "vdu", 0, "image", "params")
VNFD_CASES = [
    ("fw", ("vnfd", "vdu", 0, "flavour", "vcpu"), "two",
     "vnfd.vdu[0].flavour.vcpu: expected a positive number, got 'two'"),
    ("fw", ("vnfd", "vdu", 0, "flavour", "vcpu"), 0,
     "vnfd.vdu[0].flavour.vcpu: expected a positive number, got 0"),
    ("fw", ("vnfd", "vdu", 0, "flavour", "memory_mb"), 128.5,
     "vnfd.vdu[0].flavour.memory_mb: expected a positive integer, got 128.5"),
    ("fw", ("vnfd", "vdu", 0, "flavour", "cpu"), 1,
     "vnfd.vdu[0].flavour.cpu: unknown key 'cpu'; known: vcpu, memory_mb, disk_gb"),
    ("fw", ("vnfd", "vdu", 0, "flavour", "memory_mb"), DELETE,
     "vnfd.vdu[0].flavour: missing required key 'memory_mb'; required: vcpu, memory_mb"),
    ("fw", ("vnfd", "vdu", 0, "image", "program"), "ftp",
     "vnfd.vdu[0].image.program: 'ftp' is not one of forwarder, firewall, nat, lb"),
    ("fw", ("vnfd", "id"), "Firewall!", "vnfd.id: 'Firewall!' is not a valid VNFD id"),
    ("fw", ("vnfd", "id"), "firewall", ("vnfd.id: 'firewall' is not a valid VNFD id: "
                                       "expected [a-z][a-z0-9]{0,5}")),
    ("fw", ("vnfd", "vdu"), {"id": "main"},
     "vnfd.vdu: expected a non-empty list, got a mapping"),
    ("fw", ("vnfd", "vdu", 1), {"id": "second"},
     "vnfd.vdu: 2 VDUs given; exactly one VDU per VNFD is supported for now"),
    ("fw", ("vnfd", "vdu", 0, "connection_points", 1), {"id": "cp1"},
     "vnfd.vdu[0].connection_points: 2 connection points given; exactly one is supported"),
    ("fw", ("vnfd", "scaling", "min"), 3, "vnfd.scaling.max: max 2 is below min 3"),
    ("fw", ("vnfd", "scaling", "min"), 0, "vnfd.scaling.min: expected an integer >= 1, got 0"),
    ("fw", ("vnfd", "scaling", "step"), 2,
     "vnfd.scaling.step: step 2 is larger than max - min = 1; expected 1..1"),
    ("nat", ("vnfd", "scaling", "step"), 2,
     "vnfd.scaling.step: step 2 with max == min (1); expected 1"),
    ("fw", ("vnfd", "healing", "mode"), "reboot",
     "vnfd.healing.mode: 'reboot' is not one of restart, recreate"),
    ("fw", ("vnfd", "healing", "max_restarts"), -1,
     "vnfd.healing.max_restarts: expected an integer >= 0, got -1"),
    ("fw", ("vnfd", "monitoring", 0, "metric"), "temperature",
     ("vnfd.monitoring[0].metric: 'temperature' is not one of cpu_util, packets_rate, "
     "bytes_rate, liveness")),
    ("fw", ("vnfd", "monitoring", 1, "id"), "cpu",
     "vnfd.monitoring[1].id: monitoring id 'cpu' appears twice (first at index 0)"),
    ("fw", ("vnfd", "monitoring", 0, "interval_s"), 0,
     "vnfd.monitoring[0].interval_s: expected a positive number, got 0"),
    ("fw", RULE0 + ("dport",), 70000,
     "vnfd.vdu[0].image.params.rules[0].dport: port 70000 is outside 1..65535"),
    ("fw", RULE0 + ("proto",), "icmp",
     ("vnfd.vdu[0].image.params.rules[0].dport: a destination port needs proto tcp or udp, "
     "got 'icmp'")),
    ("fw", RULE0 + ("action",), "drop",
     "vnfd.vdu[0].image.params.rules[0].action: 'drop' is not one of allow, deny"),
    ("fw", RULE0 + ("src",), "10.0.0.300/8",
     "vnfd.vdu[0].image.params.rules[0].src: '10.0.0.300/8' is not a valid IPv4 prefix"),
    ("fw", RULE0 + ("dst",), "10.0.0.1/8",
     ("vnfd.vdu[0].image.params.rules[0].dst: '10.0.0.1/8' is not a valid IPv4 prefix or "
     "address (e.g. 10.0.0.1 or 10.0.0.0/24); did you mean 10.0.0.0/8?")),
    ("fw", PARAMS + ("policy",), "deny",
     "vnfd.vdu[0].image.params.policy: unknown key 'policy'; known: default, rules, cost_us"),
    ("fwd", PARAMS + ("cost_us",), -1,
     "vnfd.vdu[0].image.params.cost_us: expected a number >= 0, got -1"),
    ("nat", PARAMS + ("public_ip",), DELETE,
     "vnfd.vdu[0].image.params: missing required key 'public_ip'"),
    ("nat", PARAMS + ("public_ip",), "10.200.0.256",
     "vnfd.vdu[0].image.params.public_ip: '10.200.0.256' is not a valid IPv4 address"),
    ("lb", PARAMS + ("backends",), [],
     "vnfd.vdu[0].image.params.backends: expected a non-empty list, got a list []"),
    ("lb", PARAMS + ("backends", 1), "10.0.0.15",
     "vnfd.vdu[0].image.params.backends[1]: backend '10.0.0.15' appears twice"),
    ("fw", ("vnfd", "vdu", 0, "flavour", "vcpu"), float("inf"),
     "vnfd.vdu[0].flavour.vcpu: expected a positive number, got inf"),
]


@pytest.mark.parametrize("sample,path,value,message", VNFD_CASES,
                         ids=[c[3].split(":")[0] + "-" + str(i) for i, c in enumerate(VNFD_CASES)])
def test_bad_vnfd_names_the_file_the_field_and_what_is_valid(sample, path, value, message):
    """Each broken VNFD is refused with the file name, the field path and the valid values."""
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(_edit(DOCS[sample], path, value), f"{sample}.yaml")
    assert str(err.value).startswith(f"{sample}.yaml: {message}"), str(err.value)


# ---------------------------------------------------------------------- bad NSDs
FG0 = ("nsd", "vnffg", 0)
CL0 = FG0 + ("classifier",)
NSD_CASES = [
    (FG0 + ("path", 2), "fw2", "nsd.vnffg[0].path[2]: unknown VNF 'fw2'; known: fw, fwd, fwd2"),
    (FG0 + ("path", 1), "fw",
     "nsd.vnffg[0].path[1]: VNF 'fw' appears twice in the path (first at path[0])"),
    (FG0 + ("path",), [], "nsd.vnffg[0].path: expected a non-empty list, got a list []"),
    (CL0 + ("tcp_src",), 80, "nsd.vnffg[0].classifier.tcp_src: tcp_src needs ip_proto 6, got 17"),
    (CL0 + ("udp_dst",), 0, "nsd.vnffg[0].classifier.udp_dst: port 0 is outside 1..65535"),
    (CL0 + ("ip_proto",), 300, ("nsd.vnffg[0].classifier.ip_proto: expected an integer 0..255, "
                               "got 300")),
    (CL0 + ("ipv4_dst",), "10.0.0",
     "nsd.vnffg[0].classifier.ipv4_dst: '10.0.0' is not a valid IPv4 address"),
    (CL0 + ("dst_port",), 1, ("nsd.vnffg[0].classifier.dst_port: unknown key 'dst_port'; known: "
                             "ip_proto, ipv4_src, ipv4_dst, tcp_src, tcp_dst, udp_src, udp_dst")),
    (FG0 + ("egress",), "h1",
     "nsd.vnffg[0].egress: egress equals ingress ('h1'); expected another endpoint"),
    (FG0 + ("protection",), "yes", "nsd.vnffg[0].protection: expected true or false, got 'yes'"),
    (FG0 + ("ingress",), DELETE, "nsd.vnffg[0]: missing required key 'ingress'"),
    (("nsd", "vnffg", 1), {"id": "fg1", "classifier": {}, "ingress": "h2", "egress": "h3",
                           "path": ["fw"]},
     "nsd.vnffg[1].id: forwarding graph id 'fg1' appears twice (first at index 0)"),
    (("nsd", "sla", "max_latency_ms"), -5,
     "nsd.sla.max_latency_ms: expected a positive number, got -5"),
    (("nsd", "sla", "max_loss_pct"), 150,
     "nsd.sla.max_loss_pct: expected a number > 0 and <= 100, got 150"),
    (("nsd", "sla", "jitter_ms"), 1, ("nsd.sla.jitter_ms: unknown key 'jitter_ms'; known: "
                                     "max_latency_ms, max_loss_pct, min_throughput_mbit")),
    (("nsd", "vnfs", 1, "vnfd"), "fw",
     "nsd.vnfs[1].vnfd: VNF 'fw' appears twice (first at index 0)"),
    (("nsd", "vnfs", 0, "vnfd"), "Fw-1", "nsd.vnfs[0].vnfd: 'Fw-1' is not a valid VNFD id"),
    (("nsd", "virtual_links", 0, "connectivity"), "l2",
     "nsd.virtual_links[0].connectivity: 'l2' is not one of ip"),
    (("nsd", "id"), "9chain", "nsd.id: '9chain' is not a valid NSD id"),
    (("nsd", "vnf"), [], ("nsd.vnf: unknown key 'vnf'; known: id, vnfs, vnffg, name, version, "
                         "description, virtual_links, sla")),
]


@pytest.mark.parametrize("path,value,message", NSD_CASES,
                         ids=[c[2].split(":")[0] + "-" + str(i) for i, c in enumerate(NSD_CASES)])
def test_bad_nsd_names_the_file_the_field_and_what_is_valid(path, value, message):
    """Each broken NSD is refused with the file name, the field path and the valid values."""
    with pytest.raises(DescriptorError) as err:
        parse_nsd(_edit(DOCS["chain3"], path, value), "nsd.yaml")
    assert str(err.value).startswith(f"nsd.yaml: {message}"), str(err.value)


def test_wrong_kind_of_document_and_empty_document():
    """An NSD given as a VNFD names the unexpected top key; an empty document says so."""
    with pytest.raises(DescriptorError, match=r"^x.yaml: nsd: unknown key 'nsd'; known: vnfd$"):
        parse_vnfd(DOCS["chain3"], "x.yaml")
    with pytest.raises(DescriptorError, match=r"^x.yaml: \(top\): the document is empty; "
                                              r"expected a mapping with key 'nsd'$"):
        parse_nsd(None, "x.yaml")


def test_any_value_anywhere_gives_a_descriptor_error_never_a_traceback():
    """Replacing any node of the samples by a value of the wrong kind yields a model or a
    DescriptorError, never another exception."""
    rng = random.Random(3)
    junk = [None, "x", -1, 0, 2.5, True, [], {}, [1], {"k": 1}, "10.0.0.1/33"]

    def paths(node, prefix=()):
        yield prefix
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        for k, v in items:
            yield from paths(v, prefix + (k,))

    for name, parse in [("fw", parse_vnfd), ("nat", parse_vnfd), ("lb", parse_vnfd),
                        ("chain3", parse_nsd)]:
        for path in list(paths(DOCS[name]))[1:]:
            for value in rng.sample(junk, 5):
                try:
                    parse(_edit(DOCS[name], path, value), f"{name}.yaml")
                except DescriptorError as e:
                    assert str(e).startswith(f"{name}.yaml: ")


# ------------------------------------------------------------------------ YAML and files
def test_yaml_syntax_error_gives_file_line_and_column(tmp_path):
    """Broken YAML is reported with the file name, line and column, not a traceback."""
    f = tmp_path / "bad.yaml"
    f.write_text("vnfd:\n  id: fw\n  vdu: [unclosed\n")
    with pytest.raises(DescriptorError,
                       match=r"^bad.yaml: line 4, column 1: invalid YAML: expected ',' or ']'"):
        load_vnfd(f)
    f.write_text("nsd:\n  id: a\n\tvnfs: []\n")
    with pytest.raises(DescriptorError, match=r"^bad.yaml: line 3, column 1: invalid YAML"):
        load_nsd(f)


def test_duplicate_yaml_key_is_an_error_with_its_line(tmp_path):
    """A key written twice in one mapping is refused (PyYAML would keep the last silently)."""
    f = tmp_path / "dup.yaml"
    f.write_text("vnfd:\n  id: fw\n  name: a\n  id: fw2\n")
    with pytest.raises(DescriptorError, match=r"^dup.yaml: line 4, column 3: invalid YAML: "
                                              r"duplicate key 'id' \(first at line 2\)"):
        load_vnfd(f)


def test_unreadable_file_is_a_descriptor_error(tmp_path):
    """A missing file is a DescriptorError naming the path."""
    with pytest.raises(DescriptorError, match=r"missing.yaml: cannot read: No such file"):
        load_nsd(tmp_path / "missing.yaml")


def test_catalogue_refuses_duplicate_ids_and_dangling_references(tmp_path):
    """Two VNFD files with one id are refused naming both files; an NSD that names a VNFD
    missing from the folder is refused naming the NSD file and the field."""
    (tmp_path / "vnfd").mkdir()
    (tmp_path / "nsd").mkdir()
    fw = (ROOT / "vnfd" / "fw.yaml").read_text()
    (tmp_path / "vnfd" / "a.yaml").write_text(fw)
    (tmp_path / "vnfd" / "b.yaml").write_text(fw)
    with pytest.raises(DescriptorError, match="^b.yaml: vnfd.id: VNFD id 'fw' is already used "
                                              "by a.yaml$"):
        load_catalogue(tmp_path)
    (tmp_path / "vnfd" / "b.yaml").unlink()
    (tmp_path / "nsd" / "c.yaml").write_text((ROOT / "nsd" / "nat_chain.yaml").read_text())
    with pytest.raises(DescriptorError, match=r"^c.yaml: nsd.vnfs\[1\].vnfd: unknown VNFD "
                                              r"'nat'; onboarded: fw$"):
        load_catalogue(tmp_path)


# ------------------------------------------------------------------------ cross-checks
def test_flavour_too_big_for_every_compute_node():
    """check_ns refuses a VNF whose flavour fits no compute node, naming the VNF, its
    flavour, the largest node and what it lacks."""
    vnfds, nsds = load_catalogue(ROOT)
    nodes = [ComputeNodeInfo("cn1", "e1", 0.25, 64, 10), ComputeNodeInfo("cn2", "e2", 0.4, 512,
                                                                         10)]
    with pytest.raises(DescriptorError) as err:
        check_ns(nsds["chain3"], vnfds, compute_nodes=nodes)
    assert str(err.value) == (
        "fw.yaml: vnfd.vdu[0].flavour: VNF 'fw' needs 0.5 vCPU, 128 MB, 1 GB, which fits no "
        "compute node; the largest is cn2 (0.4 vCPU, 512 MB, 10 GB), short of vCPU")
    with pytest.raises(DescriptorError, match="VNF 'fw' needs 0.5 vCPU, 128 MB, 1 GB; there "
                                              "are no compute nodes"):
        check_vnfd_fits(vnfds["fw"], [])
    check_vnfd_fits(vnfds["fw"], [ComputeNodeInfo("cn3", "e3", 0.5, 128, 1)])   # exact fit


def test_cross_check_unknown_vnfd_and_unknown_endpoint():
    """check_ns refuses an NSD naming a VNFD not given, and an ingress that is not an
    endpoint of the topology (listing the known ones)."""
    vnfds, nsds = load_catalogue(ROOT)
    with pytest.raises(DescriptorError, match=r"^chain3.yaml: nsd.vnfs\[2\].vnfd: unknown VNFD "
                                              r"'fwd2'; onboarded: fw, fwd$"):
        check_ns(nsds["chain3"], {k: vnfds[k] for k in ("fw", "fwd")})
    with pytest.raises(DescriptorError, match=r"^chain3.yaml: nsd.vnffg\[0\].ingress: unknown "
                                              r"endpoint 'h1'; known: h2, h10, h16$"):
        check_ns(nsds["chain3"], vnfds, endpoints={"h16", "h2", "h10"})


def test_mano_descriptors_imports_no_infrastructure():
    """mano.descriptors imports nothing from testbed, mininet or os_ken (the MANO seam)."""
    code = ("import sys, mano.descriptors; bad = [m for m in sys.modules if m.split('.')[0] "
            "in ('testbed', 'mininet', 'os_ken')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)

