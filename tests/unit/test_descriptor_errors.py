"""Descriptors: the shipped samples load and round-trip; bad descriptors of many kinds
each give their precise error (file, field path, what would be valid)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mano.descriptors import check_ns, load_catalogue, load_nsd, load_vnfd, parse_nsd, parse_vnfd
from mano.errors import DescriptorError
from mano.nfvi import ComputeNodeInfo

ROOT = Path(__file__).resolve().parents[2] / "descriptors"
VNFD = yaml.safe_load((ROOT / "vnfd" / "fw.yaml").read_text())
NSD = yaml.safe_load((ROOT / "nsd" / "chain3.yaml").read_text())


def test_samples_load_cross_check_and_round_trip():
    """Every shipped VNFD and NSD loads, the NSDs check against the VNFDs, and to_dict
    parses back to an equal model."""
    vnfds, nsds = load_catalogue(ROOT)
    assert {"fw", "fwd", "fwd2", "nat", "lb"} <= set(vnfds) and "chain3" in nsds
    for n in nsds.values():
        check_ns(n, vnfds)
        assert parse_nsd(n.to_dict(), "rt") == n
    for v in vnfds.values():
        assert parse_vnfd(v.to_dict(), "rt") == v
    assert vnfds["fw"].flavour.vcpu == 0.5 and vnfds["fw"].image.program == "firewall"


def _edit(doc, path, value):
    d = copy.deepcopy(doc)
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


VNFD_CASES = [
    (("vnfd", "vdu", 0, "flavour", "vcpu"), "two", "vnfd.vdu[0].flavour.vcpu: expected a number"),
    (("vnfd", "vdu", 0, "flavour", "vcpu"), -1, "vnfd.vdu[0].flavour.vcpu: expected a positive"),
    (("vnfd", "vdu", 0, "flavour", "cpu"), 1, "vnfd.vdu[0].flavour.cpu: unknown key 'cpu'; "
                                              "known: vcpu, memory_mb, disk_gb"),
    (("vnfd", "vdu", 0, "image", "program"), "ftp", "vnfd.vdu[0].image.program: 'ftp' is "
                                                    "not one of forwarder, firewall, nat, lb"),
    (("vnfd", "scaling", "max"), 0, "vnfd.scaling.max: expected at least 1"),
    (("vnfd", "scaling", "min"), 3, "vnfd.scaling.max: max 2 is below min 3"),
    (("vnfd", "id"), "Firewall!", "vnfd.id: 'Firewall!' is not a valid VNFD id"),
    (("vnfd", "healing", "mode"), "reboot", "vnfd.healing.mode: 'reboot' is not one of "
                                            "restart, recreate"),
    (("vnfd", "vdu", 0, "image", "params", "rules", 0, "dport"), 70000,
     "vnfd.vdu[0].image.params.rules[0].dport: port 70000 is outside 1..65535"),
    (("vnfd", "vdu", 0, "image", "params", "rules", 0, "src"), "10.0.0.300/8",
     "rules[0].src: '10.0.0.300/8' is not a valid IPv4 prefix"),
    (("vnfd", "scaling"), KeyError, "vnfd: missing required key 'scaling'"),
    (("vnfd", "monitoring", 0, "metric"), "temperature", "vnfd.monitoring[0].metric: "
                                                         "'temperature' is not one of"),
]


@pytest.mark.parametrize("path,value,message", VNFD_CASES, ids=[c[2][:40] for c in VNFD_CASES])
def test_bad_vnfd_names_the_field_and_what_is_valid(path, value, message):
    """Each broken VNFD is refused with the file name, the field path and the valid values."""
    with pytest.raises(DescriptorError) as err:
        parse_vnfd(_edit(VNFD, path, value), "fw.yaml")
    assert str(err.value).startswith("fw.yaml: ") and message in str(err.value)


NSD_CASES = [
    (("nsd", "vnffg", 0, "path", 2), "fw2", "nsd.vnffg[0].path[2]: unknown VNF 'fw2'; known: "
                                           "fw, fwd, fwd2"),
    (("nsd", "vnffg", 0, "path", 1), "fw", "nsd.vnffg[0].path[1]: VNF 'fw' appears twice"),
    (("nsd", "vnffg", 0, "classifier", "udp_dst"), 5001,
     "nsd.vnffg[0].classifier.udp_dst: udp_dst needs ip_proto 17"),
    (("nsd", "vnffg", 0, "classifier", "ipv4_dst"), "10.0.0", "classifier.ipv4_dst: '10.0.0' "
                                                              "is not a valid IPv4 address"),
    (("nsd", "vnffg", 0, "classifier", "dst_port"), 1, "classifier.dst_port: unknown key"),
    (("nsd", "vnffg", 0, "egress"), "h1", "nsd.vnffg[0].egress: egress equals ingress"),
    (("nsd", "sla", "max_latency_ms"), -5, "nsd.sla.max_latency_ms: expected a positive"),
    (("nsd", "vnffg", 0, "protection"), "yes", "nsd.vnffg[0].protection: expected true or "
                                               "false"),
]


@pytest.mark.parametrize("path,value,message", NSD_CASES, ids=[c[2][:40] for c in NSD_CASES])
def test_bad_nsd_names_the_field_and_what_is_valid(path, value, message):
    """Each broken NSD is refused with the file name, the field path and the valid values."""
    doc = copy.deepcopy(NSD)
    if path[-2] == "classifier" and path[-1] == "udp_dst":
        doc["nsd"]["vnffg"][0]["classifier"]["ip_proto"] = 6
    with pytest.raises(DescriptorError) as err:
        parse_nsd(_edit(doc, path, value), "nsd.yaml")
    assert str(err.value).startswith("nsd.yaml: ") and message in str(err.value)


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    """Broken YAML is reported with the file, line and column, not a traceback."""
    f = tmp_path / "bad.yaml"
    f.write_text("vnfd:\n  id: fw\n  vdu: [unclosed\n")
    with pytest.raises(DescriptorError, match=r"bad.yaml: line \d+, column \d+: invalid YAML"):
        load_vnfd(f)
    with pytest.raises(DescriptorError, match="cannot read"):
        load_nsd(tmp_path / "missing.yaml")


def test_cross_checks_unknown_vnfd_flavour_too_big_and_unknown_endpoint():
    """check_ns refuses an NSD naming a VNFD not onboarded, a flavour that fits no compute
    node (naming the largest), and an ingress that is not an endpoint of the topology."""
    vnfds, nsds = load_catalogue(ROOT)
    nsd = nsds["chain3"]
    with pytest.raises(DescriptorError, match="unknown VNFD 'fwd2'; onboarded: fw, fwd"):
        check_ns(nsd, {k: vnfds[k] for k in ("fw", "fwd")})
    small = [ComputeNodeInfo("n1", "e1", 0.25, 64, 10)]
    with pytest.raises(DescriptorError, match=r"fits no compute node; the largest is n1 "
                                              r"\(0.25 vCPU, 64 MB"):
        check_ns(nsd, vnfds, compute_nodes=small)
    with pytest.raises(DescriptorError, match="nsd.vnffg\\[0\\].ingress: unknown endpoint 'h1'"):
        check_ns(nsd, vnfds, endpoints={"h2", "h16"})
