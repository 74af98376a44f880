"""Reading YAML and checking values with the path to the field.

``Checker.fail`` raises the one error kind, ``DescriptorError``, as
``<source>: <field path>: <what is wrong; what would be valid>``. Every check returns the
value it accepted so that parsers read as a list of fields.
"""
from __future__ import annotations

import ipaddress
import math
from pathlib import Path
from typing import Any, NoReturn

import yaml

from mano.errors import DescriptorError


class Checker:
    """Checks values of one descriptor; ``source`` (a file name) prefixes every error."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, msg: str) -> NoReturn:
        raise DescriptorError(f"{self.source}: {path}: {msg}")

    def mapping(self, v: Any, path: str, required=(), optional=()) -> dict:
        """A mapping whose keys are all known, with every required key present."""
        known = list(required) + list(optional)
        if v is None and path == "(top)":
            self.fail(path, f"the document is empty; expected a mapping with key "
                            f"{', '.join(map(repr, known))}")
        if not isinstance(v, dict):
            self.fail(path, f"expected a mapping with keys {', '.join(known)}, "
                            f"got {_kind(v)} {v!r}")
        for k in v:
            if k not in known:
                self.fail(f"{path}.{k}" if path != "(top)" else str(k),
                          f"unknown key {k!r}; known: {', '.join(known)}")
        for k in required:
            if k not in v:
                self.fail(path, f"missing required key {k!r}; required: {', '.join(required)}")
        return v

    def number(self, v: Any, path: str, *, integer: bool = False, gt: float | None = None,
               ge: float | None = None, le: float | None = None) -> Any:
        """A finite number (an integer when ``integer``) within the given bounds."""
        what = "an integer" if integer else "a number"
        if gt == 0 and ge is None and le is None:
            what = "a positive integer" if integer else "a positive number"
        elif ge is not None and le is not None:
            what += f" {ge}..{le}"
        else:
            bounds = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
                      f"<= {le}" if le is not None else ""]
            what = " ".join([what, " and ".join(b for b in bounds if b)]).rstrip()
        ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
              and (isinstance(v, int) or not integer))
        if not ok or (gt is not None and not v > gt) or (ge is not None and v < ge) or (
                le is not None and v > le):
            self.fail(path, f"expected {what}, got {v!r}")
        return v

    def string(self, v: Any, path: str, pattern=None, what: str = "", hint: str = "") -> str:
        """A non-empty string, matching ``pattern`` when given."""
        if not isinstance(v, str) or not v:
            self.fail(path, f"expected a non-empty string, got {v!r}")
        if pattern is not None and not pattern.fullmatch(v):
            self.fail(path, f"{v!r} is not a valid {what}: expected {pattern.pattern}{hint}")
        return v

    def text(self, v: Any, path: str) -> str:
        """Free text (a name, a version): a string, or a number taken as written."""
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            self.fail(path, f"expected a string, got {_kind(v)} {v!r}")
        return str(v)

    def boolean(self, v: Any, path: str) -> bool:
        if not isinstance(v, bool):
            self.fail(path, f"expected true or false, got {v!r}")
        return v

    def choice(self, v: Any, path: str, options) -> Any:
        if isinstance(v, bool) or v not in options:
            self.fail(path, f"{v!r} is not one of {', '.join(map(str, options))}")
        return v

    def lst(self, v: Any, path: str, *, nonempty: bool = True) -> list:
        if not isinstance(v, list) or (nonempty and not v):
            self.fail(path, f"expected a {'non-empty ' if nonempty else ''}list, "
                            f"got {_kind(v)} {v!r}")
        return v

    def unique(self, v: Any, seen: list, path: str, what: str) -> Any:
        if v in seen:
            self.fail(path, f"{what} {v!r} appears twice (first at index {seen.index(v)})")
        seen.append(v)
        return v

    def ipv4(self, v: Any, path: str) -> str:
        """An IPv4 address, as a string."""
        try:
            if not isinstance(v, str):
                raise TypeError
            return str(ipaddress.IPv4Address(v))
        except (TypeError, ValueError):
            self.fail(path, f"{v!r} is not a valid IPv4 address (e.g. 10.0.0.1)")

    def ipv4_or_prefix(self, v: Any, path: str) -> str:
        """An IPv4 address or CIDR prefix without host bits (10.0.0.0/8, not 10.0.0.1/8)."""
        if isinstance(v, str) and "/" not in v:
            return self.ipv4(v, path)
        try:
            if not isinstance(v, str):
                raise TypeError
            return str(ipaddress.IPv4Network(v, strict=True))
        except (TypeError, ValueError):
            hint = ""
            try:
                if isinstance(v, str):
                    hint = f"; did you mean {ipaddress.IPv4Network(v, strict=False)}?"
            except ValueError:
                pass
            self.fail(path, f"{v!r} is not a valid IPv4 prefix or address "
                            f"(e.g. 10.0.0.1 or 10.0.0.0/24){hint}")

    def port(self, v: Any, path: str) -> int:
        if isinstance(v, int) and not isinstance(v, bool) and not 1 <= v <= 65535:
            self.fail(path, f"port {v} is outside 1..65535")
        return self.number(v, path, integer=True, ge=1, le=65535)


def _kind(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "nothing"}.get(type(v), "a value")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a descriptor must not."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:          # an unhashable key: PyYAML reports it below
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)


def read_yaml(path) -> tuple[Any, str]:
    """The document of one YAML file and the file's name (the prefix of its errors)."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DescriptorError(f"{p}: cannot read: {reason}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader), p.name
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise DescriptorError(f"{p.name}: {where}invalid YAML: {problem}"
                              + (f" ({context})" if context else "")) from None
