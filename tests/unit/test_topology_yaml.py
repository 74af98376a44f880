"""Unit tests for the YAML topology loader and check_file, including error messages."""
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.topology import check_file, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"

EXPLICIT = """\
name: tiny
defaults: {link: {bw_mbit: 100}, compute: {vcpu: 4, memory_mb: 1024, disk_gb: 10}}
switches: [s1, {name: s2, site: paris, lat: 48.8, lon: 2.3}]
links:
  - {a: s1, b: s2, delay_ms: 3}
endpoints:
  - {name: h1, switch: s1, ip: 10.0.0.7}
computes:
  - {name: n1, switch: s2, vcpu: 2}
"""


def _write(tmp_path, text, name="topo.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_fat_tree4():
    """topologies/fat_tree4.yaml builds a k=4 fat-tree with 100 Mbit/s links."""
    topo = load_topology(TOPOLOGIES / "fat_tree4.yaml")
    assert topo.name == "fat-tree-4"
    assert len(topo.switches()) == 20 and len(topo.endpoints()) == 16
    assert {link.bw_mbit for link in topo.links()} == {100}


def test_shipped_leaf_spine():
    """topologies/leaf_spine.yaml has 2 spines, 4 leaves, 8 servers and custom compute."""
    topo = load_topology(TOPOLOGIES / "leaf_spine.yaml")
    assert len(topo.switches()) == 6 and len(topo.endpoints()) == 8
    assert topo.computes["n1"].vcpu == 16


def test_shipped_small_wan():
    """topologies/small_wan.yaml has 4 sites with delayed links and needs netem."""
    topo = load_topology(TOPOLOGIES / "small_wan.yaml")
    assert topo.sites() == ["lisbon", "madrid", "paris", "frankfurt"]
    assert topo.needs_netem() and topo.summary()["max_link_delay_ms"] == 9.6
    assert topo.computes["n4"].vcpu == 32 and topo.computes["n1"].vcpu == 16


def test_check_file_summary_text():
    """check_file returns a printable summary with counts, capacity, diameter and netem."""
    text = check_file(TOPOLOGIES / "small_wan.yaml")
    for expected in ("small-wan", "switches       4", "compute nodes  4", "80 vCPU",
                     "diameter       2 hops", "9.6 ms", "needs netem    yes", "quirks"):
        assert expected in text


def test_explicit_form_with_defaults(tmp_path):
    """Explicit YAML applies defaults, accepts plain switch names, keeps explicit IPs."""
    topo = load_topology(_write(tmp_path, EXPLICIT))
    assert topo.name == "tiny"
    assert topo.links()[0].bw_mbit == 100 and topo.links()[0].delay_ms == 3
    assert topo.links()[1].bw_mbit is None  # access links do not take defaults.link
    assert topo.endpoint("h1").ip == "10.0.0.7"
    assert topo.computes["n1"].vcpu == 2 and topo.computes["n1"].memory_mb == 1024
    assert topo.switch("s2").lat == 48.8


def test_name_defaults_to_file_stem(tmp_path):
    """Without a name key the topology is named after the file."""
    topo = load_topology(_write(tmp_path, "builder: {type: linear, n: 2}\n", "my_line.yml"))
    assert topo.name == "my_line" and len(topo.switches()) == 2


@pytest.mark.parametrize("text, message", [
    ("name: x\nswitches: [s1, s2]\nlinks: [{a: s1, b: s2}, {a: s1, b: s2, bw: 5}]\n",
     r"topo.yaml: links\[1\].bw: unknown key 'bw'; known: a, b, bw_mbit, delay_ms, loss_pct"),
    ("switches: [s1, s2]\nlinks: [{a: s1, b: s2, bw_mbit: fast}]\n",
     r"links\[0\].bw_mbit: expected a number, got 'fast'"),
    ("switches: [s1, s2]\nlinks: [{a: s1, b: s3}]\n", r"links\[0\]: .*unknown switch 's3'"),
    ("switches: [s1]\nlinks: [{a: s1}]\n", r"links\[0\]: missing required key 'b'"),
    ("switches: [s1]\ncomputes: [{name: n1, switch: s1}]\n", "missing 'vcpu'"),
    ("switches: [{name: s1, dpid: one}]\n", r"switches\[0\].dpid: expected an integer"),
    ("switches: [s1, s2]\n", "disconnected"),
    ("switches: s1\n", "switches: expected a list"),
    ("colour: red\n", "unknown key 'colour'"),
    ("- just\n- a list\n", "expected a mapping"),
    ("", "expected a mapping"),
    ("switches: [s1\nlinks: []\n", r"line \d+, column \d+: invalid YAML"),
    ("builder: {type: torus, n: 3}\n", "unknown builder 'torus'; known: fat_tree"),
    ("builder: {type: fat_tree, k: 3}\n", r"builder \(fat_tree\): k must be even"),
    ("builder: {type: fat_tree, kk: 4}\n", "builder.kk: unknown parameter"),
    ("builder: {type: leaf_spine, spines: 2}\n", "needs leaves, servers_per_leaf"),
    ("builder: {type: fat_tree, k: 4}\nswitches: [s1]\n", "cannot be combined"),
    ("builder: fat_tree\n", "builder: expected a mapping"),
    ("switches: [s1]\nendpoints: [{name: h1, switch: s1, ip: 10.0.0.0}]\n",
     "not a host address"),
])
def test_bad_yaml_is_a_topology_error(tmp_path, text, message):
    """Every malformed YAML gives a TopologyError naming the file and the path to the field."""
    with pytest.raises(TopologyError, match=message) as info:
        load_topology(_write(tmp_path, text))
    assert str(info.value).startswith("topo.yaml")


def test_missing_file_and_unknown_suffix(tmp_path):
    """A missing file or an unsupported suffix is a TopologyError listing the supported types."""
    with pytest.raises(TopologyError, match="no such file"):
        load_topology(tmp_path / "absent.yaml")
    with pytest.raises(TopologyError, match=r"supported: \.yaml, \.yml, \.graphml, \.gml"):
        load_topology(_write(tmp_path, "x", "topo.json"))


def test_non_utf8_yaml(tmp_path):
    """A binary file with a .yaml suffix is a TopologyError, not a UnicodeDecodeError."""
    path = tmp_path / "topo.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TopologyError, match="topo.yaml"):
        load_topology(path)


def test_every_field_error_is_listed_at_once(tmp_path):
    """A file with several bad fields gets one TopologyError listing each, with the file,
    the field path, the value and what is valid (the descriptors' formatting)."""
    text = ("switches: [{name: s1, dpid: one}, {name: 3}]\n"
            "links: [{a: s1, b: s1, bw_mbit: fast}]\n"
            "defaults: {compute: {vcpu: 1.5}}\n")
    with pytest.raises(TopologyError) as info:
        load_topology(_write(tmp_path, text))
    lines = str(info.value).splitlines()
    assert lines == ["topo.yaml: defaults.compute.vcpu: expected an integer, got 1.5",
                     "topo.yaml: switches[0].dpid: expected an integer, got 'one'",
                     "topo.yaml: switches[1].name: expected a string, got a number 3",
                     "topo.yaml: links[0].bw_mbit: expected a number, got 'fast'"]
