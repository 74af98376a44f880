"""Unit tests for the Topology Zoo GraphML/GML loader and its documented quirk handling."""
from pathlib import Path

import networkx as nx
import pytest

from testbed.errors import TopologyError
from testbed.topology import check_file, load_topology

ZOO = Path(__file__).resolve().parents[2] / "topologies" / "zoo"   # CC-BY-4.0, see LICENSE
ZOO_FILES = sorted(ZOO.glob("*.graphml"))
needs_zoo = pytest.mark.skipif(not ZOO_FILES, reason=f"no Topology Zoo files in {ZOO}")

HEADER = """<?xml version="1.0" encoding="utf-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key attr.name="label" attr.type="string" for="node" id="d0"/>
  <key attr.name="Latitude" attr.type="{lat_type}" for="node" id="d1"/>
  <key attr.name="Longitude" attr.type="double" for="node" id="d2"/>
  <key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="d3"/>
  <graph edgedefault="undirected">
"""


def graphml(tmp_path, body, lat_type="double", name="adv.graphml"):
    """Write a small GraphML file with the zoo's node/edge keys around ``body``."""
    path = tmp_path / name
    path.write_text(HEADER.format(lat_type=lat_type) + body + "  </graph>\n</graphml>\n")
    return path


def node(i, label=None, lat=None, lon=None):
    data = "".join(f'<data key="{k}">{v}</data>'
                   for k, v in (("d0", label), ("d1", lat), ("d2", lon)) if v is not None)
    return f'    <node id="{i}">{data}</node>\n'


def edge(a, b, speed=None):
    data = f'<data key="d3">{speed}</data>' if speed is not None else ""
    return f'    <edge source="{a}" target="{b}">{data}</edge>\n'


TRIANGLE = (node(0, "Lisbon", 38.72, -9.14) + node(1, "Madrid", 40.42, -3.70)
            + node(2, "Paris", 48.86, 2.35))


@needs_zoo
@pytest.mark.parametrize("path", ZOO_FILES, ids=lambda p: p.stem)
def test_every_zoo_file_loads(path):
    """Each shipped zoo file loads into a valid WAN: one site switch, endpoint, compute per node."""
    topo = load_topology(path)
    raw = nx.read_graphml(path)
    assert len(topo.switches()) == raw.number_of_nodes()
    assert len(topo.endpoints()) == len(topo.computes) == raw.number_of_nodes()
    assert {s.role for s in topo.switches()} == {"site"}
    assert topo.computes["n1"].vcpu == 16 and topo.computes["n1"].disk_gb == 1000
    assert all(len(s.name) <= 10 for s in topo.switches())
    assert "quirks handled" in check_file(path)


@needs_zoo
def test_abilene_delay_from_distance():
    """Abilene links get haversine delay at 200 km/ms: New York-Chicago is about 5.7 ms."""
    topo = load_topology(ZOO / "Abilene.graphml")
    labels = {s.name: s.label for s in topo.switches()}
    ny_chicago = [link for link in topo.links()
                  if {labels.get(link.a), labels.get(link.b)} == {"New York", "Chicago"}]
    assert len(ny_chicago) == 1 and 5.5 < ny_chicago[0].delay_ms < 6.0
    assert topo.quirks == [] and topo.needs_netem()


@needs_zoo
def test_attmpls_parallel_edges_merged():
    """AttMpls's 57 edges (one parallel pair) become 56 links, and the merge is a quirk."""
    topo = load_topology(ZOO / "AttMpls.graphml")
    assert topo.summary()["switch_links"] == 56
    assert any("merged 1 parallel edge" in q for q in topo.quirks)


@needs_zoo
def test_internet2_without_coordinates():
    """Internet2 has no coordinates: every link has delay 0 and the quirk is noted."""
    topo = load_topology(ZOO / "Internet2.graphml")
    assert not topo.needs_netem()
    assert any("20 of 20 node(s) without coordinates" in q for q in topo.quirks)
    assert any("without a label" in q for q in topo.quirks)


