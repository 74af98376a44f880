"""VNF and NS descriptors (VNFD, NSD): one typed model (pydantic v2) and its YAML format.

Every error is a ``DescriptorError`` naming the file, the field path and what is valid,
e.g. ``nsd.yaml: nsd.vnffg[0].path[2]: unknown VNF 'fw2'; known: fw, nat``. Unknown keys
are errors too, and YAML syntax errors give the line and column. The format is documented
in ``descriptors/README.md``.

- ``vnfd``: the VNFD model, ``load_vnfd``/``parse_vnfd``, ``check_vnfd_fits``.
- ``nsd``: the NSD model, ``load_nsd``/``parse_nsd``, ``check_ns`` (cross-references).
- ``readers``: ``read_descriptors(path)`` reads ETSI SOL001 (CSAR or YAML), SOL006/OSM,
  Tacker legacy templates and the testbed's own format, chosen by content, into the model.
- ``_fields``: the strict base model, value types and the translation of validation errors
  into messages with the field path; ``_yaml``: reading YAML files.

Models are frozen pydantic models; ``to_dict()`` gives the YAML format back (for
persistence as JSON) and parses to an equal model.
"""
from __future__ import annotations

from pathlib import Path

from mano.descriptors.nsd import (
    CLASSIFIER_KEYS,
    NSD,
    SLA,
    VNFFG,
    VirtualLink,
    check_ns,
    load_nsd,
    parse_nsd,
    resolve_endpoints,
)
from mano.descriptors.readers import FORMATS, Bundle, Parameters, read_descriptors
from mano.descriptors.vnfd import (
    METRICS,
    PROGRAMS,
    VDU,
    VNFD,
    VNFD_ID,
    ConnectionPoint,
    Healing,
    MonitoringParam,
    Scaling,
    check_vnfd_fits,
    load_vnfd,
    parse_vnfd,
)
from mano.errors import DescriptorError

__all__ = [
    "CLASSIFIER_KEYS",
    "FORMATS",
    "METRICS",
    "NSD",
    "PROGRAMS",
    "SLA",
    "VDU",
    "VNFD",
    "VNFD_ID",
    "VNFFG",
    "Bundle",
    "ConnectionPoint",
    "Healing",
    "MonitoringParam",
    "Parameters",
    "Scaling",
    "VirtualLink",
    "check_ns",
    "check_vnfd_fits",
    "load_catalogue",
    "load_nsd",
    "load_vnfd",
    "parse_nsd",
    "parse_vnfd",
    "read_descriptors",
    "resolve_endpoints",
]


def load_catalogue(folder) -> tuple[dict[str, VNFD], dict[str, NSD]]:
    """Load ``folder/vnfd/*.yaml`` and ``folder/nsd/*.yaml`` (by id), refusing two files
    with one id and checking every NSD against the VNFDs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DescriptorError(f"{folder}: not a directory (expected vnfd/ and nsd/ in it)")
    vnfds: dict[str, VNFD] = {}
    for p in sorted((folder / "vnfd").glob("*.yaml")):
        v = load_vnfd(p)
        if v.id in vnfds:
            raise DescriptorError(f"{p.name}: vnfd.id: VNFD id {v.id!r} is already used by "
                                  f"{vnfds[v.id].source}")
        vnfds[v.id] = v
    nsds: dict[str, NSD] = {}
    for p in sorted((folder / "nsd").glob("*.yaml")):
        n = load_nsd(p)
        if n.id in nsds:
            raise DescriptorError(f"{p.name}: nsd.id: NSD id {n.id!r} is already used by "
                                  f"{nsds[n.id].source}")
        check_ns(n, vnfds)
        nsds[n.id] = n
    return vnfds, nsds
