"""Property tests (hypothesis): bad input never gives a traceback. Over topology files,
scenario parameters (``--set key=value``) and the controller's northbound JSON
(``ForwardingGraphSpec.from_dict``, the attachment document), whatever the input holds,
the result is a value or the surface's own error naming the field and the value, never
another exception.
(Descriptors: ``test_descriptor_properties.py``; the NFVO's API: ``test_nbi_schemathesis.py``.)
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed import errors
from testbed.controller.documents import check_attachment
from testbed.controller.specs import ForwardingGraphSpec
from testbed.errors import ControllerError, ForwardingGraphError, TopologyError
from testbed.experiment.engine import load_scenario
from testbed.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
TOPOLOGIES = sorted((REPO / "topologies").glob("*.yaml"))
SCENARIOS = sorted((REPO / "scenarios").glob("*.py"))
DELETE = object()

SCALARS = (st.none() | st.booleans() | st.integers(-3, 2**65) |
           st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8) |
           st.sampled_from(["s1", "h1", "10.0.0.1", "10.0.0.0", "02:00:00:00:00:01",
                            "fat_tree", "linear", "edge", "1e400", "-1", "0x10"]))
KEYS = st.text(max_size=6) | st.sampled_from(
    ["name", "switch", "switches", "links", "endpoints", "computes", "a", "b", "bw_mbit",
     "delay_ms", "loss_pct", "ip", "mac", "vcpu", "dpid", "role", "builder", "type", "k",
     "defaults", "link", "compute", "hops", "match", "priority", "protection", "rewrites"])
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) |
                      st.dictionaries(KEYS, c, max_size=3), max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for k, v in items:
        yield from _paths(v, (*prefix, k))


def _mutate(doc, path, value):
    if not path:
        return None if value is DELETE else value
    node = doc
    for k in path[:-1]:
        node = node[k]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@st.composite
def mutated(draw, docs):
    """A sample document with one field replaced, deleted or added."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths))
    value = draw(VALUES | st.just(DELETE))
    node = doc
    for k in path:
        node = node[k]
    if isinstance(node, dict) and draw(st.booleans()):
        path, value = (*path, draw(KEYS)), draw(VALUES)
    return _mutate(doc, path, value)


# ------------------------------------------------------------------------ topology files
TOPOLOGY_DOCS = [yaml.safe_load(p.read_text()) for p in TOPOLOGIES]


def _load_text(tmp_path_factory, text: str):
    path = tmp_path_factory.mktemp("topo") / "topo.yaml"
    path.write_text(text)
    return load_topology(path)


@given(doc=mutated(TOPOLOGY_DOCS) | VALUES)
def test_topology_file_gives_a_topology_or_a_topology_error(tmp_path_factory, doc):
    """Any YAML document as a topology file loads or fails with a TopologyError that starts
    with the file name and names a field path; nothing else escapes."""
    try:
        topo = _load_text(tmp_path_factory, yaml.safe_dump(doc))
    except TopologyError as exc:
        assert str(exc).startswith("topo.yaml"), exc
        assert ": " in str(exc)
    else:
        topo.validate()


@settings(max_examples=50)
@given(text=st.text(max_size=120))
def test_topology_file_of_any_text_gives_no_traceback(tmp_path_factory, text):
    """Any text (YAML syntax errors, tabs, anchors) as a topology file gives a Topology or a
    TopologyError naming the file."""
    try:
        _load_text(tmp_path_factory, text)
    except TopologyError as exc:
        assert str(exc).startswith("topo.yaml"), exc


GRAPHML = (REPO / "topologies" / "zoo")
ZOO_TEXT = sorted(p.read_text(errors="replace")[:3000] for p in GRAPHML.glob("*.g*ml"))[:4]


@settings(max_examples=50)
@given(suffix=st.sampled_from([".graphml", ".gml"]),
       data=st.binary(max_size=200) | st.sampled_from(ZOO_TEXT or ["graph ["]).flatmap(
           lambda t: st.integers(0, len(t)).map(lambda n: t[:n].encode())))
