"""What every reader shares: typed access to a document with the path to each value, the
mapping of foreign identifiers and software images onto the testbed's (documented in
descriptors/README.md, "Other formats"), sizes with units, and classifier fields.

Readers never let an exception other than ``DescriptorError`` escape: every access goes
through ``Node``, whose accessors check the kind of the value and name its path.
"""
from __future__ import annotations

import ipaddress
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import ValidationError

from mano.fields import messages
from mano.descriptors._yaml import read_yaml
from mano.descriptors.nsd import AUTO, NSD, parse_nsd
from mano.descriptors.vnfd import PROGRAMS, VNFD, VNFD_ID, ImageDesc, parse_vnfd
from mano.errors import DescriptorError


@dataclass
class Bundle:
    """The descriptors one path holds, read into the model: ``format`` is one of
    ``FORMATS``; ``warnings`` lists everything the testbed cannot honour (each VNFD and
    NSD also carries its own)."""
    format: str
    vnfds: list[VNFD] = field(default_factory=list)
    nsds: list[NSD] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def collect_warnings(self) -> None:
        """Append the VNFDs' and NSDs' warnings (once) to ``warnings``."""
        for d in [*self.vnfds, *self.nsds]:
            for w in d.warnings:
                if w not in self.warnings:
                    self.warnings.append(w)


@dataclass(frozen=True)
class Parameters:
    """Values for a TOSCA template's ``topology_template.inputs`` (what Tacker takes from
    ``--param-file`` / ``param_values``): input name -> value; ``source`` (the parameter
    file's name) prefixes every error about them."""
    values: dict
    source: str = "parameters"

    @classmethod
    def load(cls, path) -> Parameters:
        """The parameters of a YAML file holding one mapping (input name -> value).
        Raises ``DescriptorError`` naming the file if it is not one."""
        data, name = read_yaml(path)
        return cls.of(data, name)

    @classmethod
    def of(cls, data, source: str = "parameters") -> Parameters:
        """Parameters from a mapping (``None`` is no parameter); anything else is refused
        with a ``DescriptorError``."""
        if data is None:
            data = {}
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise DescriptorError(f"{source}: (top): expected a mapping of input names to "
                                  f"values (a parameter file), got {_kind(data)} "
                                  f"{_short(data)}")
        return cls(dict(data), source)


class Node:
    """A value of a document and its path (``topology_template.node_templates.VDU1``).

    Accessors return the value if it has the expected kind, else raise
    ``DescriptorError("<source>: <path>: expected ..., got ...")``; a missing key is a
    ``Node`` whose value is ``None``."""

    def __init__(self, value: Any, path: str, source: str):
        self.value, self.path, self.source = value, path, source

    def fail(self, msg: str, sub: str = "") -> NoReturn:
        raise DescriptorError(f"{self.source}: {self.path + sub or '(top)'}: {msg}")

    def warn(self, msg: str, sub: str = "") -> str:
        return f"{self.source}: {self.path + sub or '(top)'}: {msg}"

    def _child(self, key) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else str(key)

    @property
    def present(self) -> bool:
        return self.value is not None

    def get(self, key: str) -> Node:
        if self.value is None:
            return Node(None, self._child(key), self.source)
        if not isinstance(self.value, dict):
            self.fail(f"expected a mapping, got {_kind(self.value)} {_short(self.value)}")
        return Node(self.value.get(key), self._child(key), self.source)

    def need(self, key: str, what: str = "") -> Node:
        """The child ``key``, which must be present."""
        n = self.get(key)
        if n.value is None:
            self.fail(f"missing required key {key!r}" + (f" ({what})" if what else ""))
        return n

    def mapping(self) -> dict:
        if self.value is None:
            return {}
        if not isinstance(self.value, dict):
            self.fail(f"expected a mapping, got {_kind(self.value)} {_short(self.value)}")
        return self.value

    def items(self) -> list[tuple[str, Node]]:
        return [(str(k), Node(v, self._child(str(k)), self.source))
                for k, v in self.mapping().items()]

    def values(self) -> list[Node]:
        return [n for _, n in self.items()]

    def elems(self) -> list[Node]:
        """The items of a list (nothing when absent)."""
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {_kind(self.value)} {_short(self.value)}")
        return [Node(v, self._child(i), self.source) for i, v in enumerate(self.value)]

    def text(self, default: str | None = None) -> str | None:
        """A string (a number is taken as written); ``default`` when absent."""
        v = self.value
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            self.fail(f"expected a string, got {_kind(v)} {_short(v)}")
        return str(v)

    def need_text(self) -> str:
        t = self.text()
        if not t:
            self.fail(f"expected a non-empty string, got {_short(self.value)}")
        return t

    def integer(self, default: int | None = None, *, ge: int = 0) -> int | None:
        """An integer >= ``ge`` (a string of digits is accepted, as YANG JSON writes
        64-bit integers); ``default`` when absent."""
        v = self.value
        if v is None:
            return default
        if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < ge:
            self.fail(f"expected an integer >= {ge}, got {_short(self.value)}")
        return v

    def number(self, default: float | None = None) -> float | None:
        """A finite number > 0 (a decimal string is accepted, as YANG writes decimal64)."""
        v = self.value
        if v is None:
            return default
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                self.fail(f"expected a number, got {_short(self.value)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v <= 0:
            self.fail(f"expected a positive number, got {_short(self.value)}")
        return v


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(v), "a value")


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n] + "..."


