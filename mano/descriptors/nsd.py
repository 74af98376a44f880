"""The network service descriptor (NSD): constituent VNFs, virtual links, VNF forwarding
graphs (an ordered chain of VNFs between two endpoints, with a classifier) and SLA targets.

``parse_nsd`` checks one NSD on its own (chain hops are constituent VNFs, classifier keys
are consistent); ``check_ns`` checks it against the VNFDs and the infrastructure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from mano.descriptors._check import Checker, read_yaml
from mano.descriptors.vnfd import VNFD, VNFD_ID, VNFD_ID_HINT, check_vnfd_fits
from mano.errors import DescriptorError
from mano.nfvi import ComputeNodeInfo

NSD_ID = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}")
# The controller's match keys (testbed.controller): a subset of the IP 5-tuple.
CLASSIFIER_KEYS = ("ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src",
                   "udp_dst")
CONNECTIVITY = ("ip",)
SLA_KEYS = ("max_latency_ms", "max_loss_pct", "min_throughput_mbit")


@dataclass(frozen=True)
class VirtualLink:
    id: str
    connectivity: str = "ip"


@dataclass(frozen=True)
class VNFFG:
    id: str
    classifier: dict = field(hash=False)     # controller match keys, CLASSIFIER_KEYS
    ingress: str = ""                        # endpoint names of the topology
    egress: str = ""
    path: tuple[str, ...] = ()               # constituent VNF ids, in order
    protection: bool = False                 # fast-failover backup paths


@dataclass(frozen=True)
class SLA:
    max_latency_ms: float | None = None
    max_loss_pct: float | None = None
    min_throughput_mbit: float | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in SLA_KEYS if getattr(self, k) is not None}


@dataclass(frozen=True)
class NSD:
    id: str
    name: str
    version: str
    vnfs: tuple[str, ...]                    # constituent VNFD ids
    vnffg: tuple[VNFFG, ...]
    virtual_links: tuple[VirtualLink, ...] = ()
    sla: SLA = SLA()
    description: str = ""
    source: str = field(default="", compare=False, repr=False)   # file name, for errors

    def to_dict(self) -> dict:
        """The YAML format, every default explicit: ``parse_nsd(n.to_dict(), s) == n``."""
        d: dict = {"id": self.id, "name": self.name, "version": self.version}
        if self.description:
            d["description"] = self.description
        d.update(vnfs=[{"vnfd": v} for v in self.vnfs],
                 virtual_links=[{"id": v.id, "connectivity": v.connectivity}
                                for v in self.virtual_links],
                 vnffg=[{"id": f.id, "classifier": dict(f.classifier), "ingress": f.ingress,
                         "egress": f.egress, "path": list(f.path),
                         "protection": f.protection} for f in self.vnffg],
                 sla=self.sla.to_dict())
        return {"nsd": d}


def load_nsd(path) -> NSD:
    """Read and parse one NSD file; errors are prefixed with the file name."""
    data, name = read_yaml(path)
    return parse_nsd(data, name)


def parse_nsd(data, source: str) -> NSD:
    """Parse an NSD document (``{"nsd": {...}}``); ``source`` prefixes every error."""
    c = Checker(source)
    top = c.mapping(data, "(top)", required=("nsd",))
    d = c.mapping(top["nsd"], "nsd", required=("id", "vnfs", "vnffg"),
                  optional=("name", "version", "description", "virtual_links", "sla"))
    nid = c.string(d["id"], "nsd.id", NSD_ID, "NSD id")
    vnfs: list[str] = []
    for i, v in enumerate(c.lst(d["vnfs"], "nsd.vnfs")):
        c.mapping(v, f"nsd.vnfs[{i}]", required=("vnfd",))
        c.unique(c.string(v["vnfd"], f"nsd.vnfs[{i}].vnfd", VNFD_ID, "VNFD id", VNFD_ID_HINT),
                 vnfs, f"nsd.vnfs[{i}].vnfd", "VNF")
    vls: list[VirtualLink] = []
    vl_ids: list[str] = []
    for i, v in enumerate(c.lst(d.get("virtual_links", []), "nsd.virtual_links",
                                nonempty=False)):
        p = f"nsd.virtual_links[{i}]"
        c.mapping(v, p, required=("id",), optional=("connectivity",))
        vls.append(VirtualLink(c.unique(c.string(v["id"], f"{p}.id"), vl_ids, f"{p}.id",
                                        "virtual link id"),
                               c.choice(v.get("connectivity", "ip"), f"{p}.connectivity",
                                        CONNECTIVITY)))
    fgs: list[VNFFG] = []
    fg_ids: list[str] = []
    for i, f in enumerate(c.lst(d["vnffg"], "nsd.vnffg")):
        fgs.append(_vnffg(c, f, f"nsd.vnffg[{i}]", vnfs, fg_ids))
    sla = c.mapping(d.get("sla", {}), "nsd.sla", optional=SLA_KEYS)
    for k, val in sla.items():
        c.number(val, f"nsd.sla.{k}", gt=0, le=100 if k == "max_loss_pct" else None)
    return NSD(nid, c.text(d.get("name", nid), "nsd.name"),
               c.text(d.get("version", "1.0"), "nsd.version"), tuple(vnfs), tuple(fgs),
               tuple(vls), SLA(**sla), c.text(d.get("description", ""), "nsd.description"),
               source)


def _vnffg(c: Checker, f, fp: str, vnfs: list[str], fg_ids: list[str]) -> VNFFG:
    c.mapping(f, fp, required=("id", "classifier", "ingress", "egress", "path"),
              optional=("protection",))
    fid = c.unique(c.string(f["id"], f"{fp}.id"), fg_ids, f"{fp}.id", "forwarding graph id")
    path: list[str] = []
    for j, h in enumerate(c.lst(f["path"], f"{fp}.path")):
        if h not in vnfs:
            c.fail(f"{fp}.path[{j}]", f"unknown VNF {h!r}; known: {', '.join(vnfs)}")
        if h in path:
            c.fail(f"{fp}.path[{j}]", f"VNF {h!r} appears twice in the path (first at "
                                      f"path[{path.index(h)}])")
        path.append(h)
    ing = c.string(f["ingress"], f"{fp}.ingress")
    eg = c.string(f["egress"], f"{fp}.egress")
    if ing == eg:
        c.fail(f"{fp}.egress", f"egress equals ingress ({ing!r}); expected another endpoint")
    return VNFFG(fid, _classifier(c, f["classifier"], f"{fp}.classifier"), ing, eg,
                 tuple(path), c.boolean(f.get("protection", False), f"{fp}.protection"))


def _classifier(c: Checker, v, path: str) -> dict:
    cl = c.mapping({} if v is None else v, path, optional=CLASSIFIER_KEYS)
    out: dict = {}
    if "ip_proto" in cl:
        out["ip_proto"] = c.number(cl["ip_proto"], f"{path}.ip_proto", integer=True, ge=0,
                                   le=255)
    for k in ("ipv4_src", "ipv4_dst"):
        if k in cl:
            out[k] = c.ipv4_or_prefix(cl[k], f"{path}.{k}")
    for k in ("tcp_src", "tcp_dst", "udp_src", "udp_dst"):
        if k in cl:
            need = 6 if k.startswith("tcp") else 17
            if out.get("ip_proto") != need:
                c.fail(f"{path}.{k}", f"{k} needs ip_proto {need}, got "
                                      f"{out.get('ip_proto', 'none')}")
            out[k] = c.port(cl[k], f"{path}.{k}")
    return out


def check_ns(nsd: NSD, vnfds: dict[str, VNFD], *,
             compute_nodes: list[ComputeNodeInfo] | None = None,
             endpoints: set[str] | None = None) -> None:
    """Cross-check an NSD: every constituent VNFD is known; when given, every flavour fits
    at least one compute node and every ingress/egress is an endpoint of the topology."""
    src = nsd.source or f"nsd {nsd.id}"
    for i, v in enumerate(nsd.vnfs):
        if v not in vnfds:
            raise DescriptorError(f"{src}: nsd.vnfs[{i}].vnfd: unknown VNFD {v!r}; onboarded: "
                                  f"{', '.join(sorted(vnfds)) or 'none'}")
        if compute_nodes is not None:
            check_vnfd_fits(vnfds[v], compute_nodes)
    if endpoints is not None:
        for i, fg in enumerate(nsd.vnffg):
            for k in ("ingress", "egress"):
                name = getattr(fg, k)
                if name not in endpoints:
                    raise DescriptorError(f"{src}: nsd.vnffg[{i}].{k}: unknown endpoint "
                                          f"{name!r}; known: {_some(endpoints)}")


def _some(names: set[str], n: int = 12) -> str:
    def natural(s: str):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
    ordered = sorted(names, key=natural)
    if not ordered:
        return "none"
    more = f", ... ({len(ordered)} in all)" if len(ordered) > n else ""
    return ", ".join(ordered[:n]) + more
