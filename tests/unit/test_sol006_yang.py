"""What ``testbed descriptor convert --to sol006`` writes, validated against ETSI's SOL006
YANG modules (yangson; see ``sol006_yang``): strict SOL006, no departure at all. The SOL006
descriptors OSM writes (the samples the readers accept, and ``convert --to osm``) follow
OSM's information model: a few members of its own, SOL006 2.x's forwarding-path layout and
some ETSI-mandatory nodes left out. Each such departure is listed below with its reason;
anything else an OSM document does that the schema does not allow fails the test."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from sol006_yang import Deviation, data_model, deviations

from mano.descriptors import read_descriptors
from mano.descriptors.readers.osm_write import nsd_to_osm, vnfd_to_osm
from mano.descriptors.readers.sol006_write import nsd_to_sol006, vnfd_to_sol006
from mano.errors import DescriptorError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "descriptors"
SAMPLES = sorted([*(DATA / "sol006").glob("*.yaml"), *(DATA / "osm-nbi").glob("*.yaml")])
# every descriptor the testbed ships and every sample of tests/data it reads
SOURCES = [*sorted((REPO / "descriptors" / "vnfd").glob("*.yaml")),
           *sorted((REPO / "descriptors" / "nsd").glob("*.yaml")),
           *(p for p in sorted(DATA.glob("*/*.yaml")) + sorted(DATA.glob("*/*/*.yaml"))
             + [DATA / "sol001" / "scaling_vnf",
                DATA / "tacker-sol001" / "sample_vnf_package_csar"]
             if "tacker-legacy/nsd" not in str(p))]


def _models():
    """(name, VNFD or NSD) of every source the readers accept (the others are refused
    naming the field: tests/unit/test_descriptor_formats.py)."""
    out = []
    for p in SOURCES:
        try:
            b = read_descriptors(p)
        except DescriptorError:
            continue
        out += [(f"{p.name}:{d.id}", d) for d in [*b.vnfds, *b.nsds]]
    return out


MODELS = _models()


def _written(model, vnfd_writer, nsd_writer) -> dict:
    return (vnfd_writer if hasattr(model, "vdus") else nsd_writer)(model)[0]


OSM_MEMBERS = "a member of OSM's information model, not of ETSI SOL006"
OSM_OMITS = "mandatory in ETSI SOL006; OSM's information model leaves it out"
OSM_VNFFG = ("OSM writes an NFP as position-desc-id/cp-profile-id/match-attributes "
             "(SOL006 2.x layout); SOL006 3.x has position-desc and nfp-position-element")
MANDATORY_CONTAINER = ("mandatory in ETSI SOL006 3.6.1 (a container holding a mandatory "
                       "node is itself mandatory, RFC 7950 §3); OSM's information model "
                       "leaves it out")
DIGITS = ("OSM writes memory in GB with more fraction digits than the one of SOL006's "
          "decimal64")
V331 = "SOL006 3.3.1 layout (OSM's); 3.5.1 moved it into block-storage-data"

KNOWN: dict[tuple[str, str], str] = {}
for path in ("vnfd/description", "vnfd/mgmt-cp", "vnfd/vdu/cloud-init-file", "vnfd/vdu/alarm",
             "vnfd/vdu/int-cpd/virtual-network-interface-requirement/virtual-interface",
             "vnfd/vdu/int-cpd/virtual-network-interface-requirement/position",
             "vnfd/df/vdu-profile/affinity-or-anti-affinity-group",
             "vnfd/df/affinity-or-anti-affinity-group/type",
             "nsd/nsd/description", "nsd/nsd/virtual-link-desc/mgmt-network",
             "nsd/nsd/df/vnf-profile/virtual-link-connectivity/constituent-cpd-id/ip-address"):
    KNOWN[(path, "unknown member")] = OSM_MEMBERS
KNOWN[("vnfd/virtual-storage-desc/size-of-storage", "unknown member")] = V331
KNOWN[("vnfd/virtual-compute-desc/virtual-memory/size", "wrong type")] = DIGITS
for path, names in (("vnfd", ("provider", "software-version", "vnfm-info")),
                    ("vnfd/sw-image-desc", ("version", "checksum", "min-disk", "size")),
                    ("vnfd/sw-image-desc/checksum", ("hash", "algorithm")),
                    ("vnfd/vdu/int-cpd/virtual-network-interface-requirement",
                     ("network-interface-requirements",)),
                    ("vnfd/df/affinity-or-anti-affinity-group", ("affinityorAntiaffinity",)),
                    ("vnfd/int-virtual-link-desc", ("connectivity-type",)),
                    ("vnfd/int-virtual-link-desc/connectivity-type", ("layer-protocol",)),
                    ("nsd/nsd/virtual-link-desc", ("connectivity-type",)),
                    ("nsd/nsd/virtual-link-desc/connectivity-type", ("layer-protocol",)),
                    ("nsd/nsd/df", ("ns-instantiation-level",)),
                    ("nsd/nsd/df/vnf-profile", ("flavour-id", "instantiation-level"))):
    for name in names:
        KNOWN[(path, f"missing {name}")] = OSM_OMITS
for path, kind in (("nsd/nsd/vnffgd/nfpd/position-desc-id", "unknown member"),
                   ("nsd/nsd/vnffgd", "missing nfp-position-element"),
                   ("nsd/nsd/vnffgd/nfpd", "missing position-desc"),
                   ("nsd/nsd/vnffgd/nfp-position-element", "missing desc"),
                   ("nsd/nsd/vnffgd/nfp-position-element/desc", "missing-choice"),
                   ("nsd/nsd/vnffgd/nfp-position-element", "missing-data")):
    KNOWN[(path, kind)] = OSM_VNFFG
for path, names in (("vnfd/df", ("lcm-operations-configuration",)),
                    ("vnfd/df/lcm-operations-configuration",
                     ("create-snapshot-vnf-op-config", "revert-to-snapshot-vnf-op-config")),
                    ("vnfd/df/lcm-operations-configuration/create-snapshot-vnf-op-config",
                     ("parameter",)),
                    ("vnfd/df/lcm-operations-configuration/revert-to-snapshot-vnf-op-config",
                     ("parameter",)),
                    ("vnfd/df/vdu-profile", ("nfvi-maintenance-info",)),
                    ("vnfd/int-virtual-link-desc", ("nfvi-maintenance-info",)),
                    ("vnfd/df/vdu-profile/nfvi-maintenance-info",
                     ("impact-notification-lead-time",)),
                    ("vnfd/int-virtual-link-desc/nfvi-maintenance-info",
                     ("impact-notification-lead-time",))):
    for name in names:
        KNOWN[(path, f"missing {name}")] = MANDATORY_CONTAINER


def _osm_written() -> dict[str, dict]:
    """What ``descriptor convert --to osm`` writes for every model it can write (a VNFD
    with program parameters is refused with a message instead)."""
    out = {}
    for name, m in MODELS:
        try:
            out[name] = _written(m, vnfd_to_osm, nsd_to_osm)
        except DescriptorError:
            pass
    return out


OSM_WRITTEN = _osm_written()


def _unexplained(doc) -> list[Deviation]:
    return [d for d in deviations(doc) if (d.path, d.kind) not in KNOWN]


def test_the_sol006_modules_load():
    """ETSI's SOL006 modules (and the IETF types they import) compile into one data model
    with the vnfd and nsd top-level containers."""
    dm = data_model()
    assert dm.schema.get_data_child("vnfd", "etsi-nfv-vnfd") is not None
    assert dm.schema.get_data_child("nsd", "etsi-nfv-nsd") is not None


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sol006_samples_follow_the_yang(path):
    """Each SOL006/OSM sample departs from ETSI SOL006 only as OSM's information model
    does (the table above), and the testbed reads it or refuses it naming the field."""
    assert _unexplained(yaml.safe_load(path.read_text())) == []
    try:
        assert read_descriptors(path)
    except DescriptorError as exc:
        assert str(exc).startswith(path.name + ": ")


@pytest.mark.parametrize("name, model", MODELS, ids=[n for n, _ in MODELS])
def test_converted_descriptors_are_strict_sol006(name, model):
    """What ``descriptor convert --to sol006`` writes for every shipped descriptor and
    every sample the testbed reads validates against ETSI's SOL006 3.6.1 YANG with no
    departure at all."""
    doc = _written(model, vnfd_to_sol006, nsd_to_sol006)
    assert deviations(yaml.safe_load(yaml.safe_dump(doc))) == []


@pytest.mark.parametrize("name", sorted(OSM_WRITTEN))
def test_osm_output_departs_only_as_osm_does(name):
    """What ``descriptor convert --to osm`` writes departs from ETSI SOL006 only as OSM's
    information model does (the table above)."""
    assert _unexplained(OSM_WRITTEN[name]) == []


def test_every_listed_departure_is_still_seen():
    """The table of departures lists nothing that no document shows any more."""
    docs = [yaml.safe_load(p.read_text()) for p in SAMPLES] + list(OSM_WRITTEN.values())
    seen = {(d.path, d.kind) for doc in docs for d in deviations(doc)}
    assert sorted(set(KNOWN) - seen) == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["vnfd"].update(vdus=d["vnfd"].pop("vdu")), ("vnfd/vdus", "unknown member")),
    (lambda d: d["vnfd"]["virtual-compute-desc"][0]["virtual-cpu"].update(
        {"num-virtual-cpu": "two"}), ("vnfd/virtual-compute-desc/virtual-cpu/num-virtual-cpu",
                                      "wrong type")),
    (lambda d: d["vnfd"]["df"][0]["vdu-profile"][0].update({"max-number-of-instances": -1}),
     ("vnfd/df/vdu-profile/max-number-of-instances", "wrong type")),
    (lambda d: d["vnfd"]["vdu"][0].pop("name"), ("vnfd/vdu", "missing name")),
])
def test_a_broken_descriptor_is_caught(mutate, expected):
    """A misspelt member, a value of the wrong type or a missing key in a sample that
    validates is reported at its schema path."""
    doc = copy.deepcopy(yaml.safe_load((DATA / "sol006" / "cirros_vnffg_vnfd.yaml").read_text()))
    mutate(doc)
    assert Deviation(*expected) in _unexplained(doc)


def test_a_decimal_with_more_fraction_digits_than_its_type_is_caught():
    """A decimal64 value written with more fraction digits than the type allows (memory
    0.125 GB where SOL006 gives tenths) is a wrong type, not silently rounded."""
    (_, fwd), = [(n, m) for n, m in MODELS if n == "fwd.yaml:fwd"]
    doc = _written(fwd, vnfd_to_sol006, nsd_to_sol006)
    doc["vnfd"]["virtual-compute-desc"][0]["virtual-memory"]["size"] = 0.125
    assert deviations(doc) == [Deviation("vnfd/virtual-compute-desc/virtual-memory/size",
                                         "wrong type")]


def _leaves(node, path: str):
    for child in getattr(node, "data_children", list)():
        yield f"{path}/{child.name}"
        yield from _leaves(child, f"{path}/{child.name}")


def test_sol006_has_no_field_for_a_forwarding_graphs_precedence():
    """The finding behind leaving ``vnffg[].precedence`` out of SOL006 output: in the NSD
    schema, nothing under ``vnffgd`` (nfpd, its rule, positions) is a priority, precedence
    or order; the only priorities are a virtual link flavour's QoS priority and an NS
    flavour's priority, neither about classifiers."""
    nsd = data_model().schema.get_data_child("nsd", "etsi-nfv-nsd")
    words = ("priority", "precedence", "order", "rank", "weight")
    found = {p for p in _leaves(nsd, "nsd") if any(w in p.rsplit("/", 1)[1] for w in words)}
    assert found == {"nsd/nsd/virtual-link-desc/df/qos/priority", "nsd/nsd/df/priority"}
