"""Readers of foreign descriptor formats into the model, chosen by content.

``read_descriptors(path)`` returns a ``Bundle`` (the VNFDs and NSDs found, the format,
warnings). What decides the format (descriptors/README.md, "Other formats"):

- a directory with ``vnfd/`` or ``nsd/`` (and no ``TOSCA-Metadata``): a catalogue, every
  file in them read by content;
- a directory or zip: a CSAR (``TOSCA-Metadata/TOSCA.meta``, or one YAML at its root) ->
  ETSI SOL001;
- a YAML file with ``tosca_definitions_version``: ``tosca_simple_profile_for_nfv_1_0_0``
  -> Tacker's legacy templates, any other TOSCA version -> ETSI SOL001;
- a YAML file whose top key is ``vnfd``/``nsd`` with the testbed's keys -> the testbed's
  format; with SOL006 keys (``vnfd-id``, ``df``, ``ext-cpd``, ``product-name``...),
  ``etsi-nfv-vnfd:vnfd``, ``etsi-nfv-nsd:nsd`` or ``nfv`` -> ETSI SOL006 (OSM).

Every failure is a ``DescriptorError`` naming the file and the field.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from mano.descriptors._yaml import read_yaml
from mano.descriptors.nsd import parse_nsd
from mano.descriptors.readers import sol001, sol006, tacker
from mano.descriptors.readers.common import Bundle, Parameters
from mano.descriptors.vnfd import parse_vnfd
from mano.errors import DescriptorError

FORMATS = ("native", "sol001", "sol001-csar", "sol006", "tacker", "catalogue")

__all__ = ["FORMATS", "Bundle", "Parameters", "detect", "read_descriptors"]


def read_descriptors(path, params: Parameters | None = None) -> Bundle:
    """Every VNFD and NSD in ``path`` (a file, a CSAR directory or zip), read into the
    model. ``params`` give the inputs of a TOSCA template (Tacker, SOL001), as Tacker's
    parameter file does; other formats declare no inputs and refuse them. Raises
    ``DescriptorError`` naming the file and the field."""
    p = Path(path)
    if not p.exists():
        raise DescriptorError(f"{p}: cannot read: No such file or directory")
    if p.is_dir() and not (p / "TOSCA-Metadata").exists() and (
            (p / "vnfd").is_dir() or (p / "nsd").is_dir()):
        _no_inputs(params, "a catalogue folder (a parameter file applies to one "
                           "descriptor file: onboard that file with it)")
        b = _catalogue(p)
    elif p.is_dir() or (p.is_file() and zipfile.is_zipfile(p)):
        b = sol001.read(p, params=params)
    else:
        data, name = read_yaml(p)
        fmt = detect(data, name)
        if fmt == "native":
            _no_inputs(params, f"{name} (the testbed's format)")
            b = _native(data, name)
        elif fmt == "tacker":
            b = tacker.read(p, data, params)
        elif fmt == "sol001":
            b = sol001.read(p, data, params)
        else:
            _no_inputs(params, f"{name} (ETSI SOL006)")
            b = sol006.read(data, name)
    b.collect_warnings()
    return b


def _no_inputs(params: Parameters | None, what: str) -> None:
    """Refuse parameters for a descriptor that declares no inputs."""
    if params is not None and params.values:
        raise DescriptorError(f"{params.source}: {next(iter(params.values))}: {what} "
                              f"declares no inputs; parameters give the inputs of TOSCA "
                              f"templates (Tacker, ETSI SOL001)")


def detect(data, name: str) -> str:
    """The format of one YAML document (see the module's documentation)."""
    if not isinstance(data, dict) or not data:
        raise DescriptorError(f"{name}: (top): expected a mapping: a descriptor of the "
                              f"testbed (vnfd/nsd), ETSI SOL001/Tacker TOSCA "
                              f"(tosca_definitions_version) or ETSI SOL006 (vnfd/nsd/nfv), "
                              f"got {type(data).__name__}")
    tv = data.get("tosca_definitions_version")
    if tv is not None:
        return "tacker" if tv == "tosca_simple_profile_for_nfv_1_0_0" else "sol001"
    if set(data) in ({"vnfd"}, {"nsd"}):
        body = data.get("vnfd", data.get("nsd"))
        if isinstance(body, (dict, list)) and _sol006_like(body):
            return "sol006"
        return "native"
    if any(k in data for k in ("nfv", "etsi-nfv-vnfd:vnfd", "etsi-nfv-nsd:nsd",
                               "etsi-nfv-descriptors:nfv")):
        return "sol006"
    for keys, what in LEGACY_FORMATS:
        found = [k for k in keys if k in data]
        if found:
            raise DescriptorError(f"{name}: {found[0]}: {what}")
    raise DescriptorError(f"{name}: (top): keys {', '.join(map(str, data))} name no known "
                          f"format: expected vnfd or nsd (the testbed's or SOL006), "
                          f"tosca_definitions_version (SOL001, Tacker) or nfv (SOL006)")


# Formats that came before the ones read here, known by a top-level key: refused saying
# which format it is and what is read instead (rather than "no known format").
LEGACY_FORMATS = (
    (("vnfd:vnfd-catalog", "nsd:nsd-catalog", "vnfd-catalog", "nsd-catalog"),
     ("OSM's information model before SOL006 (OSM releases up to 8) is not read; the "
     "testbed reads SOL006 descriptors as OSM 9 and later write them ({vnfd: ...} or "
     "{nsd: {nsd: [...]}} with df, ext-cpd, vnffgd/nfpd)")),
    (("vdus", "service_properties"),
     ("Tacker's pre-TOSCA VNFD template is not read; the testbed reads Tacker's TOSCA "
     "templates (tosca_definitions_version: tosca_simple_profile_for_nfv_1_0_0) and ETSI "
     "SOL001")),
)

# Keys of SOL006 descriptors that the testbed's format does not use (besides any key with
# a hyphen): a document with one of them is read as SOL006, any other as the testbed's.
SOL006_KEYS = {"df", "provider", "designer", "sapd", "vnffgd", "nsd", "vnfd", "int-cpd"}


def _sol006_like(body) -> bool:
    if isinstance(body, list):              # OSM writes lists of descriptors
        return True
    return any(str(k) in SOL006_KEYS or "-" in str(k) for k in body)


def _catalogue(folder: Path) -> Bundle:
    """A folder of descriptors, ``vnfd/*.yaml`` then ``nsd/*.yaml``, each of any format."""
    b = Bundle("catalogue")
    for sub in ("vnfd", "nsd"):
        for f in sorted((folder / sub).glob("*.y*ml")):
            part = read_descriptors(f)
            b.vnfds += part.vnfds
            b.nsds += part.nsds
    return b


def _native(data, name: str) -> Bundle:
    if "vnfd" in data:
        return Bundle("native", vnfds=[parse_vnfd(data, name)])
    return Bundle("native", nsds=[parse_nsd(data, name)])
