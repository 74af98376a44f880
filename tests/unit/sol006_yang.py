"""Validation of SOL006 YAML documents against ETSI's SOL006 YANG modules (test helper).

The modules are in ``tests/data/sol006/yang`` (ETSI NFV-SOL006 v3.6.1, BSD-3-Clause, see
the README there); ``ietf-inet-types`` and ``ietf-yang-types`` come with pyang. The data
is read with yangson after the YAML is encoded as YANG JSON (RFC 7951): the top-level
member is qualified with its module (``etsi-nfv-vnfd:vnfd``), 64-bit integers and
decimal64 values become strings (RFC 7951 §6.1, §6.2) and an identity is qualified with
the module that defines it (§6.8). A decimal64 value with more fraction digits than its
type's ``fraction-digits`` is a wrong type (yangson would round it silently).

:func:`deviations` reports every place where a document departs from the schema (an
unknown member, a value of the wrong type, a missing mandatory node), not just the first:
an unknown or mistyped node is removed and a missing one is filled with a placeholder,
then the document is read again. Only the syntax of the schema is checked (structure,
types, mandatory nodes, keys): the modules' ``must`` expressions name nodes that do not
exist (pyang warns about each), so semantic validation would refuse valid documents.

Two gaps of yangson 1.7 are bridged here: it cannot follow ``deref()`` in a leafref path
(YANG 1.1 §9.9.2), so such a leaf is read as a string (its value's type is then not
checked; leafref targets are semantic anyway); and it fails with a TypeError on a missing
mandatory choice, reported here as ``missing-choice``.
"""
from __future__ import annotations

import copy
import decimal
import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from yangson import DataModel, datatype
from yangson.enumerations import ContentType, ValidationScope
from yangson.exceptions import (
    InvalidLeafrefPath,
    RawMemberError,
    RawTypeError,
    SchemaError,
    YangTypeError,
)
from yangson.schemanode import ContainerNode, InternalNode, LeafListNode, LeafNode, ListNode

YANG = Path(__file__).resolve().parents[1] / "data" / "sol006" / "yang"
IETF = Path(sys.prefix) / "share" / "yang" / "modules" / "ietf"   # installed with pyang
DESCRIPTORS = "etsi-nfv-descriptors"
TOP = {"vnfd": "etsi-nfv-vnfd", "nsd": "etsi-nfv-nsd"}
SUBMODULES = (("etsi-nfv-common", "2022-03-08"), ("etsi-nfv-vnf", "2022-03-08"),
              ("etsi-nfv-ns", "2022-03-08"), ("etsi-nfv-pnf", "2020-06-01"))
MODULES = (("ietf-inet-types", "2013-07-15", "urn:ietf:params:xml:ns:yang:ietf-inet-types",
            "import"),
           ("ietf-yang-types", "2013-07-15", "urn:ietf:params:xml:ns:yang:ietf-yang-types",
            "import"),
           (DESCRIPTORS, "2022-03-08", "urn:etsi:nfv:yang:etsi-nfv-descriptors", "implement"),
           ("etsi-nfv-vnfd", "2020-06-10", "urn:etsi:nfv:yang:etsi-nfv-vnfd", "implement"),
           ("etsi-nfv-nsd", "2019-04-25", "urn:etsi:nfv:yang:etsi-nfv-nsd", "implement"))
AS_STRING = (datatype.Int64Type, datatype.Uint64Type, datatype.Decimal64Type)


def _leafref_post_process(self, tnode, _original=datatype.LeafrefType._post_process):
    try:
        _original(self, tnode)
    except InvalidLeafrefPath:      # a deref() path: read the leaf as a string
        self.ref_type = datatype.StringType(self.sctx, "string")


def _check_schema_pattern(self, inst, ctype, _original=InternalNode._check_schema_pattern):
    try:
        _original(self, inst, ctype)
    except TypeError:               # yangson 1.7 fails on an unmet mandatory choice
        raise SchemaError(inst, "missing-choice", "a mandatory choice has no case") from None


datatype.LeafrefType._post_process = _leafref_post_process
InternalNode._check_schema_pattern = _check_schema_pattern


@dataclass(frozen=True)
class Deviation:
    """One departure from the schema: ``path`` is the schema path without list keys or
    module prefixes (``vnfd/vdu/cloud-init-file``), ``kind`` one of ``unknown member``,
    ``wrong type``, ``missing <node>`` or another schema error tag."""
    path: str
    kind: str


@functools.cache
def data_model() -> DataModel:
    """The SOL006 data model (yangson), built once."""
    modules = []
    for name, rev, ns, conformance in MODULES:
        m = {"name": name, "revision": rev, "namespace": ns, "conformance-type": conformance}
        if name == DESCRIPTORS:
            m["submodule"] = [{"name": n, "revision": r} for n, r in SUBMODULES]
        modules.append(m)
    library = {"ietf-yang-library:modules-state": {"module-set-id": "sol006-3.6.1",
                                                   "module": modules}}
    return DataModel(json.dumps(library), [str(YANG), str(IETF)])


def to_json(doc: dict) -> dict:
    """A SOL006 YAML document (``{"vnfd": ...}`` or ``{"nsd": {"nsd": [...]}}``) as YANG
    JSON: qualified top-level members, RFC 7951 strings and identities."""
    dm = data_model()
    out = {}
    for key, value in doc.items():
        module = TOP.get(key)
        node = dm.schema.get_data_child(key, module) if module else None
        out[f"{module}:{key}" if module else key] = (
            _encode(node, copy.deepcopy(value)) if node is not None else value)
    return out


