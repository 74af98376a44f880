"""The VNF descriptor (VNFD) model: one VNF with one VDU (a flavour, an image naming one of
the testbed's VNF programs with its parameters, one connection point), a scaling aspect,
monitoring parameters, healing settings and placement constraints.

Every format (``mano.descriptors.readers``) is read into this model; the testbed's own
YAML format is its document form (``to_dict``), documented in ``descriptors/README.md``.
"""
from __future__ import annotations

import copy
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, field_validator, model_validator

from mano.fields import (
    Boolean,
    IPv4,
    NonEmpty,
    OptIPv4,
    OptIPv4OrPrefix,
    OptPort,
    PositiveInt,
    PositiveNumber,
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
RULE_PROTOS = ("tcp", "udp", "icmp", "any")

VnfdId = Annotated[str, string(VNFD_ID, "VNFD id", VNFD_ID_HINT)]
CostUs = Annotated[float, number(ge=0)]


# ------------------------------------------------------------------ program parameters
class FirewallRule(Strict):
    """One firewall rule; the first matching rule of the list decides."""
    action: Annotated[str, choice("allow", "deny")]
    proto: Annotated[str, choice(*RULE_PROTOS)] = "any"
    src: OptIPv4OrPrefix = None
    dst: OptIPv4OrPrefix = None
    dport: OptPort = None

    @model_validator(mode="after")
    def _dport_needs_a_port_protocol(self):
        if self.dport is not None and self.proto not in ("tcp", "udp"):
            raise fail(f"a destination port needs proto tcp or udp, got {self.proto!r}",
                       "dport")
        return self


class ForwarderParams(Strict):
    """The forwarder's params: ``cost_us`` CPU microseconds burnt per packet."""
    cost_us: CostUs = 0


class FirewallParams(Strict):
    """The firewall's params: ``default`` action and ``rules`` (first match wins)."""
    default: Annotated[str, choice("allow", "deny")] = "allow"
    rules: Annotated[tuple[FirewallRule, ...], BeforeValidator(listing(nonempty=False))] = ()
    cost_us: CostUs = 0


class NatParams(Strict):
    """The source NAT's params: ``public_ip`` becomes every packet's source."""
    public_ip: IPv4
    cost_us: CostUs = 0


class LbParams(Strict):
    """The load balancer's params: distinct ``backends``, an optional ``vip``."""
    backends: Annotated[tuple[IPv4, ...], BeforeValidator(listing())]
    vip: OptIPv4 = None
    cost_us: CostUs = 0

    @field_validator("backends")
    @classmethod
    def _distinct(cls, v):
        unique(v, "backend")
        return v


# What each program accepts, as testbed.programs.vnf checks it at run time.
PARAMS_MODELS: dict[str, type[Strict]] = {"forwarder": ForwarderParams,
                                          "firewall": FirewallParams, "nat": NatParams,
                                          "lb": LbParams}


# -------------------------------------------------------------------------- the model
class FlavourDesc(Strict):
    """Resources of one instance (the VIM books them, cgroups enforce vCPU and memory)."""
    vcpu: PositiveNumber            # CPU cores (fractions allowed): the cgroup CPU quota
    memory_mb: PositiveInt          # the cgroup memory limit
    disk_gb: Annotated[int, number(integer=True, ge=0)] = 0   # accounted by the VIM only


class ImageDesc(Strict):
    """The VNF program an instance runs and its params (checked per program)."""
    program: Annotated[str, choice(*PROGRAMS)]
    params: Annotated[dict, PlainValidator(lambda v: {} if v is None else v)] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _params_fit_the_program(self):
        nested(PARAMS_MODELS[self.program], self.params, "params")
        self.__dict__["params"] = copy.deepcopy(dict(self.params))
        return self


class ConnectionPoint(Strict):
    """The instance's one network interface."""
    id: NonEmpty


def _one_cp(v: Any):
    listing()(v)
    if len(v) > 1:
        raise fail(f"{len(v)} connection points given; exactly one is supported for now")
    return v


class VDU(Strict):
    """The one virtualisation deployment unit of a VNF."""
    id: NonEmpty
    flavour: FlavourDesc
    image: ImageDesc
    connection_points: Annotated[tuple[ConnectionPoint, ...], BeforeValidator(_one_cp)] = (
        ConnectionPoint(id="cp0"),)


class Scaling(Strict):
    """Instances: ``min`` at instantiation, up to ``max``, ``step`` per scaling step."""
    min: Annotated[int, number(integer=True, ge=1)] = 1
    max: Annotated[int, number(integer=True, ge=1)] = 1
    step: Annotated[int, number(integer=True, ge=1)] = 1

    @classmethod
    def keys(cls):
        return ["min", "max"], ["step"]

    @model_validator(mode="after")
    def _bounds(self):
        lo, hi, step = self.min, self.max, self.step
        if hi < lo:
            raise fail(f"max {hi} is below min {lo}", "max")
        if hi == lo and step != 1:
            raise fail(f"step {step} with max == min ({lo}); expected 1", "step")
        if hi > lo and step > hi - lo:
            raise fail(f"step {step} is larger than max - min = {hi - lo}; expected "
                       f"1..{hi - lo}", "step")
        return self


class Healing(Strict):
    """How the VNFM heals an instance: ``restart`` in place or ``recreate``."""
    mode: Annotated[str, choice(*HEALING_MODES)] = "restart"   # in place | new instance
    max_restarts: Annotated[int, number(integer=True, ge=0)] = 3


class Placement(Strict):
    """Placement constraints the VIM enforces: ``anti_affinity`` puts no two instances of
    this VNF on one compute node (ETSI SOL001 ``tosca.policies.nfv.AntiAffinityRule``)."""
    anti_affinity: Boolean = False


class MonitoringParam(Strict):
    """A metric the NFVO reads every ``interval_s`` seconds."""
    id: NonEmpty
    metric: Annotated[str, choice(*METRICS)]
    interval_s: Annotated[float, number(gt=0)] = 1.0

    @field_validator("interval_s")
    @classmethod
    def _as_float(cls, v):
        return float(v)


def _one_vdu(v: Any):
    listing()(v)
    if len(v) > 1:
        raise fail(f"{len(v)} VDUs given; exactly one VDU per VNFD is supported for now")
    return v


class VNFD(Strict):
    """One VNF. ``source`` (file name), ``origin`` (format and original id) and
    ``warnings`` (what a reader could not honour) are not part of the document."""
    id: VnfdId
    name: Text = ""                  # the id when not given
    version: Text = "1.0"
    description: Text = ""
    vdus: Annotated[tuple[VDU, ...], BeforeValidator(_one_vdu)] = Field(alias="vdu")
    scaling: Scaling = Scaling(min=1, max=1)
    monitoring: Annotated[tuple[MonitoringParam, ...],
                          BeforeValidator(listing(nonempty=False))] = ()
    healing: Healing = Healing()
    placement: Placement = Placement()
    source: str = ""
    origin: str = ""
    warnings: tuple[str, ...] = ()

    @field_validator("monitoring")
    @classmethod
    def _unique_monitoring_ids(cls, v):
        unique(v, "monitoring id", key=lambda m: m.id, field="id")
        return v

    @model_validator(mode="after")
    def _name_defaults_to_id(self):
        if not self.name:
            self.__dict__["name"] = self.id
        return self

    @property
    def vdu(self) -> VDU:
        """The VDU (exactly one is supported)."""
        return self.vdus[0]

    @property
    def flavour(self) -> Flavour:
        f = self.vdus[0].flavour
        return Flavour(f.vcpu, f.memory_mb, f.disk_gb)

    @property
    def image(self) -> Image:
        i = self.vdus[0].image
        return Image(i.program, copy.deepcopy(i.params))

    def to_dict(self) -> dict:
        """The testbed's YAML format, every default explicit:
        ``parse_vnfd(v.to_dict(), s) == v``."""
        d: dict = {"id": self.id, "name": self.name, "version": self.version}
        if self.description:
            d["description"] = self.description
        d["vdu"] = [{"id": u.id, "flavour": u.flavour.model_dump(),
                     "image": {"program": u.image.program,
                               "params": copy.deepcopy(u.image.params)},
                     "connection_points": [{"id": c.id} for c in u.connection_points]}
                    for u in self.vdus]
        d.update(scaling=self.scaling.model_dump(),
                 monitoring=[m.model_dump() for m in self.monitoring],
                 healing=self.healing.model_dump(), placement=self.placement.model_dump())
        return {"vnfd": d}


class VNFDDocument(Strict):
    """A VNFD file: ``{"vnfd": {...}}``."""
    vnfd: VNFD


def load_vnfd(path) -> VNFD:
    """Read and parse one VNFD file of the testbed's format; errors are prefixed with the
    file name. (``mano.descriptors.read_descriptors`` reads every supported format.)"""
    data, name = read_yaml(path)
    return parse_vnfd(data, name)


def parse_vnfd(data, source: str, *, origin: str = "", warnings=()) -> VNFD:
    """Parse a VNFD document (``{"vnfd": {...}}``); ``source`` prefixes every error
    (``DescriptorError``)."""
    v = validate(VNFDDocument, data, source).vnfd
    return v.model_copy(update={"source": source, "origin": origin,
                                "warnings": tuple(warnings)})


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