def test_zoo_file_of_any_bytes_gives_no_traceback(tmp_path_factory, suffix, data):
    """Any bytes (or a truncated real Topology Zoo file) as GraphML/GML give a Topology or
    a TopologyError naming the file."""
    path = tmp_path_factory.mktemp("zoo") / f"topo{suffix}"
    path.write_bytes(data)
    try:
        load_topology(path)
    except TopologyError as exc:
        assert str(exc).startswith(path.name), exc


# ------------------------------------------------------------ scenario --set parameters
def _params(path: Path) -> dict:
    return dict(load_scenario(path).params)


SCENARIO_PARAMS = {p: _params(p) for p in SCENARIOS}
RAW = (st.text(max_size=8) | st.sampled_from(
    ["nan", "inf", "-inf", "1e999", "-1", "0", "1.5", "true", "maybe", "yes", "off", ""]) |
    st.integers(-10, 10**6).map(str) | st.floats(allow_nan=True).map(str))


@st.composite
def overrides(draw):
    path = draw(st.sampled_from(SCENARIOS))
    known = sorted(SCENARIO_PARAMS[path]) or ["x"]
    keys = draw(st.lists(st.sampled_from(known) | st.text(max_size=5), max_size=3))
    return path, {k: draw(RAW) for k in keys}


@given(case=overrides())
def test_scenario_parameters_give_a_scenario_or_a_testbed_error(case):
    """Any ``--set key=value`` set on any shipped scenario builds the scenario (every
    number finite) or fails with a TestbedError naming the parameter and the value."""
    path, sets = case
    try:
        sc = load_scenario(path, overrides=sets)
    except errors.TestbedError as exc:
        msg = str(exc)
        assert "--set" in msg and any(k in msg for k in sets), msg
    else:
        for name, value in sc.params.items():
            if isinstance(value, float):
                assert math.isfinite(value), (name, value)


@pytest.mark.parametrize("raw, valid", [("maybe", "true or false"), ("nan", "finite"),
                                        ("1e999", "finite"), ("x", "integer")])
def test_a_bad_parameter_says_what_would_be_valid(raw, valid):
    """A bad ``--set`` value is refused with the parameter, the value and what is valid."""
    path = REPO / "scenarios" / "chain_heal_link.py"
    name = {"maybe": "protection", "x": "rate"}.get(raw, "cut_at")
    with pytest.raises(errors.TestbedError, match=valid) as info:
        load_scenario(path, overrides={name: raw})
    assert name in str(info.value) and repr(raw) in str(info.value)


# ------------------------------------------------------- controller northbound JSON
GRAPH = {"name": "web.fg1", "match": {"ip_proto": 17, "ipv4_src": "10.0.0.1"},
         "hops": ["h1", ["fw_1", "fw_2"], "h16"], "protection": False, "priority": 100,
         "rewrites": []}


@given(doc=mutated([GRAPH]) | VALUES)
def test_northbound_graph_json_gives_a_spec_or_a_graph_error(doc):
    """Any JSON body of ``PUT /v1/graphs/NAME`` parses to a spec or raises a
    ForwardingGraphError (the handler's 400), never another exception."""
    doc = json.loads(json.dumps(doc, allow_nan=True))
    try:
        ForwardingGraphSpec.from_dict(doc)
    except ForwardingGraphError as exc:
        assert str(exc)


ATTACHMENT = {"name": "fw_1", "switch": "s1", "port": 3, "mac": "02:00:00:00:00:01",
              "ip": "10.0.0.1"}


@given(doc=mutated([ATTACHMENT]) | VALUES)
def test_northbound_attachment_json_gives_a_document_or_a_controller_error(doc):
    """Any JSON body of ``PUT /v1/attachments/NAME`` checks to a document or raises a
    ControllerError naming the field (the handler's 400), never another exception."""
    doc = json.loads(json.dumps(doc, allow_nan=True))
    try:
        att = check_attachment(doc)
    except ControllerError as exc:
        assert str(exc).startswith("attachment")
    else:
        assert isinstance(att.port, int) and 1 <= att.port
