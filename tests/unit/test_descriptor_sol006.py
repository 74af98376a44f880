"""Round trips through SOL006: every shipped descriptor and every sample the testbed reads,
converted to strict ETSI SOL006 (and to OSM's variant) and read back by the SOL006 reader;
what SOL006 cannot carry (a graph's precedence above all) is a warning naming the field;
the NFP rule the strict layout classifies with. The YANG validation of the same documents
is tests/unit/test_sol006_yang.py."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from test_sol006_yang import MODELS  # tests/unit is on sys.path (rootdir-relative)

from mano.classifiers import DEFAULT_PRECEDENCE
from mano.descriptors import read_descriptors
from mano.descriptors.nsd import AUTO, NSD, SLA
from mano.descriptors.readers.osm_write import nsd_to_osm, vnfd_to_osm
from mano.descriptors.readers.sol006 import read as read_sol006
from mano.descriptors.readers.sol006_write import nsd_to_sol006, vnfd_to_sol006
from mano.descriptors.vnfd import Healing
from mano.errors import DescriptorError
from testbed.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "descriptors"
VNFDS = [(n, m) for n, m in MODELS if not isinstance(m, NSD)]
NSDS = [(n, m) for n, m in MODELS if isinstance(m, NSD)]


def _back(doc: dict, name: str = "back.yaml"):
    """The one model the SOL006 reader reads from ``doc`` after a trip through YAML."""
    b = read_sol006(yaml.safe_load(yaml.safe_dump(doc, sort_keys=False)), name)
    (model,) = [*b.vnfds, *b.nsds]
    return model


def _without_what_sol006_cannot_carry(n: NSD) -> NSD:
    """``n`` as a re-import gives it: the fields of ``sol006_write.LOST_NSD_FIELDS`` at
    what the reader gives (ends auto, no protection, default precedence, no SLA)."""
    graphs = tuple(fg.model_copy(update={"ingress": AUTO, "egress": AUTO,
                                         "protection": False, "precedence": None})
                   for fg in n.vnffg)
    return n.model_copy(update={"vnffg": graphs, "sla": SLA()})


def _warned_of_every_loss(n: NSD, notes: list[str]) -> None:
    text = "\n".join(notes)
    src = n.source or n.id
    for i, fg in enumerate(n.vnffg):
        if fg.ingress != AUTO:
            assert f"{src}: nsd.vnffg[{i}].ingress" in text and f"ingress {fg.ingress}" in text
            assert f"egress {fg.egress}" in text
        if fg.protection:
            assert f"{src}: nsd.vnffg[{i}].protection: true" in text
        if fg.precedence is not None:
            assert f"{src}: nsd.vnffg[{i}].precedence: {fg.precedence}" in text
    if n.sla.to_dict():
        assert f"{src}: nsd.sla: " in text


# ------------------------------------------------------------------ strict SOL006
@pytest.mark.parametrize("name, v", VNFDS, ids=[n for n, _ in VNFDS])
def test_every_vnfd_reads_back_equal_from_strict_sol006(name, v):
    """Every shipped VNFD (firewall rules, NAT and LB parameters, a fractional vCPU and
    128 MiB included) and every sample VNFD, written as strict SOL006 and read back, is
    the same model, read without a warning."""
    doc, _ = vnfd_to_sol006(v)
    back = _back(doc)
    assert back == v
    assert back.warnings == ()


@pytest.mark.parametrize("name, n", NSDS, ids=[n for n, _ in NSDS])
def test_every_nsd_reads_back_from_strict_sol006_losing_only_what_it_warned_of(name, n):
    """Every shipped NSD and every sample NSD, written as strict SOL006 and read back, is
    the same model except the fields no SOL006 node carries (graph ends, protection,
    precedence, SLA; the description), each named in a warning."""
    doc, notes = nsd_to_sol006(n)
    back = _back(doc)
    assert back == _without_what_sol006_cannot_carry(n).model_copy(
        update={"description": ""})
    assert back.warnings == ()
    _warned_of_every_loss(n, notes)
    if n.description:
        assert f"nsd.description: {n.description!r}" in "\n".join(notes)


def test_convert_writes_a_catalogue_the_testbed_reads_back(tmp_path, capsys):
    """``descriptor convert --to sol006 --out DIR`` over every shipped descriptor writes
    files that ``read_descriptors(DIR)`` reads back to the same VNFDs (and the NSDs minus
    what SOL006 cannot carry)."""
    assert main(["descriptor", "convert", str(REPO / "descriptors"), "--to", "sol006",
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    want = read_descriptors(REPO / "descriptors")
    got = read_descriptors(tmp_path)
    assert sorted(got.vnfds, key=lambda v: v.id) == sorted(want.vnfds, key=lambda v: v.id)
    assert sorted(got.nsds, key=lambda n: n.id) == sorted(
        (_without_what_sol006_cannot_carry(n) for n in want.nsds), key=lambda n: n.id)


# ------------------------------------------------------------------ OSM's variant
def _osm_expected(v):
    """``v`` as OSM's layout carries it: whole vCPUs, no monitoring, default healing,
    no cost per packet."""
    u = v.vdu
    params = {k: x for k, x in u.image.params.items() if k != "cost_us"}
    vdu = u.model_copy(update={
        "flavour": u.flavour.model_copy(update={"vcpu": float(math.ceil(u.flavour.vcpu))}),
        "image": u.image.model_copy(update={"params": params})})
    return v.model_copy(update={"vdus": (vdu,), "monitoring": (), "healing": Healing()})


@pytest.mark.parametrize("name, m", MODELS, ids=[n for n, _ in MODELS])
def test_osm_output_reads_back_to_what_osm_can_carry(name, m):
    """``convert --to osm`` (OSM's SOL006 2.x layout, which OSM onboards) reads back to the
    model minus what that layout cannot carry, each loss a warning; a VNFD whose program
    parameters it cannot carry is refused naming the field."""
    if isinstance(m, NSD):
        doc, notes = nsd_to_osm(m)
        assert _back(doc) == _without_what_sol006_cannot_carry(m)
        _warned_of_every_loss(m, notes)
        return
    try:
        doc, notes = vnfd_to_osm(m)
    except DescriptorError as exc:
        assert f"{m.source}: vnfd.vdu[0].image: program {m.vdu.image.program!r} with " \
               f"params" in str(exc)
        return
    back = _back(doc)
    assert back.model_copy(update={"vdus": (back.vdu.model_copy(update={
        "image": back.vdu.image.model_copy(update={"params": {
            k: x for k, x in back.vdu.image.params.items() if k != "cost_us"}})}),)}) \
        == _osm_expected(m)


def test_the_reader_gives_one_model_from_the_strict_and_the_osm_layouts():
    """The OSM-style sample NSD and the strict SOL006 written from it read to the same
    model (the chain through nfp-position-elements, the classifier from the rule)."""
    (n,) = read_descriptors(DATA / "sol006" / "fw_vnffg_nsd.yaml").nsds
    strict = _back(nsd_to_sol006(n)[0])
    assert strict.vnffg == n.vnffg and strict.vnfs == n.vnfs
    assert strict.vnffg[0].classifier == {"ip_proto": 17, "ipv4_src": "10.0.0.1",
                                          "ipv4_dst": "10.0.0.16", "udp_dst": 5001}


# ------------------------------------------------------------------ precedence
PREC_NSD = """
nsd:
  id: prec
  vnfs: [{vnfd: fwd}, {vnfd: fwd2}]
  vnffg:
    - {id: web, classifier: {ip_proto: 6, ipv4_src: 10.0.0.1, ipv4_dst: 10.0.0.16,
                             tcp_dst: 80}, ingress: h1, egress: h16, path: [fwd],
       precedence: 300}
    - {id: rest, classifier: %s, ingress: h1, egress: h16, path: [fwd2]}
"""


@pytest.mark.parametrize("target", ["sol006", "osm"])
def test_precedence_is_left_out_with_a_warning_naming_the_graph(tmp_path, capsys, target):
    """SOL006 has no field for a classifier's precedence (nfpd, its rule, match-attributes
    carry none): ``convert`` writes none, warns naming the file, the field, its value, the
    graph and the default a re-import gives, and the re-imported graph has that default."""
    src = tmp_path / "prec.yaml"
    src.write_text(PREC_NSD % "{ip_proto: 17, ipv4_src: 10.0.0.1, ipv4_dst: 10.0.0.16}")
    assert main(["descriptor", "convert", str(src), "--to", target, "--out",
                 str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert ("testbed: warning: prec.yaml: nsd.vnffg[0].precedence: 300 (graph 'web'): "
            "SOL006 has no field for a classifier's precedence") in err
    assert f"re-imported, the graph gets the default precedence {DEFAULT_PRECEDENCE}" in err
    written = (tmp_path / "out" / "nsd" / "prec.yaml").read_text()
    assert "precedence" not in written and "300" not in written
    (back,) = read_descriptors(tmp_path / "out" / "nsd" / "prec.yaml").nsds
    assert [fg.precedence for fg in back.vnffg] == [None, None]


def test_graphs_only_their_precedence_keeps_apart_are_refused(tmp_path, capsys):
    """When the precedence is what keeps two overlapping graphs apart, the SOL006 output
    would be refused on re-import: ``convert`` refuses it naming both graphs' fields and
    values and what would be valid."""
    src = tmp_path / "prec.yaml"
    src.write_text(PREC_NSD % "{ipv4_src: 10.0.0.1, ipv4_dst: 10.0.0.16}")
    assert main(["descriptor", "convert", str(src), "--to", "sol006"]) == 2
    err = capsys.readouterr().err
    assert ("testbed: error: prec.yaml: nsd.vnffg[0].precedence: 300 (graph 'web'): SOL006 "
            "has no field for a precedence, and without it graph 'web' and nsd.vnffg[1] "
            "'rest' (precedence none) overlap at ingress h1 at the default precedence 100: "
            "the re-imported NSD would be refused") in err
    assert "Make the classifiers disjoint, or keep this NSD in the testbed's format" in err


# ------------------------------------------------------------------ the strict reader
def _strict_nsd(rule: str) -> dict:
    (n,) = read_descriptors(DATA / "sol006" / "fw_vnffg_nsd.yaml").nsds
    doc, _ = nsd_to_sol006(n)
    doc["nsd"]["nsd"][0]["vnffgd"][0]["nfpd"][0]["rule"] = rule
    return doc


def test_an_nfp_rule_of_ifa014_attributes_gives_the_classifier():
    """An NFP rule of NfpRule attributes (any of ; , or spaces between them; port ranges
    of one port or 0-65535) gives the controller's classifier."""
    back = _back(_strict_nsd("protocol=tcp, source-ip-address-prefix=10.0.0.0/24 "
                             "destination-port-range=80-80; source-port-range=0-65535"))
    assert back.vnffg[0].classifier == {"ip_proto": 6, "ipv4_src": "10.0.0.0/24",
                                        "tcp_dst": 80}
    assert _back(_strict_nsd("ether-type=ipv4")).vnffg[0].classifier == {}