# ------------------------------------------------------------------ identifiers
def vnfd_id_for(external: str) -> str:
    """The testbed's VNFD id for a foreign VNFD id (``[a-z][a-z0-9]{0,5}``): the id itself
    when valid, else its first four letters and digits (lower case, from the first
    letter) and two characters of its CRC-32, so that one foreign id always gives the
    same testbed id (``b1bb0ce7-ebca-...`` -> ``b1bbxx``)."""
    if VNFD_ID.fullmatch(external):
        return external
    s = re.sub(r"[^a-z0-9]", "", external.lower())
    s = re.sub(r"^[0-9]+", "", s) or "v"
    tag = _base36(zlib.crc32(external.encode()))[:2].rjust(2, "0")
    return s[:4] + tag


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def nsd_id(external: str) -> str:
    """The testbed's NSD id (``[A-Za-z][A-Za-z0-9_-]{0,31}``) for a foreign one."""
    s = re.sub(r"[^A-Za-z0-9_\-]", "-", external)
    s = re.sub(r"^[^A-Za-z]+", "", s) or "ns"
    if len(s) > 32 or s != external:
        s = s[:29] + "-" + _base36(zlib.crc32(external.encode()))[:2]
    return s


# ---------------------------------------------------------------- software images
DEFAULT_PROGRAM = "forwarder"
PARAMLESS = ("forwarder", "firewall")


def program_for(image: str | None, where: Node, *, params_given: bool = False
                ) -> tuple[str, list[str]]:
    """The VNF program that runs for a software image (descriptors/README.md, "Software
    images"): a name containing ``testbed-<program>`` selects that program; one
    containing ``firewall`` runs the firewall (allow all: a foreign descriptor carries
    no rules); anything else runs the default, the forwarder. Returns the program and the
    warnings saying what was substituted. ``nat`` and ``lb`` need parameters: naming them
    is refused unless the descriptor gives them (``params_given``: strict SOL006 as the
    testbed writes it)."""
    name = (image or "").lower()
    m = re.search(r"testbed[-:_](\w+)", name)
    if m:
        prog = m.group(1)
        if prog not in PROGRAMS:
            where.fail(f"software image {image!r} names no program of the testbed; known: "
                       f"{', '.join(PROGRAMS)}")
        if prog not in PARAMLESS and not params_given:
            where.fail(f"program {prog!r} needs parameters (see descriptors/README.md) that "
                       f"this format cannot carry; write the VNFD in the testbed's format")
        return prog, []
    if "firewall" in name:
        return "firewall", [where.warn(f"software image {image!r} runs the testbed's "
                                       f"firewall program with no rules (allow all)")]
    what = f"software image {image!r}" if image else "no software image"
    return DEFAULT_PROGRAM, [where.warn(f"{what}: the testbed has no program for it; the "
                                        f"default program {DEFAULT_PROGRAM!r} runs instead")]


# ---------------------------------------------------------------------- sizes
_UNITS = {"b": 1 / 2**20, "kb": 1e3 / 2**20, "kib": 1 / 1024, "mb": 1e6 / 2**20,
          "mib": 1.0, "gb": 1e9 / 2**20, "gib": 1024.0, "tb": 1e12 / 2**20,
          "tib": 2.0**20}


