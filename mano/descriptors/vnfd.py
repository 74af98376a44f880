"""The VNF descriptor (VNFD): one YAML file describes one VNF.

A VNFD has one VDU (a flavour, an image naming one of the testbed's VNF programs with its
parameters, one connection point), a scaling aspect, monitoring parameters and healing
settings. The format is documented in ``descriptors/README.md``.
"""
from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field

from mano.descriptors._check import Checker, read_yaml
from mano.errors import DescriptorError
from mano.nfvi import ComputeNodeInfo, Flavour, Image

# Instances are named <id>_<n> (n up to 999) and become Linux host names whose interface
# <id>_<n>-eth0 must fit the kernel's 15 characters: hence at most 6 characters, no "_".
VNFD_ID = re.compile(r"[a-z][a-z0-9]{0,5}")
VNFD_ID_HINT = (" (a lower-case letter, then up to 5 letters or digits: instance "
                "interfaces <id>_<n>-eth0 must fit Linux's 15 characters)")
PROGRAMS = ("forwarder", "firewall", "nat", "lb")
METRICS = ("cpu_util", "packets_rate", "bytes_rate", "liveness")
HEALING_MODES = ("restart", "recreate")


@dataclass(frozen=True)
class ConnectionPoint:
    id: str


@dataclass(frozen=True)
class VDU:
    id: str
    flavour: Flavour
    image: Image
    connection_points: tuple[ConnectionPoint, ...] = (ConnectionPoint("cp0"),)

    def __eq__(self, other):
        # Image leaves its params out of equality; two VDUs with other rules differ.
        if not isinstance(other, VDU):
            return NotImplemented
        return (self.id, self.flavour, self.image.program, self.image.params,
                self.connection_points) == (other.id, other.flavour, other.image.program,
                                            other.image.params, other.connection_points)


@dataclass(frozen=True)
class Scaling:
    min: int = 1
    max: int = 1
    step: int = 1


@dataclass(frozen=True)
class Healing:
    mode: str = "restart"          # "restart" in place | "recreate" (new instance)
    max_restarts: int = 3


@dataclass(frozen=True)
class MonitoringParam:
    id: str
    metric: str                    # one of METRICS
    interval_s: float = 1.0


@dataclass(frozen=True)
class VNFD:
    id: str
    name: str
    version: str
    vdus: tuple[VDU, ...]
    scaling: Scaling = Scaling()
    monitoring: tuple[MonitoringParam, ...] = ()
    healing: Healing = Healing()
    description: str = ""
    source: str = field(default="", compare=False, repr=False)   # file name, for errors

    @property
    def vdu(self) -> VDU:
        """The VDU (exactly one is supported)."""
        return self.vdus[0]

    @property
    def flavour(self) -> Flavour:
        return self.vdus[0].flavour

    @property
    def image(self) -> Image:
        return self.vdus[0].image

    def to_dict(self) -> dict:
        """The YAML format, every default explicit: ``parse_vnfd(v.to_dict(), s) == v``."""
        d: dict = {"id": self.id, "name": self.name, "version": self.version}
        if self.description:
            d["description"] = self.description
        d["vdu"] = [{"id": u.id, "flavour": asdict(u.flavour),
                     "image": {"program": u.image.program,
                               "params": copy.deepcopy(u.image.params)},
                     "connection_points": [{"id": c.id} for c in u.connection_points]}
                    for u in self.vdus]
        d.update(scaling=asdict(self.scaling), monitoring=[asdict(m) for m in self.monitoring],
                 healing=asdict(self.healing))
        return {"vnfd": d}


def load_vnfd(path) -> VNFD:
    """Read and parse one VNFD file; errors are prefixed with the file name."""
    data, name = read_yaml(path)
    return parse_vnfd(data, name)


