"""The network service descriptor (NSD) model: constituent VNFs, virtual links, VNF
forwarding graphs (an ordered chain of VNFs between two endpoints, with a classifier) and
SLA targets.

``parse_nsd`` checks one NSD on its own (chain hops are constituent VNFs, classifier keys
are consistent); ``check_ns`` checks it against the VNFDs and the infrastructure;
``resolve_endpoints`` binds graphs whose ends are ``auto`` (read from formats that name
no endpoint of this testbed) to endpoints of the running topology.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, PlainValidator, field_validator, model_validator

from mano import classifiers
from mano.classifiers import DEFAULT_PRECEDENCE, PRECEDENCE_MAX, PRECEDENCE_MIN
from mano.fields import (
    Boolean,
    NonEmpty,
    OptIPv4OrPrefix,
    OptPort,
    Strict,
    Text,
    choice,
    fail,
    listing,
    nested,
    number,
    string,
    unique,
    validate,
)
from mano.descriptors._yaml import read_yaml
from mano.descriptors.vnfd import VNFD, VnfdId, check_vnfd_fits
from mano.errors import DescriptorError
from mano.nfvi import ComputeNodeInfo

NSD_ID = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}")
# The controller's match keys (testbed.controller): a subset of the IP 5-tuple.
CLASSIFIER_KEYS = ("ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src",
                   "udp_dst")
CONNECTIVITY = ("ip",)
SLA_KEYS = ("max_latency_ms", "max_loss_pct", "min_throughput_mbit")
# A graph end that the NFVO binds to an endpoint at onboarding (resolve_endpoints).
AUTO = "auto"


class VirtualLink(Strict):
    """A virtual link of the NS (IP connectivity through the data center network)."""
    id: NonEmpty
    connectivity: Annotated[str, choice(*CONNECTIVITY)] = "ip"


class Classifier(Strict):
    """Which packets enter a chain: the controller's match keys."""
    ip_proto: Annotated[int | None, number(integer=True, ge=0, le=255)] = None
    ipv4_src: OptIPv4OrPrefix = None
    ipv4_dst: OptIPv4OrPrefix = None
    tcp_src: OptPort = None
    tcp_dst: OptPort = None
    udp_src: OptPort = None
    udp_dst: OptPort = None

    @model_validator(mode="after")
    def _ports_need_their_protocol(self):
        for k in ("tcp_src", "tcp_dst", "udp_src", "udp_dst"):
            need = 6 if k.startswith("tcp") else 17
            if getattr(self, k) is not None and self.ip_proto != need:
                got = "none" if self.ip_proto is None else self.ip_proto
                raise fail(f"{k} needs ip_proto {need}, got {got}", k)
        return self


def _classifier(v: Any) -> dict:
    return nested(Classifier, {} if v is None else v).model_dump(exclude_none=True)


def _path(v: Any):
    listing()(v)
    seen: list = []
    for j, h in enumerate(v):
        if h in seen:
            raise fail(f"VNF {h!r} appears twice in the path (first at path[{seen.index(h)}])",
                       j)
        seen.append(h)
    return v


class VNFFG(Strict):
    """A forwarding graph: ``classifier`` packets from ``ingress`` through ``path`` (VNF
    ids, in order) to ``egress``; ``protection`` installs fast-failover backup paths.

    ``precedence`` (1..899; none given = 100) decides between graphs whose classifiers
    overlap at one ingress (some packet matches both, ``mano.classifiers``): the higher
    takes the packets both match. Overlapping graphs of equal precedence are refused."""
    id: NonEmpty
    classifier: Annotated[dict, PlainValidator(_classifier)]
    ingress: NonEmpty
    egress: NonEmpty
    path: Annotated[tuple[NonEmpty, ...], BeforeValidator(_path)]
    protection: Boolean = False
    precedence: Annotated[int | None, number(integer=True, ge=PRECEDENCE_MIN,
                                             le=PRECEDENCE_MAX)] = None

    @model_validator(mode="after")
    def _two_ends(self):
        if self.ingress == self.egress and self.ingress != AUTO:
            raise fail(f"egress equals ingress ({self.ingress!r}); expected another endpoint",
                       "egress")
        return self

    def __hash__(self) -> int:
        return hash(("VNFFG", self.id, self.path))


def effective_precedence(fg: VNFFG) -> int:
    """The precedence the graph's classifier flows get (``DEFAULT_PRECEDENCE`` if none)."""
    return DEFAULT_PRECEDENCE if fg.precedence is None else fg.precedence


