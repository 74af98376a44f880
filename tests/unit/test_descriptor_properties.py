"""Property tests (hypothesis, derandomized) of the descriptor readers: whatever a
descriptor holds, reading it gives a model or a ``DescriptorError`` naming the file, never
another exception; what is accepted survives the testbed's format and SOL006."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mano.descriptors import parse_nsd, parse_vnfd, read_descriptors
from mano.descriptors.readers.sol006 import read as read_sol006
from mano.descriptors.readers.sol006_write import vnfd_to_sol006
from mano.errors import DescriptorError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "descriptors"
SAMPLES = sorted([*DATA.rglob("*.yaml"), *(REPO / "descriptors").rglob("*.yaml")])
DOCS = {p: yaml.safe_load(p.read_text()) for p in SAMPLES}
PACKAGES = [DATA / "tacker-sol001" / "sample_vnf_package_csar", DATA / "sol001" / "scaling_vnf"]
DELETE = object()

# values a descriptor field might wrongly (or rightly) hold
SCALARS = (st.none() | st.booleans() | st.integers(-3, 70000) |
           st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6) |
           st.sampled_from(["1 GB", "512 MB", "0.5", "10.0.0.1", "10.0.0.1/8", "tcp", "80-90",
                            "../x.yaml", "VDU1", "tosca.nodes.nfv.Vdu.Compute",
                            "tosca.nodes.nfv.VNF", "tosca.policies.nfv.ScalingAspects",
                            "anti-affinity", "1", "cp0", "fw", "auto"]))
KEYS = st.text(max_size=5) | st.sampled_from(
    ["id", "type", "properties", "requirements", "vdu", "df", "get_input", "node",
     "number_of_instances", "targets", "nfpd", "path", "forwarder", "criteria", "imports"])
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
        return value if value is not DELETE else None
    node = doc
    for k in path[:-1]:
        node = node[k]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


@st.composite
def mutated(draw, doc):
    """A sample document with one to three nodes replaced or removed."""
    d = yaml.safe_load(yaml.safe_dump(doc))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(d))
        path = draw(st.sampled_from(paths))
        value = draw(st.just(DELETE) | VALUES) if path else draw(VALUES)
        d = _mutate(d, path, value)
    return d


def _read_ok_or_error(path: Path, files: list[str]):
    """Read ``path``: a refusal must begin with one of ``files`` (the file at fault)."""
    try:
        b = read_descriptors(path)
    except DescriptorError as e:
        head = str(e).split(": ")[0]
        assert any(head == f or head.endswith(f"/{f}") for f in files), str(e)
        return None
    for v in b.vnfds:            # whatever is accepted is a valid model
        assert parse_vnfd(v.to_dict(), "rt") == v
    for n in b.nsds:
        assert parse_nsd(n.to_dict(), "rt") == n
    return b


@settings(max_examples=400, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_change_to_any_sample_reads_or_is_refused_never_a_traceback(data):
    """Replacing or deleting up to three nodes of any sample (every format) gives a model
    or a DescriptorError naming the file; accepted models round-trip."""
    src = data.draw(st.sampled_from(SAMPLES))
    doc = data.draw(mutated(DOCS[src]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for sibling in src.parent.glob("*.yaml"):      # imports next to the file
            shutil.copy(sibling, folder / sibling.name)
        f = folder / src.name
        f.write_text(yaml.safe_dump(doc, allow_unicode=True))
        _read_ok_or_error(f, [p.name for p in folder.iterdir()])


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_change_inside_a_csar_reads_or_is_refused_never_a_traceback(data):
    """A CSAR with one definitions file changed anywhere (or TOSCA.meta garbled) reads or
    is refused naming the package's file."""
    pkg = data.draw(st.sampled_from(PACKAGES))
    files = sorted(p for p in pkg.rglob("*") if p.is_file())
    target = data.draw(st.sampled_from(files))
    rel = target.relative_to(pkg)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / pkg.name
        shutil.copytree(pkg, copy)
        if target.suffix == ".yaml":
            doc = data.draw(mutated(yaml.safe_load(target.read_text())))
            (copy / rel).write_text(yaml.safe_dump(doc, allow_unicode=True))
        else:
            (copy / rel).write_text(data.draw(st.text(max_size=80)))
        _read_ok_or_error(copy, [pkg.name, *(f"{pkg.name}/{p.relative_to(pkg).as_posix()}"
                                             for p in files)])


@settings(max_examples=150, derandomize=True, deadline=None, database=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_read_or_are_refused(content):
    """Arbitrary bytes or text in a descriptor file give a DescriptorError (or, rarely, a
    model), never another exception."""
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "d.yaml"
        if isinstance(content, bytes):
            f.write_bytes(content)
        else:
            f.write_text(content)
        _read_ok_or_error(f, ["d.yaml"])


@settings(max_examples=100, derandomize=True, deadline=None, database=None)
@given(vcpu=st.sampled_from([0.1, 0.25, 0.5, 1, 1.5, 2, 8]), memory_mb=st.integers(1, 65536),
       disk=st.integers(0, 20), lo=st.integers(1, 4), extra=st.integers(0, 6),
       step=st.integers(1, 6), anti=st.booleans(),
       program=st.sampled_from(["forwarder", "firewall"]), cost=st.sampled_from([0, 0.5, 200]),
       healing=st.sampled_from(["restart", "recreate"]), interval=st.sampled_from([0.5, 1, 30]))
def test_vnfds_read_back_equal_from_strict_sol006(vcpu, memory_mb, disk, lo, extra, step, anti,
                                                  program, cost, healing, interval):
    """A VNFD written as strict SOL006 and read back is the same model (flavour with a
    fractional vCPU and any memory, program and params, scaling, placement, monitoring,
    healing)."""
    hi = lo + extra
    step = 1 if hi == lo else min(step, hi - lo)
    if extra and extra % step:            # SOL006 scales in whole steps from the minimum
        hi = lo + (extra // step) * step
    step = 1 if hi == lo else step
    v = parse_vnfd({"vnfd": {
        "id": "p", "vdu": [{"id": "u", "flavour": {"vcpu": vcpu, "memory_mb": memory_mb,
                                                   "disk_gb": disk},
                            "image": {"program": program, "params": {"cost_us": cost}}}],
        "scaling": {"min": lo, "max": hi, "step": step},
        "monitoring": [{"id": "cpu", "metric": "cpu_util", "interval_s": interval}],
        "healing": {"mode": healing, "max_restarts": 2},
        "placement": {"anti_affinity": anti}}}, "p.yaml")
    doc, _ = vnfd_to_sol006(v)
    (back,) = read_sol006(yaml.safe_load(yaml.safe_dump(doc)), "p.yaml").vnfds
    assert back == v
