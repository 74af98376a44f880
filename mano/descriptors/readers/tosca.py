"""TOSCA documents as ETSI SOL001 and SOL004 package them: a CSAR (a directory or zip with
``TOSCA-Metadata/TOSCA.meta``, or one YAML file at its root) or a single YAML file, its
imports resolved inside the package, its types followed through ``derived_from``, and the
values of node templates (``get_input``, requirements, policies).
"""
from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path

from mano.descriptors._yaml import parse_yaml
from mano.descriptors.readers.common import Node, Parameters
from mano.errors import DescriptorError

META = "TOSCA-Metadata/TOSCA.meta"
MAX_FILE = 4 * 2**20            # bytes of one definitions file read from a package
ETSI_TYPES_PREFIX = "etsi_nfv_sol001_"


class Package:
    """The definitions files of a CSAR (directory or zip) or of a single file's folder,
    read on demand by path relative to the package root."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self._zip: zipfile.ZipFile | None = None
        self._names: set[str] = set()
        if path.is_file() and zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
                self._names = {n for n in self._zip.namelist() if not n.endswith("/")}
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise DescriptorError(f"{self.name}: not a readable zip: {exc}") from None
            self.root = None
        else:
            self.root = path if path.is_dir() else path.parent

    @property
    def is_csar(self) -> bool:
        """A directory or zip (not a single file's folder)."""
        return self._zip is not None or self.path.is_dir()

    def names(self) -> list[str]:
        """Files at the root of the package."""
        if self._zip is not None:
            return sorted(self._names)
        return sorted(p.name for p in self.root.iterdir() if p.is_file())

    def definitions(self) -> list[str]:
        """The YAML files in the package's ``Definitions/`` folder (SOL004's usual place
        for them), relative to the package root."""
        if self._zip is not None:
            return sorted(n for n in self._names if posixpath.dirname(n) == "Definitions"
                          and n.endswith((".yaml", ".yml")))
        d = self.root / "Definitions"
        return sorted(f"Definitions/{p.name}" for p in d.glob("*.y*ml") if p.is_file()) \
            if d.is_dir() else []

    def has(self, rel: str) -> bool:
        if self._zip is not None:
            return rel in self._names
        return self.root is not None and (self.root / rel).is_file()

    def text(self, rel: str) -> str:
        where = f"{self.name}/{rel}" if self._zip is not None or self.path.is_dir() else rel
        try:
            if self._zip is not None:
                info = self._zip.getinfo(rel)
                if info.file_size > MAX_FILE:
                    raise DescriptorError(f"{where}: {info.file_size} bytes; definitions "
                                          f"files over {MAX_FILE} bytes are refused")
                return self._zip.read(rel).decode()
            f = self.root / rel
            if f.stat().st_size > MAX_FILE:
                raise DescriptorError(f"{where}: definitions files over {MAX_FILE} bytes "
                                      f"are refused")
            return f.read_text()
        except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile, ValueError,
                RuntimeError, NotImplementedError) as exc:
            raise DescriptorError(f"{where}: cannot read: {exc}") from None

    def label(self, rel: str) -> str:
        return f"{self.name}/{rel}" if self._zip is not None or self.path.is_dir() else \
            posixpath.basename(rel)


def entry_of(pkg: Package) -> str:
    """The entry definitions file named by TOSCA.meta (``Entry-Definitions``), or the
    one YAML file at the root of a package without TOSCA-Metadata (SOL004)."""
    if not pkg.has(META):
        roots = sorted(n for n in pkg.names() if "/" not in n and n.endswith((".yaml", ".yml")))
        if len(roots) != 1:
            deeper = [n for n in pkg.definitions()
                      if not posixpath.basename(n).startswith(ETSI_TYPES_PREFIX)]
            hint = (f"; or onboard its top-level definitions file itself (one of "
                    f"{', '.join(deeper)})") if deeper else ""
            raise DescriptorError(f"{pkg.name}: no {META} and {len(roots)} YAML files at the "
                                  f"root; expected TOSCA-Metadata or exactly one{hint}")
        return roots[0]
    text = pkg.text(META)
    fields = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            fields[k.strip()] = v.strip()
    entry = fields.get("Entry-Definitions")
    if not entry:
        raise DescriptorError(f"{pkg.label(META)}: missing 'Entry-Definitions'; known keys: "
                              f"{', '.join(fields) or 'none'}")
    entry = posixpath.normpath(entry)
    if entry.startswith(("..", "/")) or not pkg.has(entry):
        raise DescriptorError(f"{pkg.label(META)}: Entry-Definitions: {entry!r} is not a "
                              f"file of the package")
    return entry


