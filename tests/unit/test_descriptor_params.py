"""Parameter files: the values of a TOSCA template's ``topology_template.inputs``, given at
check, convert and onboarding time as Tacker takes them (``--param-file``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_nfvo import FakeDriver  # tests/unit is on sys.path (rootdir-relative)

from mano.descriptors import Parameters, read_descriptors
from mano.errors import DescriptorError
from mano.nfvo import NFVO
from testbed.cli import main
from testbed.experiment.engine import run_scenario

REPO = Path(__file__).resolve().parents[2]
LEGACY = REPO / "tests" / "data" / "descriptors" / "tacker-legacy"
TACKER = "tosca_simple_profile_for_nfv_1_0_0"


def _write(path: Path, doc) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _vnffgd(path: Path, inputs: dict, criterion: dict) -> Path:
    """A Tacker VNFFGD over fwd and fwd2 with one ACL criterion and these inputs."""
    return _write(path, {"tosca_definitions_version": TACKER, "topology_template": {
        "inputs": inputs,
        "node_templates": {"Forwarding_path1": {
            "type": "tosca.nodes.nfv.FP.Tacker",
            "properties": {"id": 1, "policy": {"type": "ACL", "criteria": [criterion]},
                           "path": [{"forwarder": f, "capability": "CP1"}
                                    for f in ("fwd", "fwd2")]}}}}})


def _refused(path, params, *parts) -> str:
    with pytest.raises(DescriptorError) as err:
        read_descriptors(path, params)
    for p in parts:
        assert p in str(err.value), str(err.value)
    return str(err.value)


def test_tackers_own_parameter_file_gives_the_vnffgds_inputs(tmp_path):
    """Tacker's parameterised VNFFGD sample reads with a parameter file in the layout of
    Tacker's (its port range narrowed to one port): the classifier takes the given
    destination prefix and port, and the Neutron port parameter only warns."""
    params = _write(tmp_path / "p.yaml", {"net_src_port_id": "640dfd77",
                                          "dst_port_range": "80-80",
                                          "ip_dst_pre": "192.168.1.2/24"})
    b = read_descriptors(LEGACY / "vnffgd" / "tosca-vnffgd-param-sample.yaml",
                         Parameters.load(params))
    (n,) = b.nsds
    assert n.vnffg[0].classifier == {"ip_proto": 6, "ipv4_dst": "192.168.1.0/24",
                                     "tcp_dst": 80}
    assert any("network_src_port_id: a Neutron port" in w for w in b.warnings)


def test_tackers_sample_with_its_sample_param_file_gets_past_the_inputs():
    """Tacker's parameterised VNFFGD with Tacker's own parameter file, both unmodified:
    every input is given, and the refusal that remains is the 80-1024 port range the
    parameter file gives (the classifier matches one port), naming that field."""
    _refused(LEGACY / "vnffgd" / "tosca-vnffgd-param-sample.yaml",
             Parameters.load(LEGACY / "vnffgd" / "vnffg-param-file.yaml"),
             "criteria[0].destination_port_range: port range '80-1024'")


def test_a_missing_input_without_default_is_refused_naming_the_param_file(tmp_path):
    """Without a parameter file (or with one lacking the input) an input without default
    is refused naming the field and saying to give it with --param-file."""
    f = LEGACY / "vnffgd" / "tosca-vnffgd-param-sample.yaml"
    for params in (None, Parameters.of({"ip_dst_pre": "10.0.0.16/32"}, "p.yaml")):
        _refused(f, params, "criteria[0].destination_port_range: input 'dst_port_range' has "
                            "no default and no parameter gives it: give it in a parameter "
                            "file (--param-file)")


def test_an_unknown_parameter_is_refused_naming_the_inputs():
    """A parameter no input declares is refused naming the parameter file, the name and
    every declared input."""
    _refused(LEGACY / "vnffgd" / "tosca-vnffgd-param-sample.yaml",
             Parameters.of({"dst_ports": "80"}, "p.yaml"),
             "p.yaml: dst_ports: unknown parameter: the descriptor's inputs are "
             "net_src_port_id, dst_port_range, ip_dst_pre")


def test_a_parameter_of_the_wrong_type_is_refused_naming_the_declared_type(tmp_path):
    """An integer input given a string (and a string input given a mapping, a boolean
    input given 1) is refused naming the input's declared type; a right-typed value is
    used."""
    f = _vnffgd(tmp_path / "fg.yaml", {
        "proto": {"type": "integer"}, "dst": {"type": "string"},
        "strict": {"type": "boolean", "default": False}},
        {"ip_proto": {"get_input": "proto"}, "ip_dst_prefix": {"get_input": "dst"}})
    _refused(f, Parameters.of({"proto": "6", "dst": "10.0.0.16/32"}, "p.yaml"),
             "p.yaml: proto: expected integer (the type of input 'proto' at fg.yaml: "
             "topology_template.inputs.proto), got str '6'")
    _refused(f, Parameters.of({"proto": 6, "dst": {"a": 1}}, "p.yaml"),
             "p.yaml: dst: expected string")
    _refused(f, Parameters.of({"proto": 6, "dst": "x", "strict": 1}, "p.yaml"),
             "p.yaml: strict: expected boolean")
    (n,) = read_descriptors(f, Parameters.of({"proto": 17, "dst": "10.0.0.16/32"})).nsds
    assert n.vnffg[0].classifier == {"ip_proto": 17, "ipv4_dst": "10.0.0.16"}


def test_tackers_ns_parameter_layout_and_a_bad_file_are_read(tmp_path):
    """A parameter file whose one key is ``nsd`` (Tacker's NS parameter files) holds the
    values; a file that is not a mapping is refused naming it."""
    f = _vnffgd(tmp_path / "fg.yaml", {"dst": {"type": "string"}},
                {"ip_dst_prefix": {"get_input": "dst"}})
    p = _write(tmp_path / "ns_param.yaml", {"nsd": {"dst": "10.0.0.16/32"}})
    (n,) = read_descriptors(f, Parameters.load(p)).nsds
    assert n.vnffg[0].classifier == {"ipv4_dst": "10.0.0.16"}
    _refused(f, Parameters.of({"nsd": {"dsst": "x"}}, "ns_param.yaml"),
             "ns_param.yaml: nsd.dsst: unknown parameter")
    (tmp_path / "list.yaml").write_text("- dst\n")
    with pytest.raises(DescriptorError, match=r"list.yaml: \(top\): expected a mapping of "
                                              r"input names to values"):
        Parameters.load(tmp_path / "list.yaml")


def test_formats_without_inputs_refuse_parameters(tmp_path):
    """The testbed's own format and a catalogue folder (no inputs) refuse parameters
    naming the parameter, not silently dropping them; a SOL001 package refuses one it
    does not declare, naming the inputs it does."""
    _refused(REPO / "tests" / "data" / "descriptors" / "sol001" / "scaling_vnf",
             Parameters.of({"x": 1}, "p.yaml"),
             "p.yaml: x: unknown parameter: the descriptor's inputs are selected_flavour")
    _refused(REPO / "descriptors" / "vnfd" / "fw.yaml", Parameters.of({"x": 1}, "p.yaml"),
             "p.yaml: x: fw.yaml (the testbed's format) declares no inputs")
    _refused(REPO / "descriptors", Parameters.of({"x": 1}, "p.yaml"),
             "p.yaml: x: a catalogue folder")
    assert read_descriptors(REPO / "descriptors" / "vnfd" / "fw.yaml",
                            Parameters.of({}, "p.yaml")).vnfds


def test_descriptor_check_and_convert_take_a_param_file(tmp_path, capsys):
    """``testbed descriptor check|convert PATH --param-file FILE`` read the template with
    the file's values; without the file the same template is an error (exit 2) saying
    to give it."""
    f = _vnffgd(tmp_path / "fg.yaml", {"dst": {"type": "string"}},
                {"ip_proto": 17, "ip_dst_prefix": {"get_input": "dst"}})
    p = _write(tmp_path / "p.yaml", {"dst": "10.0.0.16/32"})
    assert main(["descriptor", "check", str(f), "--param-file", str(p)]) == 0
    assert "udp any -> 10.0.0.16" in capsys.readouterr().out
    assert main(["descriptor", "check", str(f)]) == 2
    assert "give it in a parameter file (--param-file)" in capsys.readouterr().err
    out = tmp_path / "native"
    assert main(["descriptor", "convert", str(f), "--to", "native", "--out", str(out),
                 "--param-file", str(p)]) == 0
    (nsd,) = (out / "nsd").glob("*.yaml")
    assert yaml.safe_load(nsd.read_text())["nsd"]["vnffg"][0]["classifier"]["ipv4_dst"] == \
        "10.0.0.16"


def test_nfvo_onboarding_takes_params(tmp_path):
    """``NFVO.onboard(path, params=...)`` (and ``onboard_nsd``) read the template with the
    given values; a wrong name is refused and nothing is onboarded."""
    n = NFVO(FakeDriver(), tmp_path / "db.sqlite")
    try:
        for v in ("fwd", "fwd2"):
            n.onboard_vnfd(REPO / "descriptors" / "vnfd" / f"{v}.yaml")
        f = _vnffgd(tmp_path / "fg.yaml", {"dst": {"type": "string"}},
                    {"ip_proto": 17, "ip_dst_prefix": {"get_input": "dst"}})
        with pytest.raises(DescriptorError, match="params: dsst: unknown parameter"):
            n.onboard(f, params={"dsst": "10.0.0.16/32"})
        assert n.store.list_nsds() == []
        res = n.onboard(f, params={"dst": "10.0.0.16/32"})
        assert n.nsd(res["nsds"][0]).vnffg[0].classifier["ipv4_dst"] == "10.0.0.16"
        assert n.onboard_nsd(f, params=Parameters.of({"dst": "10.0.0.15/32"})) == "fg"
        assert n.nsd("fg").vnffg[0].classifier["ipv4_dst"] == "10.0.0.15"
    finally:
        n.close()


SCENARIO = '''
DURATION = 2


def build(s):
    s.topology("topologies/fat_tree4.yaml")
    s.onboard("NSD", vnfds=["fwd", "fwd2"], params={"dst": "10.0.0.16/32"})
    s.instantiate("fg", "web")
    s.load("web", {"type": "constant", "rate": 100})
    s.expect(healthy_at_end=True)
'''


def test_a_scenario_onboards_a_template_with_params(tmp_path):
    """A scenario's ``s.onboard(..., params=...)`` gives a Tacker VNFFGD's input: the NS is
    instantiated on the simulated NFVI and the run passes."""
    f = _vnffgd(tmp_path / "fg.yaml", {"dst": {"type": "string"}},
                {"ip_proto": 17, "ip_dst_prefix": {"get_input": "dst"}})
    scen = tmp_path / "with_params.py"
    scen.write_text(SCENARIO.replace("NSD", str(f)))
    run = run_scenario(scen, seed=1, results_dir=tmp_path / "runs", nfvi="simulated")
    s = json.loads((run / "summary.json").read_text())
    assert s["passed"], s