@pytest.mark.parametrize("rule, words", [
    ("dscp=10", ("'dscp=10' in rule 'dscp=10': expected key=value pairs separated by ';', "
                "the keys NfpRule attributes (ETSI GS NFV-IFA 014): ether-type, protocol")),
    ("match udp", "'match' in rule 'match udp': expected key=value pairs"),
    ("ether-type=ipv6", "rule[ether-type]: 'ipv6': the testbed forwards IPv4 only"),
    ("protocol=udp; protocol=tcp", "protocol is given twice in rule"),
    ("protocol=udp; destination-port-range=80-90", ("rule[destination-port-range]: port "
                                                   "range '80-90': the testbed's classifier")),
])
def test_an_nfp_rule_the_testbed_cannot_match_is_refused_naming_it(rule, words):
    """A rule with an attribute the controller cannot match, or that is not key=value
    pairs, is refused with the file, the rule's path, its value and what is valid."""
    with pytest.raises(DescriptorError) as exc:
        _back(_strict_nsd(rule), "r.yaml")
    assert str(exc.value).startswith("r.yaml: nsd.nsd[0].vnffgd[0].nfpd[0].rule")
    assert words in str(exc.value)


def _strict_vnfd() -> dict:
    (v,) = read_descriptors(REPO / "descriptors" / "vnfd" / "busy.yaml").vnfds
    return vnfd_to_sol006(v)[0]


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["vdu"][0]["configurable-properties"][0].update(value="cost 200"),
     ("vnfd.vdu[0].configurable-properties[0].value: 'cost 200': expected the program's "
     "parameters as a JSON object")),
    (lambda d: d["vdu"][0]["configurable-properties"][0].update(value='{"cost": 1}'),
     ("vnfd.vdu[0].configurable-properties[0].value: parameters of program 'forwarder': "
     "params.cost: unknown key 'cost'")),
    (lambda d: d["virtual-compute-desc"][0]["virtual-cpu"]["vdu-cpu-requirements"][0]
     .update(value="1.5"), ("vnfd.virtual-compute-desc[0].virtual-cpu.vdu-cpu-requirements"
                           "[0].value: '1.5': expected the share of the 1 virtual CPU(s)")),
    (lambda d: d["virtual-compute-desc"][0]["virtual-memory"]["vdu-mem-requirements"][0]
     .update(value="4096"), ("vdu-mem-requirements[0].value: 4096 MiB is more than the "
                            "virtual memory size 0.2 GB; expected at most 204")),
    (lambda d: d["df"][0]["lcm-operations-configuration"]["heal-vnf-op-config"]
     ["parameter"][0].update(value="reboot"), ("heal-vnf-op-config.parameter[0].value: "
                                              "'reboot': expected one of restart, recreate")),
])
def test_the_testbeds_own_keys_are_checked_naming_the_field(mutate, words):
    """A wrong value under one of the testbed's own keys (program parameters, vCPU share,
    memory, healing) is refused with the file, the field path, the value and what is
    valid."""
    doc = _strict_vnfd()
    mutate(doc["vnfd"])
    with pytest.raises(DescriptorError) as exc:
        _back(doc, "v.yaml")
    assert str(exc.value).startswith("v.yaml: ")
    assert words in str(exc.value)