def parse_vnfd(data, source: str) -> VNFD:
    """Parse a VNFD document (``{"vnfd": {...}}``); ``source`` prefixes every error."""
    c = Checker(source)
    top = c.mapping(data, "(top)", required=("vnfd",))
    d = c.mapping(top["vnfd"], "vnfd", required=("id", "vdu"),
                  optional=("name", "version", "description", "scaling", "monitoring",
                            "healing"))
    vid = c.string(d["id"], "vnfd.id", VNFD_ID, "VNFD id", VNFD_ID_HINT)
    vdus = c.lst(d["vdu"], "vnfd.vdu")
    if len(vdus) > 1:
        c.fail("vnfd.vdu", f"{len(vdus)} VDUs given; exactly one VDU per VNFD is supported "
                           "for now")
    vdu = _vdu(c, vdus[0], "vnfd.vdu[0]")
    mons: list[MonitoringParam] = []
    ids: list[str] = []
    for i, m in enumerate(c.lst(d.get("monitoring", []), "vnfd.monitoring", nonempty=False)):
        mp = f"vnfd.monitoring[{i}]"
        c.mapping(m, mp, required=("id", "metric"), optional=("interval_s",))
        mons.append(MonitoringParam(
            c.unique(c.string(m["id"], f"{mp}.id"), ids, f"{mp}.id", "monitoring id"),
            c.choice(m["metric"], f"{mp}.metric", METRICS),
            float(c.number(m.get("interval_s", 1.0), f"{mp}.interval_s", gt=0))))
    he = c.mapping(d.get("healing", {}), "vnfd.healing", optional=("mode", "max_restarts"))
    healing = Healing(c.choice(he.get("mode", "restart"), "vnfd.healing.mode", HEALING_MODES),
                      c.number(he.get("max_restarts", 3), "vnfd.healing.max_restarts",
                               integer=True, ge=0))
    return VNFD(vid, c.text(d.get("name", vid), "vnfd.name"),
                c.text(d.get("version", "1.0"), "vnfd.version"), (vdu,),
                _scaling(c, d.get("scaling", {"min": 1, "max": 1})), tuple(mons), healing,
                c.text(d.get("description", ""), "vnfd.description"), source)


def _vdu(c: Checker, v, path: str) -> VDU:
    c.mapping(v, path, required=("id", "flavour", "image"), optional=("connection_points",))
    fl = c.mapping(v["flavour"], f"{path}.flavour", required=("vcpu", "memory_mb"),
                   optional=("disk_gb",))
    flavour = Flavour(c.number(fl["vcpu"], f"{path}.flavour.vcpu", gt=0),
                      c.number(fl["memory_mb"], f"{path}.flavour.memory_mb", integer=True, gt=0),
                      c.number(fl.get("disk_gb", 0), f"{path}.flavour.disk_gb", integer=True,
                               ge=0))
    im = c.mapping(v["image"], f"{path}.image", required=("program",), optional=("params",))
    prog = c.choice(im["program"], f"{path}.image.program", PROGRAMS)
    params = _params(c, prog, im.get("params", {}), f"{path}.image.params")
    cps = c.lst(v.get("connection_points", [{"id": "cp0"}]), f"{path}.connection_points")
    if len(cps) > 1:
        c.fail(f"{path}.connection_points", f"{len(cps)} connection points given; exactly one "
                                            "is supported for now")
    c.mapping(cps[0], f"{path}.connection_points[0]", required=("id",))
    cp = ConnectionPoint(c.string(cps[0]["id"], f"{path}.connection_points[0].id"))
    return VDU(c.string(v["id"], f"{path}.id"), flavour, Image(prog, params), (cp,))


def _scaling(c: Checker, v) -> Scaling:
    sc = c.mapping(v, "vnfd.scaling", required=("min", "max"), optional=("step",))
    lo = c.number(sc["min"], "vnfd.scaling.min", integer=True, ge=1)
    hi = c.number(sc["max"], "vnfd.scaling.max", integer=True, ge=1)
    if hi < lo:
        c.fail("vnfd.scaling.max", f"max {hi} is below min {lo}")
    step = c.number(sc.get("step", 1), "vnfd.scaling.step", integer=True, ge=1)
    if hi == lo and step != 1:
        c.fail("vnfd.scaling.step", f"step {step} with max == min ({lo}); expected 1")
    if hi > lo and step > hi - lo:
        c.fail("vnfd.scaling.step", f"step {step} is larger than max - min = {hi - lo}; "
                                    f"expected 1..{hi - lo}")
    return Scaling(lo, hi, step)