@needs_zoo
def test_geant_link_speed():
    """Geant2012's LinkSpeedRaw (bits/s) becomes bw_mbit; links without it stay unshaped."""
    speeds = {link.bw_mbit for link in load_topology(ZOO / "Geant2012.graphml").links()}
    assert 10000.0 in speeds and 155.0 in speeds and None in speeds


@needs_zoo
def test_zoo_graphml_converted_to_gml(tmp_path):
    """A zoo graph written as GML (id + label) loads like the GraphML original."""
    raw = nx.read_graphml(ZOO / "Abilene.graphml")
    labelled = nx.relabel_nodes(raw, {n: d.pop("label") for n, d in raw.nodes(data=True)})
    nx.write_gml(labelled, tmp_path / "Abilene.gml")
    from_gml = load_topology(tmp_path / "Abilene.gml")
    from_graphml = load_topology(ZOO / "Abilene.graphml")
    assert [s.label for s in from_gml.switches()] == [s.label for s in from_graphml.switches()]
    assert from_gml.links() == from_graphml.links()


def test_self_loop_dropped(tmp_path):
    """A self-loop is dropped and recorded as a quirk naming the node."""
    path = graphml(tmp_path, TRIANGLE + edge(0, 1) + edge(1, 2) + edge(1, 1))
    topo = load_topology(path)
    assert topo.summary()["switch_links"] == 2
    assert any("self-loop" in q and "Madrid" in q for q in topo.quirks)


def test_parallel_edges_merged_with_summed_bandwidth(tmp_path):
    """Parallel edges become one link whose bandwidth is the sum of the known speeds."""
    path = graphml(tmp_path, TRIANGLE + edge(0, 1, 1e9) + edge(0, 1, 1e9) + edge(1, 2, 1e8)
                   + edge(1, 2))
    topo = load_topology(path)
    bws = [link.bw_mbit for link in topo.links()[:2]]
    assert bws == [2000.0, 100.0]
    assert any("merged 2 parallel edge" in q for q in topo.quirks)


def test_duplicate_labels_keep_unique_names(tmp_path):
    """Duplicate labels stay labels; switch names and site names stay unique; quirk noted."""
    body = node(0, "Hub", 1, 1) + node(1, "Hub", 2, 2) + edge(0, 1)
    topo = load_topology(graphml(tmp_path, body))
    assert [s.name for s in topo.switches()] == ["s1", "s2"]
    assert [s.label for s in topo.switches()] == ["Hub", "Hub"]
    assert len(set(topo.sites())) == 2
    assert any("duplicate label" in q and "'Hub' (s1, s2)" in q for q in topo.quirks)


def test_missing_labels_use_ids(tmp_path):
    """Nodes without labels are labelled by their id, and the quirk lists them."""
    topo = load_topology(graphml(tmp_path, node("a") + node("b") + edge("a", "b")))
    assert [s.label for s in topo.switches()] == ["a", "b"]
    assert any("2 node(s) without a label" in q for q in topo.quirks)


def test_disconnected_refused_or_largest_kept(tmp_path):
    """A disconnected graph is refused naming its parts, unless largest_component=True."""
    path = graphml(tmp_path, TRIANGLE + node(3, "Oslo") + edge(0, 1) + edge(1, 2))
    with pytest.raises(TopologyError, match=r"2 disconnected parts.*'Oslo'.*largest_component"):
        load_topology(path)
    topo = load_topology(path, largest_component=True)
    assert len(topo.switches()) == 3
    assert any("kept the largest" in q and "Oslo" in q for q in topo.quirks)
    assert "Oslo" in check_file(path, largest_component=True)