def size_mb(node: Node, default_unit: str = "mib") -> int | None:
    """A TOSCA ``scalar-unit.size`` ("512 MB", "1 GiB") or a bare number in
    ``default_unit``, in MiB rounded up; ``None`` when absent. Like OpenStack, "MB" is
    read as MiB (a VNFD's "512 MB" is a 512 MiB flavour)."""
    v = node.value
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        num, unit = float(v), default_unit
    elif isinstance(v, str) and (m := re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", v)):
        try:
            num = float(m.group(1))
        except ValueError:
            node.fail(f"{v!r} is not a size (e.g. 512 MB, 1 GB)")
        unit = (m.group(2) or default_unit).lower()
    else:
        node.fail(f"{_short(v)} is not a size (e.g. 512 MB, 1 GB)")
    unit = {"mb": "mib", "gb": "gib", "kb": "kib", "tb": "tib"}.get(unit, unit)
    if unit not in _UNITS or not math.isfinite(num) or num < 0:
        node.fail(f"{_short(v)} is not a size: expected a number and a unit "
                  f"(B, kB, KiB, MB, MiB, GB, GiB, TB, TiB)")
    return math.ceil(num * _UNITS[unit])


# ------------------------------------------------------------------ classifiers
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}


def protocol(node: Node) -> int | None:
    """An IP protocol: a number 0..255 or tcp, udp, icmp."""
    v = node.value
    if v is None:
        return None
    if isinstance(v, str) and v.lower() in PROTOCOLS:
        return PROTOCOLS[v.lower()]
    n = node.integer()
    if n is None or n > 255:
        node.fail(f"{v!r} is not an IP protocol (a number 0..255, tcp, udp or icmp)")
    return n


def prefix(node: Node, notes: list[str]) -> str | None:
    """An IPv4 address or prefix; host bits are cleared with a warning (Tacker writes
    ``192.168.1.2/24``)."""
    v = node.text()
    if v is None:
        return None
    try:
        if "/" not in v:
            return str(ipaddress.IPv4Address(v))
        net = ipaddress.IPv4Network(v, strict=False)
    except ValueError:
        node.fail(f"{v!r} is not an IPv4 address or prefix (e.g. 10.0.0.0/24)")
    if str(net) != v:
        notes.append(node.warn(f"{v!r} has host bits set; matching {net}"))
    return str(net) if net.prefixlen < 32 else str(net.network_address)


