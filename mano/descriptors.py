"""VNF and NS descriptors (VNFD, NSD): a documented YAML format parsed into typed models.

Every error is a ``DescriptorError`` naming the file, the field path and what is valid,
e.g. ``nsd.yaml: nsd.vnffg[0].path[2]: unknown VNF 'fw2'; known: fw, nat``. The format is
documented in ``descriptors/README.md``.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from mano.errors import DescriptorError
from mano.nfvi import ComputeNodeInfo, Flavour, Image

# short: instance ids are VNFD id + "_" + number and become Linux host names (+"-eth0")
VNFD_ID = re.compile(r"[a-z][a-z0-9]{0,5}")
NSD_ID = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}")
PROGRAMS = {"forwarder": {"cost_us"}, "firewall": {"default", "rules", "cost_us"},
            "nat": {"public_ip", "cost_us"}, "lb": {"backends", "vip", "cost_us"}}
METRICS = ("cpu_util", "packets_rate", "bytes_rate", "liveness")
CLASSIFIER_KEYS = ("ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src",
                   "udp_dst")


class _Ctx:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, msg: str):
        raise DescriptorError(f"{self.source}: {path}: {msg}")

    def mapping(self, v, path, required=(), optional=()):
        if not isinstance(v, dict):
            self.fail(path, f"expected a mapping, got {type(v).__name__}")
        known = list(required) + list(optional)
        for k in v:
            if k not in known:
                self.fail(f"{path}.{k}", f"unknown key {k!r}; known: {', '.join(known)}")
        for k in required:
            if k not in v:
                self.fail(path, f"missing required key {k!r}")
        return v

    def number(self, v, path, *, positive=False, minimum=None, integer=False):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and
                                                                       not isinstance(v, int)):
            self.fail(path, f"expected {'an integer' if integer else 'a number'}, got {v!r}")
        if positive and not v > 0:
            self.fail(path, f"expected a positive number, got {v!r}")
        if minimum is not None and v < minimum:
            self.fail(path, f"expected at least {minimum}, got {v!r}")
        return v

    def string(self, v, path, pattern=None, what=""):
        if not isinstance(v, str) or not v:
            self.fail(path, f"expected a non-empty string, got {v!r}")
        if pattern is not None and not pattern.fullmatch(v):
            self.fail(path, f"{v!r} is not a valid {what} (pattern {pattern.pattern})")
        return v

    def choice(self, v, path, options):
        if v not in options:
            self.fail(path, f"{v!r} is not one of {', '.join(map(str, options))}")
        return v

    def lst(self, v, path, *, nonempty=True):
        if not isinstance(v, list) or (nonempty and not v):
            self.fail(path, f"expected a {'non-empty ' if nonempty else ''}list, got {v!r}")
        return v

    def ipv4(self, v, path, *, cidr=False):
        try:
            return str(ipaddress.IPv4Network(v, strict=False) if cidr else
                       ipaddress.IPv4Address(v))
        except (ValueError, TypeError):
            self.fail(path, f"{v!r} is not a valid IPv4 {'prefix' if cidr else 'address'}")


@dataclass(frozen=True)
class Scaling:
    min: int = 1
    max: int = 1
    step: int = 1


@dataclass(frozen=True)
class Healing:
    mode: str = "restart"
    max_restarts: int = 3


@dataclass(frozen=True)
class MonitoringParam:
    id: str
    metric: str
    interval_s: float = 1.0


@dataclass(frozen=True)
class VNFD:
    id: str
    name: str
    version: str
    vdu_id: str
    flavour: Flavour
    image: Image
    cp_id: str
    scaling: Scaling
    monitoring: tuple[MonitoringParam, ...] = ()
    healing: Healing = field(default_factory=Healing)

    def to_dict(self) -> dict:
        return {"vnfd": {
            "id": self.id, "name": self.name, "version": self.version,
            "vdu": [{"id": self.vdu_id, "flavour": asdict(self.flavour),
                     "image": {"program": self.image.program, "params": self.image.params},
                     "connection_points": [{"id": self.cp_id}]}],
            "scaling": asdict(self.scaling), "healing": asdict(self.healing),
            "monitoring": [asdict(m) for m in self.monitoring]}}


@dataclass(frozen=True)
class VNFFG:
    id: str
    classifier: dict
    ingress: str
    egress: str
    path: tuple[str, ...]
    protection: bool = False


@dataclass(frozen=True)
class NSD:
    id: str
    name: str
    version: str
    vnfs: tuple[str, ...]
    vnffg: tuple[VNFFG, ...]
    virtual_links: tuple[str, ...] = ()
    sla: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"nsd": {
            "id": self.id, "name": self.name, "version": self.version,
            "vnfs": [{"vnfd": v} for v in self.vnfs],
            "virtual_links": [{"id": v, "connectivity": "ip"} for v in self.virtual_links],
            "vnffg": [{"id": f.id, "classifier": dict(f.classifier), "ingress": f.ingress,
                       "egress": f.egress, "path": list(f.path),
                       "protection": f.protection} for f in self.vnffg],
            "sla": dict(self.sla)}}


def _load(path) -> tuple[dict, str]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DescriptorError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DescriptorError(f"{p.name}: {where}invalid YAML: "
                              f"{getattr(exc, 'problem', None) or exc}") from None
    return data, p.name


def load_vnfd(path) -> VNFD:
    data, name = _load(path)
    return parse_vnfd(data, name)


def load_nsd(path) -> NSD:
    data, name = _load(path)
    return parse_nsd(data, name)


def _params(c: _Ctx, program: str, params, path: str) -> dict:
    params = c.mapping(params or {}, path, optional=sorted(PROGRAMS[program]))
    if "cost_us" in params:
        c.number(params["cost_us"], f"{path}.cost_us", minimum=0)
    if program == "firewall":
        if "default" in params:
            c.choice(params["default"], f"{path}.default", ("allow", "deny"))
        for i, r in enumerate(c.lst(params.get("rules", []), f"{path}.rules", nonempty=False)):
            rp = f"{path}.rules[{i}]"
            c.mapping(r, rp, required=("action",), optional=("proto", "src", "dst", "dport"))
            c.choice(r["action"], f"{rp}.action", ("allow", "deny"))
            if "proto" in r:
                c.choice(r["proto"], f"{rp}.proto", ("tcp", "udp", "icmp", "any"))
            for k in ("src", "dst"):
                if k in r:
                    c.ipv4(r[k], f"{rp}.{k}", cidr=True)
            if "dport" in r:
                _port(c, r["dport"], f"{rp}.dport")
    if program == "nat":
        if "public_ip" not in params:
            c.fail(path, "program nat needs params.public_ip")
        c.ipv4(params["public_ip"], f"{path}.public_ip")
    if program == "lb":
        backends = c.lst(params.get("backends"), f"{path}.backends")
        for i, b in enumerate(backends):
            c.ipv4(b, f"{path}.backends[{i}]")
        if "vip" in params:
            c.ipv4(params["vip"], f"{path}.vip")
    return dict(params)


def _port(c: _Ctx, v, path: str) -> int:
    c.number(v, path, integer=True)
    if not 1 <= v <= 65535:
        c.fail(path, f"port {v} is outside 1..65535")
    return v


def parse_vnfd(data, source: str) -> VNFD:
    c = _Ctx(source)
    top = c.mapping(data, "(top)", required=("vnfd",))
    d = c.mapping(top["vnfd"], "vnfd", required=("id", "vdu", "scaling"),
                  optional=("name", "version", "monitoring", "healing", "description"))
    vid = c.string(d["id"], "vnfd.id", VNFD_ID, "VNFD id")
    vdus = c.lst(d["vdu"], "vnfd.vdu")
    if len(vdus) > 1:
        c.fail("vnfd.vdu[1]", "only one VDU per VNF is supported for now")
    v = c.mapping(vdus[0], "vnfd.vdu[0]", required=("id", "flavour", "image"),
                  optional=("connection_points",))
    fl = c.mapping(v["flavour"], "vnfd.vdu[0].flavour", required=("vcpu", "memory_mb"),
                   optional=("disk_gb",))
    flavour = Flavour(c.number(fl["vcpu"], "vnfd.vdu[0].flavour.vcpu", positive=True),
                      c.number(fl["memory_mb"], "vnfd.vdu[0].flavour.memory_mb",
                               positive=True, integer=True),
                      c.number(fl.get("disk_gb", 0), "vnfd.vdu[0].flavour.disk_gb",
                               minimum=0, integer=True))
    im = c.mapping(v["image"], "vnfd.vdu[0].image", required=("program",),
                   optional=("params",))
    prog = c.choice(im["program"], "vnfd.vdu[0].image.program", tuple(PROGRAMS))
    image = Image(prog, _params(c, prog, im.get("params"), "vnfd.vdu[0].image.params"))
    cps = c.lst(v.get("connection_points", [{"id": "cp0"}]), "vnfd.vdu[0].connection_points")
    if len(cps) > 1:
        c.fail("vnfd.vdu[0].connection_points[1]", "only one connection point is supported")
    cp = c.mapping(cps[0], "vnfd.vdu[0].connection_points[0]", required=("id",))
    sc = c.mapping(d["scaling"], "vnfd.scaling", required=("min", "max"), optional=("step",))
    lo = c.number(sc["min"], "vnfd.scaling.min", integer=True, minimum=1)
    hi = c.number(sc["max"], "vnfd.scaling.max", integer=True, minimum=1)
    if hi < lo:
        c.fail("vnfd.scaling.max", f"max {hi} is below min {lo}")
    step = c.number(sc.get("step", 1), "vnfd.scaling.step", integer=True, minimum=1)
    if hi > lo and step > hi - lo:
        c.fail("vnfd.scaling.step", f"step {step} is larger than max - min = {hi - lo}")
    he = c.mapping(d.get("healing", {}), "vnfd.healing", optional=("mode", "max_restarts"))
    healing = Healing(c.choice(he.get("mode", "restart"), "vnfd.healing.mode",
                               ("restart", "recreate")),
                      c.number(he.get("max_restarts", 3), "vnfd.healing.max_restarts",
                               integer=True, minimum=0))
    mons = []
    for i, m in enumerate(c.lst(d.get("monitoring", []), "vnfd.monitoring", nonempty=False)):
        mp = f"vnfd.monitoring[{i}]"
        c.mapping(m, mp, required=("id", "metric"), optional=("interval_s",))
        mons.append(MonitoringParam(c.string(m["id"], f"{mp}.id"),
                                    c.choice(m["metric"], f"{mp}.metric", METRICS),
                                    c.number(m.get("interval_s", 1.0), f"{mp}.interval_s",
                                             positive=True)))
    return VNFD(vid, str(d.get("name", vid)), str(d.get("version", "1.0")),
                c.string(v["id"], "vnfd.vdu[0].id"), flavour, image,
                c.string(cp["id"], "vnfd.vdu[0].connection_points[0].id"),
                Scaling(lo, hi, step), tuple(mons), healing)


def _classifier(c: _Ctx, v, path: str) -> dict:
    cl = c.mapping(v, path, optional=CLASSIFIER_KEYS)
    out = {}
    if "ip_proto" in cl:
        p = c.number(cl["ip_proto"], f"{path}.ip_proto", integer=True, minimum=0)
        if p > 255:
            c.fail(f"{path}.ip_proto", f"protocol {p} is outside 0..255")
        out["ip_proto"] = p
    for k in ("ipv4_src", "ipv4_dst"):
        if k in cl:
            out[k] = c.ipv4(cl[k], f"{path}.{k}", cidr="/" in str(cl[k]))
    for k in ("tcp_src", "tcp_dst", "udp_src", "udp_dst"):
        if k in cl:
            need = 6 if k.startswith("tcp") else 17
            if out.get("ip_proto") != need:
                c.fail(f"{path}.{k}", f"{k} needs ip_proto {need}")
            out[k] = _port(c, cl[k], f"{path}.{k}")
    return out


def parse_nsd(data, source: str) -> NSD:
    c = _Ctx(source)
    top = c.mapping(data, "(top)", required=("nsd",))
    d = c.mapping(top["nsd"], "nsd", required=("id", "vnfs", "vnffg"),
                  optional=("name", "version", "virtual_links", "sla", "description"))
    nid = c.string(d["id"], "nsd.id", NSD_ID, "NSD id")
    vnfs: list[str] = []
    for i, v in enumerate(c.lst(d["vnfs"], "nsd.vnfs")):
        c.mapping(v, f"nsd.vnfs[{i}]", required=("vnfd",))
        vid = c.string(v["vnfd"], f"nsd.vnfs[{i}].vnfd", VNFD_ID, "VNFD id")
        if vid in vnfs:
            c.fail(f"nsd.vnfs[{i}].vnfd", f"VNF {vid!r} is listed twice")
        vnfs.append(vid)
    vls = []
    for i, v in enumerate(c.lst(d.get("virtual_links", []), "nsd.virtual_links",
                                nonempty=False)):
        c.mapping(v, f"nsd.virtual_links[{i}]", required=("id",), optional=("connectivity",))
        vls.append(c.string(v["id"], f"nsd.virtual_links[{i}].id"))
    fgs = []
    for i, f in enumerate(c.lst(d["vnffg"], "nsd.vnffg")):
        fp = f"nsd.vnffg[{i}]"
        c.mapping(f, fp, required=("id", "classifier", "ingress", "egress", "path"),
                  optional=("protection",))
        path = []
        for j, h in enumerate(c.lst(f["path"], f"{fp}.path")):
            if h not in vnfs:
                c.fail(f"{fp}.path[{j}]", f"unknown VNF {h!r}; known: {', '.join(vnfs)}")
            if h in path:
                c.fail(f"{fp}.path[{j}]", f"VNF {h!r} appears twice in the path")
            path.append(h)
        ing, eg = c.string(f["ingress"], f"{fp}.ingress"), c.string(f["egress"], f"{fp}.egress")
        if ing == eg:
            c.fail(f"{fp}.egress", f"egress equals ingress ({ing!r})")
        prot = f.get("protection", False)
        if not isinstance(prot, bool):
            c.fail(f"{fp}.protection", f"expected true or false, got {prot!r}")
        fgs.append(VNFFG(c.string(f["id"], f"{fp}.id"),
                         _classifier(c, f["classifier"], f"{fp}.classifier"), ing, eg,
                         tuple(path), prot))
    sla = c.mapping(d.get("sla", {}), "nsd.sla",
                    optional=("max_latency_ms", "max_loss_pct", "min_throughput_mbit"))
    for k, val in sla.items():
        c.number(val, f"nsd.sla.{k}", positive=True)
    return NSD(nid, str(d.get("name", nid)), str(d.get("version", "1.0")), tuple(vnfs),
               tuple(fgs), tuple(vls), dict(sla))


def check_ns(nsd: NSD, vnfds: dict[str, VNFD], *,
             compute_nodes: list[ComputeNodeInfo] | None = None,
             endpoints: set[str] | None = None) -> None:
    """Cross-check an NSD against the VNFDs and (optionally) the infrastructure."""
    src = f"nsd {nsd.id}"
    for i, v in enumerate(nsd.vnfs):
        if v not in vnfds:
            raise DescriptorError(f"{src}: nsd.vnfs[{i}].vnfd: unknown VNFD {v!r}; onboarded: "
                                  f"{', '.join(sorted(vnfds)) or 'none'}")
        if compute_nodes is not None:
            f = vnfds[v].flavour
            fits = [n for n in compute_nodes if n.vcpu >= f.vcpu and
                    n.memory_mb >= f.memory_mb and n.disk_gb >= f.disk_gb]
            if not fits:
                big = max(compute_nodes, key=lambda n: (n.vcpu, n.memory_mb), default=None)
                raise DescriptorError(
                    f"vnfd {v}: vnfd.vdu[0].flavour ({f.vcpu} vCPU, {f.memory_mb} MB, "
                    f"{f.disk_gb} GB) fits no compute node; the largest is "
                    + (f"{big.name} ({big.vcpu} vCPU, {big.memory_mb} MB, {big.disk_gb} GB)"
                       if big else "none (there are no compute nodes)"))
    if endpoints is not None:
        for i, fg in enumerate(nsd.vnffg):
            for k in ("ingress", "egress"):
                if getattr(fg, k) not in endpoints:
                    raise DescriptorError(
                        f"{src}: nsd.vnffg[{i}].{k}: unknown endpoint {getattr(fg, k)!r}; "
                        f"the topology has {', '.join(sorted(endpoints)[:8])}...")


def load_catalogue(folder) -> tuple[dict[str, VNFD], dict[str, NSD]]:
    folder = Path(folder)
    vnfds = {v.id: v for v in map(load_vnfd, sorted((folder / "vnfd").glob("*.yaml")))}
    nsds = {n.id: n for n in map(load_nsd, sorted((folder / "nsd").glob("*.yaml")))}
    return vnfds, nsds