def test_non_numeric_latitude_declared_as_string(tmp_path):
    """A non-numeric Latitude stored as a string is treated as missing, naming the node."""
    body = node(0, "Lisbon", "north", -9.14) + node(1, "Madrid", 40.42, -3.70) + edge(0, 1)
    topo = load_topology(graphml(tmp_path, body, lat_type="string"))
    assert topo.links()[0].delay_ms == 0.0
    assert any("s1 ('Lisbon'): Latitude 'north' is not a number" in q for q in topo.quirks)


def test_non_numeric_latitude_declared_as_double(tmp_path):
    """A Latitude that contradicts its declared double type is an error naming node and value."""
    body = node(0, "Lisbon", "north", -9.14) + node(1, "Madrid", 40.42, -3.70) + edge(0, 1)
    with pytest.raises(TopologyError, match=r"node '0': attribute 'Latitude' = 'north'"):
        load_topology(graphml(tmp_path, body))


def test_malformed_xml(tmp_path):
    """Malformed XML is a TopologyError with the file name and position."""
    path = tmp_path / "broken.graphml"
    path.write_text("<graphml><graph><node id='0'></graph>")
    with pytest.raises(TopologyError, match=r"broken.graphml: line 1, column \d+: malformed XML"):
        load_topology(path)


def test_empty_graph(tmp_path):
    """A graph without nodes is refused."""
    with pytest.raises(TopologyError, match="adv.graphml: the graph has no nodes"):
        load_topology(graphml(tmp_path, ""))


def test_single_isolated_node_is_valid(tmp_path):
    """A one-node graph is a one-site WAN with no links between switches."""
    topo = load_topology(graphml(tmp_path, node(0, "Solo")))
    assert len(topo.switches()) == 1 and topo.summary()["switch_links"] == 0


def test_directed_graph_becomes_undirected(tmp_path):
    """A directed GraphML graph is read as undirected links and noted as a quirk."""
    path = graphml(tmp_path, TRIANGLE + edge(0, 1) + edge(1, 2))
    path.write_text(path.read_text().replace('edgedefault="undirected"',
                                             'edgedefault="directed"'))
    topo = load_topology(path)
    assert topo.summary()["switch_links"] == 2
    assert any("directed" in q for q in topo.quirks)


GML_HEAD = "graph [\n"
GML_NODES = ('  node [ id 0 label "A" Latitude 10.0 Longitude 10.0 ]\n'
             '  node [ id 1 label "B" Latitude 10.0 Longitude 11.0 ]\n')


def test_gml_parallel_edges_without_multigraph_flag(tmp_path):
    """GML with duplicate edges but no 'multigraph 1' is read as a multigraph and merged."""
    path = tmp_path / "par.gml"
    path.write_text(GML_HEAD + GML_NODES + "  edge [ source 0 target 1 ]\n"
                    "  edge [ source 1 target 0 ]\n]\n")
    topo = load_topology(path)
    assert topo.summary()["switch_links"] == 1
    assert 0.5 < topo.links()[0].delay_ms < 0.6  # about 109 km
    assert any("parallel" in q for q in topo.quirks)


def test_gml_duplicate_labels_and_self_loop(tmp_path):
    """GML duplicate labels (which networkx refuses by default) and self-loops are handled."""
    path = tmp_path / "dup.gml"
    path.write_text(GML_HEAD + GML_NODES.replace('"B"', '"A"')
                    + "  edge [ source 0 target 1 ]\n  edge [ source 0 target 0 ]\n]\n")
    topo = load_topology(path)
    assert [s.label for s in topo.switches()] == ["A", "A"]
    assert any("self-loop" in q for q in topo.quirks)
    assert any("duplicate label" in q for q in topo.quirks)


@pytest.mark.parametrize("text", ["graph [ node [ id 0 ", "not gml at all", "graph [ ]"])
def test_gml_malformed_or_empty(tmp_path, text):
    """Malformed or empty GML is a TopologyError naming the file."""
    path = tmp_path / "bad.gml"
    path.write_text(text)
    with pytest.raises(TopologyError, match="bad.gml"):
        load_topology(path)