def port(node: Node) -> int | None:
    """One port out of a port, a range "80-80" or "[80, 80]"; ``None`` for any port (0,
    absent, or the whole range 0..65535). A wider range is refused: the controller
    matches exact ports."""
    v = node.value
    if v is None:
        return None
    lo = hi = None
    if isinstance(v, list) and len(v) == 2:
        lo, hi = Node(v[0], node.path + "[0]", node.source).integer(), \
            Node(v[1], node.path + "[1]", node.source).integer()
    elif isinstance(v, str) and (m := re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", v)):
        lo, hi = int(m.group(1)), int(m.group(2))
    else:
        lo = hi = node.integer()
    if lo == 0 and hi in (0, 65535):
        return None
    if lo is None or hi is None or not 1 <= lo <= 65535 or lo != hi:
        node.fail(f"port range {_short(v)}: the testbed's classifier matches one port "
                  f"(1..65535) or any (0 or 0-65535)")
    return lo


def classifier(proto: int | None, src: str | None, dst: str | None, sport: int | None,
               dport: int | None, where: Node) -> dict:
    """The controller's match keys from 5-tuple fields; ports need tcp or udp."""
    out: dict = {}
    if proto is not None:
        out["ip_proto"] = proto
    if src:
        out["ipv4_src"] = src
    if dst:
        out["ipv4_dst"] = dst
    for key, p in (("src", sport), ("dst", dport)):
        if p is None:
            continue
        if proto not in (6, 17):
            where.fail(f"a {key} port ({p}) needs protocol tcp or udp, got "
                       f"{'none' if proto is None else proto}")
        out[f"{'tcp' if proto == 6 else 'udp'}_{key}"] = p
    return out


# ------------------------------------------------------------------- VNFDs
@dataclass
class VnfParts:
    """What a reader found for one VNF, before it becomes a ``VNFD``."""
    external_id: str
    name: str
    version: str
    description: str
    vdu_id: str
    vcpu: float
    memory_mb: int
    disk_gb: int
    image: str | None
    image_where: Node
    connection_points: list[str]
    initial: int = 1                    # instances at instantiation
    floor: int | None = None            # the format's minimum, when it differs
    maximum: int | None = None
    step: int = 1
    anti_affinity: bool = False
    monitoring: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    params: dict | None = None          # the program's parameters, where a format has them
    params_where: Node | None = None
    healing: dict | None = None         # {mode, max_restarts}, where a format has them


def build_vnfd(p: VnfParts, source: str, origin: str, where: Node) -> VNFD:
    """The ``VNFD`` for ``p``: the program from the image, one connection point (more
    share the instance's one interface, with a warning), scaling bounds the model
    accepts (each adjustment warned)."""
    notes = list(p.warnings)
    program, img_notes = program_for(p.image, p.image_where,
                                     params_given=p.params is not None)
    notes += img_notes
    if p.params is not None and p.params_where is not None:
        try:
            ImageDesc.model_validate({"program": program, "params": p.params})
        except ValidationError as exc:
            path, msg = messages(exc)[0]
            p.params_where.fail(f"parameters of program {program!r}: {path}: {msg}")
    if len(p.connection_points) > 1:
        notes.append(where.warn(f"connection points {', '.join(p.connection_points)} share "
                                f"the instance's one interface"))
    cp = p.connection_points[0] if p.connection_points else "cp0"
    lo = p.initial
    if lo < 1:
        notes.append(where.warn(f"{lo} instances at instantiation: the testbed starts at "
                                f"least one"))
        lo = 1
    hi = max(lo, p.maximum if p.maximum is not None else lo)
    if p.maximum is not None and p.maximum < lo:
        notes.append(where.warn(f"maximum {p.maximum} instances is below the {lo} started; "
                                f"no scale-out"))
    if p.floor is not None and p.floor != lo:
        notes.append(where.warn(f"minimum {p.floor} instances: scale-in stops at the "
                                f"{lo} started at instantiation"))
    step = max(1, p.step)
    if hi == lo:
        step = 1
    elif step > hi - lo:
        notes.append(where.warn(f"scaling step {step} is larger than the room to scale "
                                f"({hi - lo}); step {hi - lo}"))
        step = hi - lo
    vcpu = p.vcpu
    if vcpu <= 0:
        where.fail(f"{vcpu} virtual CPUs: expected a positive number")
    tid = vnfd_id_for(p.external_id)
    if tid != p.external_id:
        notes.append(where.warn(f"VNFD id {p.external_id!r} is {tid!r} here (instance names "
                                f"must fit Linux interface names)"))
    doc = {"vnfd": {
        "id": tid, "name": p.name or p.external_id, "version": p.version or "1.0",
        "description": p.description or "",
        "vdu": [{"id": p.vdu_id, "flavour": {"vcpu": vcpu, "memory_mb": max(1, p.memory_mb),
                                              "disk_gb": max(0, p.disk_gb)},
                 "image": {"program": program, "params": p.params or {}},
                 "connection_points": [{"id": cp}]}],
        "scaling": {"min": lo, "max": hi, "step": step},
        "monitoring": p.monitoring,
        **({"healing": p.healing} if p.healing is not None else {}),
        "placement": {"anti_affinity": bool(p.anti_affinity)}}}
    return parse_vnfd(doc, source, origin=origin, warnings=notes)


def build_nsd(ext_id: str, name: str, version: str, description: str,
              vnfs: list[str], links: list[str], graphs: list[dict], source: str,
              origin: str, notes: list[str], where: Node,
              written: dict[str, str] | None = None) -> NSD:
    """The ``NSD`` for what a reader found: ``vnfs`` are testbed VNFD ids, ``graphs``
    ``{"id", "classifier", "path"}`` (ends ``auto``, bound at onboarding); ``written``
    maps a testbed VNFD id to the foreign id the descriptor wrote (``vnfd_id_for``), so
    that onboarding can name it when that VNFD is missing."""
    if not graphs:
        where.fail("no forwarding graph: a network service here is a chain of VNFs "
                   "between two endpoints (give a VNFFG with a forwarding path)")
    nid = nsd_id(ext_id)
    if nid != ext_id:
        notes = notes + [where.warn(f"NSD id {ext_id!r} is {nid!r} here")]
    doc = {"nsd": {
        "id": nid, "name": name or ext_id, "version": version or "1.0",
        "description": description or "",
        "vnfs": [{"vnfd": v} for v in vnfs],
        "virtual_links": [{"id": v, "connectivity": "ip"} for v in links],
        "vnffg": [{"id": g["id"], "classifier": g["classifier"], "ingress": AUTO,
                   "egress": AUTO, "path": g["path"], "protection": False} for g in graphs]}}
    renamed = tuple((t, w) for t, w in (written or {}).items() if t != w)
    return parse_nsd(doc, source, origin=origin, warnings=notes, foreign_vnfds=renamed)