def _encode(node, value):
    if isinstance(node, (LeafNode, LeafListNode)):
        if isinstance(node, LeafListNode) and isinstance(value, list):
            return [_scalar(node.type, v) for v in value]
        return _scalar(node.type, value)
    if isinstance(node, ListNode) and isinstance(value, list):
        return [_members(node, v) for v in value]
    if isinstance(node, ContainerNode):
        return _members(node, value)
    return value


def _members(node, value):
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        child = node.get_data_child(k, node.ns) if isinstance(k, str) else None
        out[k] = _encode(child, v) if child is not None else v
    return out


def _scalar(typ, v):
    if isinstance(typ, datatype.LeafrefType):
        typ = typ.ref_type
    if isinstance(typ, datatype.Decimal64Type) and isinstance(v, (int, float, str)) \
            and not isinstance(v, bool) and _digits(v) > typ.fraction_digits:
        # yangson would round it; RFC 7950 §9.3.4 allows fraction-digits digits only
        return f"{v} (more than {typ.fraction_digits} fraction digits)"
    if isinstance(typ, AS_STRING) and isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if isinstance(typ, datatype.IdentityrefType) and isinstance(v, str) and ":" not in v:
        return f"{DESCRIPTORS}:{v}"
    if isinstance(typ, datatype.UnionType):
        for member in typ.types:
            enc = _scalar(member, v)
            if enc is not v:
                return enc
    return v


def _digits(v) -> int:
    """The number of fraction digits of a decimal as written (0 for an integer)."""
    try:
        exp = decimal.Decimal(str(v)).normalize().as_tuple().exponent
    except decimal.InvalidOperation:
        return 0
    return -exp if isinstance(exp, int) and exp < 0 else 0


def _schema_path(route: str) -> str:
    route = re.sub(r"\[[^]]*\]|=[^/]*", "", str(route))
    return "/".join(p.split(":")[-1] for p in route.split("/") if p)


def _locate(raw, route: str):
    """(parent, key) of the raw node at a yangson instance route: ``/a/b=k/c`` (a raw
    data path) or ``/a/b[id="k"]/c`` (an instance route); a list entry is found by its
    first key value."""
    parent, key, node = None, None, raw
    for part in [p for p in re.split(r"/(?![^\[]*\])", str(route)) if p]:
        m = re.fullmatch(r'([^=\[]+)(?:=([^,]*).*|\[[^=]+="?([^"\]]*)"?\].*)?', part)
        name, sel = m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
        if isinstance(node, dict) and name not in node:
            name = name.split(":")[-1]
        parent, key, node = node, name, node[name]
        if sel is not None and isinstance(node, list):
            idx = next(i for i, item in enumerate(node)
                       if isinstance(item, dict) and sel in map(str, item.values()))
            parent, key, node = node, idx, node[idx]
    return parent, key


def _placeholder(node):
    if isinstance(node, ContainerNode):
        return {}
    if isinstance(node, ListNode):
        return [{k[0]: _placeholder(node.get_child(*k)) for k in node.keys}]
    typ = node.type.ref_type if isinstance(node.type, datatype.LeafrefType) else node.type
    if isinstance(typ, datatype.IdentityrefType):
        adjs = data_model().schema_data.identity_adjs
        name, module = min(adjs[typ.bases[0]].derivs)
        value = f"{module}:{name}"
        return [value] if isinstance(node, LeafListNode) else value
    if isinstance(typ, datatype.EnumerationType):
        value = typ.sorted_enums()[0][0]
        return [value] if isinstance(node, LeafListNode) else value
    for candidate in ("x", "1", 1, True):
        value = typ.from_raw(candidate)
        if value is not None and value in typ:
            return [candidate] if isinstance(node, LeafListNode) else candidate
    return [] if isinstance(node, LeafListNode) else "x"


def deviations(doc: dict, limit: int = 200) -> list[Deviation]:
    """Every departure of ``doc`` (a SOL006 YAML document) from the SOL006 schema, in the
    order found; [] when it validates."""
    dm = data_model()
    raw = to_json(doc)
    found: list[Deviation] = []
    filled: set[tuple[str, str]] = set()    # (route, member) given a placeholder
    for _ in range(limit):
        try:
            inst = dm.from_raw(raw)
        except (RawMemberError, RawTypeError) as exc:
            kind = "unknown member" if isinstance(exc, RawMemberError) else "wrong type"
            found.append(Deviation(_schema_path(exc.path), kind))
            parent, key = _locate(raw, exc.path)
            del parent[key]
            continue
        try:
            inst.validate(ValidationScope.syntax, ContentType.config)
        except YangTypeError as exc:
            found.append(Deviation(_schema_path(exc.instance.instance_route()), "wrong type"))
            parent, key = _locate(raw, exc.instance.instance_route())
            del parent[key]
            continue
        except SchemaError as exc:
            route = exc.instance.instance_route()
            parent, key = _locate(raw, route)
            names = re.findall(r"'([^']+)'", exc.message or "")
            fresh = [n for n in names if (str(route), n) not in filled]
            if exc.tag == "missing-data" and fresh:
                target = parent[key] if key is not None else raw
                for name in fresh:
                    filled.add((str(route), name))
                    found.append(Deviation(_schema_path(route), f"missing {name}"))
                    child = exc.instance.schema_node.get_data_child(
                        name, exc.instance.schema_node.ns)
                    target[name] = _placeholder(child) if child is not None else "x"
            elif key is None:       # the document itself: nothing left to remove
                found.append(Deviation(_schema_path(route), exc.tag or "schema error"))
                return found
            else:
                found.append(Deviation(_schema_path(route), exc.tag or "schema error"))
                del parent[key]
            continue
        return found
    raise AssertionError(f"more than {limit} deviations; the last: {found[-5:]}")