class Definitions:
    """Every file reachable by imports from the entry file: node types and templates."""

    def __init__(self, pkg: Package, entry: str, first=None):
        self.pkg = pkg
        self.files: dict[str, Node] = {}
        self.types: dict[str, dict] = {}        # node/policy/group type -> definition
        self.order: list[str] = []
        self._load(entry, first)

    def _load(self, rel: str, doc=None) -> None:
        pending = [(rel, doc)]
        while pending:
            rel, doc = pending.pop(0)
            if rel in self.files:
                continue
            label = self.pkg.label(rel)
            if doc is None:
                doc = parse_yaml(self.pkg.text(rel), label)
            top = Node(doc, "", label)
            top.mapping()
            self.files[rel] = top
            self.order.append(rel)
            for kind in ("node_types", "policy_types", "group_types"):
                for name, t in top.get(kind).items():
                    self.types.setdefault(name, t.mapping())
            for imp in top.get("imports").elems():
                target = import_file(imp)
                if posixpath.basename(target).startswith(ETSI_TYPES_PREFIX):
                    continue                     # the ETSI types are known here by name
                path = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
                if path.startswith("..") or target.startswith("/") or "://" in target:
                    imp.fail(f"import {target!r} is outside the package; imports are "
                             f"resolved inside it")
                if not self.pkg.has(path):
                    imp.fail(f"import {target!r} is not in the package (looked for {path})")
                pending.append((path, None))

    def derives(self, type_name: str | None, base: str) -> bool:
        """``type_name`` is ``base`` or derived from it (through the package's types)."""
        seen = set()
        while isinstance(type_name, str) and type_name not in seen:
            if type_name == base:
                return True
            seen.add(type_name)
            type_name = self.types.get(type_name, {}).get("derived_from")
        return False

    def templates(self) -> list[tuple[str, Node]]:
        """(file, topology_template) of every file that has one, in import order."""
        out = []
        for rel in self.order:
            tt = self.files[rel].get("topology_template")
            if tt.present:
                tt.mapping()
                out.append((rel, tt))
        return out

    def defaults(self, type_name: str | None) -> dict:
        """Property defaults of a node type and its ancestors (nearest wins)."""
        chain, seen = [], set()
        while isinstance(type_name, str) and type_name in self.types and type_name not in seen:
            seen.add(type_name)
            chain.append(self.types[type_name])
            type_name = self.types[type_name].get("derived_from")
        out: dict = {}
        for t in reversed(chain):
            props = t.get("properties")
            if isinstance(props, dict):
                for k, v in props.items():
                    if isinstance(v, dict) and "default" in v:
                        out[k] = v["default"]
        return out


def import_file(imp: Node) -> str:
    v = imp.value
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("file"), str):
        return v["file"]
    if isinstance(v, dict) and len(v) == 1:
        inner = next(iter(v.values()))
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("file"), str):
            return inner["file"]
    imp.fail(f"expected an import (a file name or {{file: NAME}}), got {v!r}")


def inputs_of(tt: Node) -> dict:
    out = {}
    for k, v in tt.get("inputs").items():
        if isinstance(v.value, dict) and "default" in v.value:
            out[k] = v.value["default"]
    for k, v in tt.get("substitution_mappings").get("properties").items():
        out.setdefault(k, v.value)
    return out


# TOSCA Simple Profile in YAML 1.3, 3.3 (primitive, list, map, range and scalar-unit
# types): the YAML values a parameter for an input of each declared type may have.
INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "float": (int, float), "boolean": (bool,),
    "list": (list,), "map": (dict,), "range": (list,), "timestamp": (str,),
    "version": (str, int, float), "scalar-unit.size": (str,), "scalar-unit.time": (str,),
    "scalar-unit.frequency": (str,), "scalar-unit.bitrate": (str,),
}


def bind_inputs(tts: list[Node], params: Parameters | None) -> dict:
    """The values ``params`` gives for the ``inputs`` declared by the topology templates
    ``tts`` (name -> value), to be laid over their defaults. A name no template declares
    is refused naming the declared inputs; a value not of the input's declared type
    (``INPUT_TYPES``; other types are not checked) is refused naming the type. A mapping
    whose one key is ``nsd`` or ``vnfd`` (not an input) holds the values, as Tacker's NS
    parameter files write them. Errors are ``DescriptorError`` prefixed with the parameter
    file's name."""
    declared: dict[str, Node] = {}
    for tt in tts:
        for k, v in tt.get("inputs").items():
            declared.setdefault(k, v)
    if params is None:
        return {}
    values, at = params.values, ""
    (top, inner), = values.items() if len(values) == 1 else ((None, None),)
    if top in ("nsd", "vnfd") and top not in declared and isinstance(inner, dict):
        values, at = inner, f"{top}."     # Tacker's NS parameter files: {nsd: {...}}
    out = {}
    for name, val in values.items():
        where = Node(val, f"{at}{name}", params.source)
        if name not in declared:
            where.fail(f"unknown parameter: the descriptor's inputs are "
                       f"{', '.join(declared) or 'none'}")
        decl = declared[name]
        typ = decl.get("type").text() if isinstance(decl.value, dict) else None
        ok = INPUT_TYPES.get(typ or "")
        if ok and (not isinstance(val, ok) or (isinstance(val, bool) and bool not in ok)):
            where.fail(f"expected {typ} (the type of input {name!r} at {decl.source}: "
                       f"{decl.path}), got {type(val).__name__} {val!r}"[:300])
        out[name] = val
    return out


def value_of(v, inputs: dict):
    """A property value with ``{get_input: name}`` replaced by the input's default."""
    if isinstance(v, dict) and len(v) == 1 and "get_input" in v:
        return inputs.get(v["get_input"]) if isinstance(v["get_input"], str) else None
    return v


def requirements(n: Node) -> list[tuple[str, str, Node]]:
    """(requirement name, target node template, node) of a node template; a requirement
    is ``{name: target}`` or ``{name: {node: target, ...}}``."""
    out = []
    for r in n.get("requirements").elems():
        for name, target in r.items():
            v = target.value
            if isinstance(v, dict):
                v = v.get("node")
            if isinstance(v, str):
                out.append((name, v, target))
    return out


def policies(tt: Node) -> list[tuple[str, Node]]:
    """(policy name, policy) from a list of one-key mappings or one mapping."""
    pol = tt.get("policies")
    if isinstance(pol.value, dict):
        return pol.items()
    out = []
    for p in pol.elems():
        out += p.items()
    return out