def test_lcm_configuration_of_other_mano_is_a_warning_and_the_testbeds_is_not():
    """Parameters of other MANO in lcm-operations-configuration are named in a warning;
    the testbed's own (healing, the snapshot placeholders) are read silently."""
    doc = _strict_vnfd()
    lcm = doc["vnfd"]["df"][0]["lcm-operations-configuration"]
    assert _back(doc).warnings == ()
    lcm["scale-vnf-op-config"] = {"parameter": [{"key": "charm", "value": "x"}]}
    (w,) = _back(doc, "v.yaml").warnings
    assert w.startswith("v.yaml: vnfd.df[0].lcm-operations-configuration: "
                        "scale-vnf-op-config.parameter 'charm': has no meaning on this NFVI")


def test_the_default_instantiation_level_of_3x_sets_the_initial_count():
    """SOL006 3.x names the default level ``default-instantiation-level`` (OSM:
    ``...-level-id``): with two levels, the one it names gives the instances at
    instantiation."""
    doc = _strict_vnfd()
    df = doc["vnfd"]["df"][0]
    df["instantiation-level"].append({"id": "big", "vdu-level": [
        {"vdu-id": "main", "number-of-instances": 2}]})
    assert _back(copy.deepcopy(doc)).scaling.min == 1
    df["default-instantiation-level"] = "big"
    assert _back(doc).scaling.min == 2