def graphs_conflict(a: VNFFG, b: VNFFG, *, shared_vnfs: bool = True) -> str | None:
    """Why two graphs cannot both be installed: at a port both classify at (the same
    ingress endpoint, or, when ``shared_vnfs``, a VNF on both paths, whose returning
    packets both classify) some packet matches both classifiers and their precedences are
    equal; None if they can (``mano.classifiers``). ``auto`` ends are not compared."""
    where = []
    if a.ingress == b.ingress and a.ingress != AUTO:
        where.append(f"ingress {a.ingress}")
    if shared_vnfs:
        where += [f"VNF {v}" for v in a.path if v in b.path]
    if not where:
        return None
    both = classifiers.conflict(a.classifier, effective_precedence(a),
                                b.classifier, effective_precedence(b))
    if both is None:
        return None
    return (f"at {' and '.join(where)}: a packet with "
            f"{classifiers.describe(both)} matches both graphs' classifiers at precedence "
            f"{effective_precedence(a)}; make them disjoint or give one a different "
            "precedence (the higher takes the packets both match)")


OptPositive = Annotated[float | None, number(gt=0)]


class SLA(Strict):
    """Targets the NS is measured against (latency ms, loss %, throughput Mbit/s)."""
    max_latency_ms: OptPositive = None
    max_loss_pct: Annotated[float | None, number(gt=0, le=100)] = None
    min_throughput_mbit: OptPositive = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in SLA_KEYS if getattr(self, k) is not None}


class VnfRef(Strict):
    """A constituent VNF, by VNFD id."""
    vnfd: VnfdId


class NSD(Strict):
    """One network service. ``vnfs`` are the constituent VNFD ids."""
    id: Annotated[str, string(NSD_ID, "NSD id")]
    name: Text = ""                  # the id when not given
    version: Text = "1.0"
    description: Text = ""
    constituents: Annotated[tuple[VnfRef, ...], BeforeValidator(listing())] = \
        Field(alias="vnfs")
    virtual_links: Annotated[tuple[VirtualLink, ...],
                             BeforeValidator(listing(nonempty=False))] = ()
    vnffg: Annotated[tuple[VNFFG, ...], BeforeValidator(listing())]
    sla: SLA = SLA()
    source: str = ""
    origin: str = ""
    warnings: tuple[str, ...] = ()
    # (testbed VNFD id, the id the foreign descriptor wrote) for each renamed constituent
    foreign_vnfds: tuple[tuple[str, str], ...] = ()
    INTERNAL: ClassVar[tuple[str, ...]] = Strict.INTERNAL + ("foreign_vnfds",)

    @field_validator("constituents")
    @classmethod
    def _unique_vnfs(cls, v):
        unique(v, "VNF", key=lambda r: r.vnfd, field="vnfd")
        return v

    @field_validator("virtual_links")
    @classmethod
    def _unique_links(cls, v):
        unique(v, "virtual link id", key=lambda x: x.id, field="id")
        return v

    @field_validator("vnffg")
    @classmethod
    def _unique_graphs(cls, v):
        unique(v, "forwarding graph id", key=lambda x: x.id, field="id")
        return v

    @model_validator(mode="after")
    def _hops_are_constituents(self):
        vnfs = self.vnfs
        for i, fg in enumerate(self.vnffg):
            for j, h in enumerate(fg.path):
                if h not in vnfs:
                    raise fail(f"unknown VNF {h!r}; known: {', '.join(vnfs)}",
                               "vnffg", i, "path", j)
        for j, later in enumerate(self.vnffg):
            for i, fg in enumerate(self.vnffg[:j]):
                why = graphs_conflict(fg, later)
                if why:
                    raise fail(f"classifier overlaps nsd.vnffg[{i}] ({fg.id!r}) {why}",
                               "vnffg", j)
        if not self.name:
            self.__dict__["name"] = self.id
        return self

    @property
    def vnfs(self) -> tuple[str, ...]:
        """The constituent VNFD ids, in order."""
        return tuple(r.vnfd for r in self.constituents)

    def to_dict(self) -> dict:
        """The testbed's YAML format, every default explicit:
        ``parse_nsd(n.to_dict(), s) == n``."""
        d: dict = {"id": self.id, "name": self.name, "version": self.version}
        if self.description:
            d["description"] = self.description
        d.update(vnfs=[{"vnfd": v} for v in self.vnfs],
                 virtual_links=[{"id": v.id, "connectivity": v.connectivity}
                                for v in self.virtual_links],
                 vnffg=[{"id": f.id, "classifier": dict(f.classifier), "ingress": f.ingress,
                         "egress": f.egress, "path": list(f.path),
                         "protection": f.protection,
                         **({} if f.precedence is None else {"precedence": f.precedence})}
                        for f in self.vnffg],
                 sla=self.sla.to_dict())
        return {"nsd": d}


class NSDDocument(Strict):
    """An NSD file: ``{"nsd": {...}}``."""
    nsd: NSD


def load_nsd(path) -> NSD:
    """Read and parse one NSD file of the testbed's format; errors are prefixed with the
    file name."""
    data, name = read_yaml(path)
    return parse_nsd(data, name)


