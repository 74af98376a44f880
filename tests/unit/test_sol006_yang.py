"""The SOL006 descriptors the readers accept, and what ``testbed descriptor convert --to
sol006`` writes, validated against ETSI's SOL006 YANG modules (yangson; see
``sol006_yang``). OSM writes SOL006 as OSM's information model: a few members of its own
and some ETSI-mandatory nodes left out. Each such departure is listed below with its reason;
anything else a document does that the schema does not allow fails the test."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from sol006_yang import Deviation, data_model, deviations

from mano.descriptors import load_nsd, load_vnfd, read_descriptors
from mano.descriptors.readers.sol006_write import nsd_to_sol006, vnfd_to_sol006
from mano.errors import DescriptorError

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "descriptors"
SAMPLES = sorted([*(DATA / "sol006").glob("*.yaml"), *(DATA / "osm-nbi").glob("*.yaml")])

OSM_MEMBERS = "a member of OSM's information model, not of ETSI SOL006"
OSM_OMITS = "mandatory in ETSI SOL006; OSM's information model leaves it out"
OSM_VNFFG = ("OSM writes an NFP as position-desc-id/cp-profile-id/match-attributes "
             "(SOL006 2.x layout); SOL006 3.x has position-desc and nfp-position-element")
MANDATORY_CONTAINER = ("a container with a mandatory node inside is itself mandatory "
                       "(RFC 7950 §3), which SOL006 3.6.1 did not intend")
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


def _converted() -> dict[str, dict]:
    """What ``descriptor convert --to sol006`` writes for every shipped native descriptor
    it can convert (a VNFD with program parameters is refused with a message instead)."""
    out = {}
    for p in sorted((REPO / "descriptors" / "vnfd").glob("*.yaml")):
        try:
            out[f"convert:{p.name}"] = vnfd_to_sol006(load_vnfd(p))[0]
        except DescriptorError:
            pass
    for p in sorted((REPO / "descriptors" / "nsd").glob("*.yaml")):
        out[f"convert:{p.name}"] = nsd_to_sol006(load_nsd(p))[0]
    return out


CONVERTED = _converted()


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


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_converted_descriptors_follow_the_yang(name):
    """What ``descriptor convert --to sol006`` writes departs from ETSI SOL006 only as
    OSM's information model does."""
    assert _unexplained(CONVERTED[name]) == []


def test_every_listed_departure_is_still_seen():
    """The table of departures lists nothing that no document shows any more."""
    docs = [yaml.safe_load(p.read_text()) for p in SAMPLES] + list(CONVERTED.values())
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