# What each program accepts (as testbed.programs.vnf checks it at run time; cost_us is
# the forwarder loop's, in every program).
PARAMS = {"forwarder": ("cost_us",), "firewall": ("default", "rules", "cost_us"),
          "nat": ("public_ip", "cost_us"), "lb": ("backends", "vip", "cost_us")}
REQUIRED_PARAMS = {"nat": ("public_ip",), "lb": ("backends",)}
RULE_PROTOS = ("tcp", "udp", "icmp", "any")


def _params(c: Checker, program: str, params, path: str) -> dict:
    params = c.mapping({} if params is None else params, path,
                       required=REQUIRED_PARAMS.get(program, ()),
                       optional=[k for k in PARAMS[program]
                                 if k not in REQUIRED_PARAMS.get(program, ())])
    if "cost_us" in params:
        c.number(params["cost_us"], f"{path}.cost_us", ge=0)
    if program == "firewall":
        if "default" in params:
            c.choice(params["default"], f"{path}.default", ("allow", "deny"))
        for i, r in enumerate(c.lst(params.get("rules", []), f"{path}.rules", nonempty=False)):
            rp = f"{path}.rules[{i}]"
            c.mapping(r, rp, required=("action",), optional=("proto", "src", "dst", "dport"))
            c.choice(r["action"], f"{rp}.action", ("allow", "deny"))
            proto = c.choice(r.get("proto", "any"), f"{rp}.proto", RULE_PROTOS)
            for k in ("src", "dst"):
                if k in r:
                    c.ipv4_or_prefix(r[k], f"{rp}.{k}")
            if "dport" in r:
                c.port(r["dport"], f"{rp}.dport")
                if proto not in ("tcp", "udp"):
                    c.fail(f"{rp}.dport", f"a destination port needs proto tcp or udp, "
                                          f"got {proto!r}")
    elif program == "nat":
        c.ipv4(params["public_ip"], f"{path}.public_ip")
    elif program == "lb":
        seen: list[str] = []
        for i, b in enumerate(c.lst(params["backends"], f"{path}.backends")):
            c.unique(c.ipv4(b, f"{path}.backends[{i}]"), seen, f"{path}.backends[{i}]",
                     "backend")
        if "vip" in params:
            c.ipv4(params["vip"], f"{path}.vip")
    return copy.deepcopy(dict(params))


def check_vnfd_fits(vnfd: VNFD, compute_nodes: list[ComputeNodeInfo]) -> None:
    """Refuse a VNFD whose flavour fits no compute node (naming the largest one)."""
    f = vnfd.flavour
    if any(n.vcpu >= f.vcpu and n.memory_mb >= f.memory_mb and n.disk_gb >= f.disk_gb
           for n in compute_nodes):
        return
    need = f"{f.vcpu} vCPU, {f.memory_mb} MB, {f.disk_gb} GB"
    src = vnfd.source or f"vnfd {vnfd.id}"
    if not compute_nodes:
        raise DescriptorError(f"{src}: vnfd.vdu[0].flavour: VNF {vnfd.id!r} needs {need}; "
                              "there are no compute nodes")
    big = max(compute_nodes, key=lambda n: (n.vcpu, n.memory_mb, n.disk_gb))
    short = [name for name, have, want in (("vCPU", big.vcpu, f.vcpu),
                                           ("memory", big.memory_mb, f.memory_mb),
                                           ("disk", big.disk_gb, f.disk_gb)) if have < want]
    raise DescriptorError(
        f"{src}: vnfd.vdu[0].flavour: VNF {vnfd.id!r} needs {need}, which fits no compute "
        f"node; the largest is {big.name} ({big.vcpu} vCPU, {big.memory_mb} MB, "
        f"{big.disk_gb} GB), short of {' and '.join(short)}")