def parse_nsd(data, source: str, *, origin: str = "", warnings=(), foreign_vnfds=()) -> NSD:
    """Parse an NSD document (``{"nsd": {...}}``); ``source`` prefixes every error
    (``DescriptorError``). ``foreign_vnfds``: (testbed id, foreign id) of each constituent
    a reader renamed, so that errors can name the id the user wrote."""
    n = validate(NSDDocument, data, source).nsd
    return n.model_copy(update={"source": source, "origin": origin,
                                "warnings": tuple(warnings),
                                "foreign_vnfds": tuple(foreign_vnfds)})


def check_ns(nsd: NSD, vnfds: dict[str, VNFD], *,
             compute_nodes: list[ComputeNodeInfo] | None = None,
             endpoints: set[str] | None = None) -> None:
    """Cross-check an NSD: every constituent VNFD is known; when given, every flavour fits
    at least one compute node and every ingress/egress is an endpoint of the topology."""
    src = nsd.source or f"nsd {nsd.id}"
    for i, v in enumerate(nsd.vnfs):
        if v not in vnfds:
            written = dict(nsd.foreign_vnfds).get(v)
            was = "" if written is None else \
                f" (the descriptor's VNFD {written!r}: descriptors/README.md, Identifiers)"
            raise DescriptorError(f"{src}: nsd.vnfs[{i}].vnfd: unknown VNFD {v!r}{was}; "
                                  f"onboarded: {', '.join(sorted(vnfds)) or 'none'}")
        if compute_nodes is not None:
            check_vnfd_fits(vnfds[v], compute_nodes)
    if endpoints is not None:
        for i, fg in enumerate(nsd.vnffg):
            for k in ("ingress", "egress"):
                name = getattr(fg, k)
                if name not in endpoints:
                    raise DescriptorError(f"{src}: nsd.vnffg[{i}].{k}: unknown endpoint "
                                          f"{name!r}; known: {_some(endpoints)}")


def resolve_endpoints(nsd: NSD, endpoints: dict[str, str]) -> tuple[NSD, list[str]]:
    """Bind every ``auto`` ingress/egress to an endpoint of the topology (``endpoints``:
    name -> IPv4 address), as documented in descriptors/README.md: the endpoint whose
    address is the classifier's ``ipv4_src`` (ingress) or ``ipv4_dst`` (egress); otherwise
    the first (ingress) or last (egress) endpoint in natural name order, and the classifier
    address, when it names no endpoint, becomes that endpoint's. Returns the bound NSD and
    warnings saying each choice made. Raises ``DescriptorError`` with fewer than two
    endpoints."""
    if not any(AUTO in (fg.ingress, fg.egress) for fg in nsd.vnffg):
        return nsd, []
    src = nsd.source or f"nsd {nsd.id}"
    names = sorted(endpoints, key=_natural)
    if len(names) < 2:
        raise DescriptorError(f"{src}: nsd.vnffg: a graph needs two endpoints; the topology "
                              f"has {len(names)}")
    by_ip = {ip: n for n, ip in endpoints.items()}
    notes: list[str] = []
    graphs = []
    for i, fg in enumerate(nsd.vnffg):
        cl = dict(fg.classifier)
        ends = {}
        for end, key, default in (("ingress", "ipv4_src", names[0]),
                                  ("egress", "ipv4_dst", names[-1])):
            if getattr(fg, end) != AUTO:
                ends[end] = getattr(fg, end)
                continue
            named = _endpoint_of(cl.get(key), by_ip)
            if named is None:
                taken = ends.get("ingress")
                choice_ = default if default != taken else names[1]
                note = f"nsd.vnffg[{i}].{end}: no endpoint given; using {choice_}"
                if key in cl:
                    note += f" (the classifier's {key} {cl[key]} is no endpoint of the " \
                            f"topology; it becomes {endpoints[choice_]})"
                    cl[key] = endpoints[choice_]
                notes.append(note)
                named = choice_
            ends[end] = named
        graphs.append(fg.model_copy(update={"classifier": cl, **ends}))
    bound = nsd.model_copy(update={"vnffg": tuple(graphs),
                                   "warnings": nsd.warnings + tuple(notes)})
    return bound, notes


def _endpoint_of(addr: str | None, by_ip: dict[str, str]) -> str | None:
    if addr is None:
        return None
    net = ipaddress.IPv4Network(addr, strict=False)
    hits = [n for ip, n in by_ip.items() if ipaddress.IPv4Address(ip) in net]
    return hits[0] if len(hits) == 1 else None


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _some(names: set[str], n: int = 12) -> str:
    ordered = sorted(names, key=_natural)
    if not ordered:
        return "none"
    more = f", ... ({len(ordered)} in all)" if len(ordered) > n else ""
    return ", ".join(ordered[:n]) + more
