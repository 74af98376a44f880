"""SOL013 conventions for lists, as pure functions on JSON-like dicts.

- Attribute-based filtering (ETSI GS NFV-SOL 013, clause 5.2): ``filter=(op,attr,v1[,v2...])``
  terms joined by ``;`` (all must hold). ``attr`` is a path whose parts are separated by
  ``/``; where a part names an array, the term holds when it holds for any element. Values
  may be quoted with single quotes (then ``,`` ``;`` ``(`` ``)`` are literal and ``''`` is a
  quote). Operators: ``eq`` ``neq`` ``in`` ``nin`` ``gt`` ``gte`` ``lt`` ``lte`` ``cont``
  ``ncont``; ``eq``/``cont`` with several values hold for any of them, ``neq``/``ncont`` for
  none. Numbers compare as numbers, booleans match ``true``/``false``, the rest as strings.
- Attribute selectors (clause 5.3): ``all_fields``, ``fields``, ``exclude_fields``,
  ``exclude_default``; with none of them, ``exclude_default`` applies.
- Paging (clause 5.4.2): a page of at most ``size`` items; the next page's opaque marker
  goes in a ``Link: <...>; rel="next"`` header.

Malformed input raises ``BadQuery`` (turned into 400 ProblemDetails by the NBI).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OPERATORS = ("eq", "neq", "in", "nin", "gt", "gte", "lt", "lte", "cont", "ncont")
_ATTR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")


class BadQuery(ValueError):
    """A query parameter breaks SOL013's syntax; the message names the parameter and why."""


@dataclass(frozen=True)
class Term:
    op: str
    path: tuple[str, ...]
    values: tuple[str, ...]


def parse_filter(expr: str) -> list[Term]:
    """Parse a SOL013 filter expression into terms; ``BadQuery`` says what is wrong where."""
    terms: list[Term] = []
    i, n = 0, len(expr)
    while i < n:
        if expr[i] != "(":
            raise BadQuery(f"filter: expected '(' at position {i} of {expr!r}")
        parts, cur, i = [], [], i + 1
        quoted = False
        while True:
            if i >= n:
                raise BadQuery(f"filter: unclosed term in {expr!r}")
            ch = expr[i]
            if quoted:
                if ch == "'" and i + 1 < n and expr[i + 1] == "'":
                    cur.append("'")
                    i += 2
                    continue
                if ch == "'":
                    quoted = False
                else:
                    cur.append(ch)
            elif ch == "'" and not cur:
                quoted = True
            elif ch == ",":
                parts.append("".join(cur))
                cur = []
            elif ch == ")":
                parts.append("".join(cur))
                i += 1
                break
            elif ch in "(;":
                raise BadQuery(f"filter: {ch!r} at position {i} of {expr!r} must be quoted")
            else:
                cur.append(ch)
            i += 1
        if len(parts) < 3:
            raise BadQuery(f"filter: term ({','.join(parts)}) needs (op,attribute,value)")
        op, attr, values = parts[0], parts[1], tuple(parts[2:])
        if op not in OPERATORS:
            raise BadQuery(f"filter: unknown operator {op!r}; valid: {', '.join(OPERATORS)}")
        if not _ATTR.fullmatch(attr):
            raise BadQuery(f"filter: {attr!r} is not an attribute name (parts separated by /)")
        if op in ("gt", "gte", "lt", "lte") and len(values) != 1:
            raise BadQuery(f"filter: {op} takes one value, got {len(values)}")
        terms.append(Term(op, tuple(attr.split("/")), values))
        if i < n:
            if expr[i] != ";":
                raise BadQuery(f"filter: expected ';' between terms at position {i} of {expr!r}")
            i += 1
            if i == n:
                raise BadQuery(f"filter: {expr!r} ends with ';'")
    if not terms:
        raise BadQuery("filter: empty expression")
    return terms


def _values_at(obj: Any, path: tuple[str, ...]) -> list[Any]:
    if not path:
        return obj if isinstance(obj, list) else [obj]
    if isinstance(obj, list):
        return [v for item in obj for v in _values_at(item, path)]
    if isinstance(obj, dict) and path[0] in obj:
        return _values_at(obj[path[0]], path[1:])
    return []


def _equal(actual: Any, text: str) -> bool:
    if isinstance(actual, bool):
        return text == ("true" if actual else "false")
    if isinstance(actual, (int, float)):
        try:
            return float(text) == actual
        except ValueError:
            return False
    return isinstance(actual, str) and actual == text


def _compare(actual: Any, text: str) -> int | None:
    if isinstance(actual, bool):
        return None
    if isinstance(actual, (int, float)):
        try:
            v = float(text)
        except ValueError:
            return None
        return (actual > v) - (actual < v)
    if isinstance(actual, str):
        return (actual > text) - (actual < text)
    return None


def _holds(term: Term, actual: Any) -> bool:
    op, vals = term.op, term.values
    if op in ("eq", "in"):
        return any(_equal(actual, v) for v in vals)
    if op in ("neq", "nin"):
        return not any(_equal(actual, v) for v in vals)
    if op in ("cont", "ncont"):
        found = isinstance(actual, str) and any(v in actual for v in vals)
        return found if op == "cont" else not found
    c = _compare(actual, vals[0])
    if c is None:
        return False
    return {"gt": c > 0, "gte": c >= 0, "lt": c < 0, "lte": c <= 0}[op]


def matches(obj: dict, terms: Iterable[Term]) -> bool:
    """Whether ``obj`` satisfies every term. A negative term (``neq``, ``nin``, ``ncont``)
    holds when no value at the path violates it (so also when the attribute is absent)."""
    for t in terms:
        actual = _values_at(obj, t.path)
        if t.op in ("neq", "nin", "ncont"):
            if not all(_holds(t, a) for a in actual):
                return False
        elif not any(_holds(t, a) for a in actual):
            return False
    return True


@dataclass(frozen=True)
class Selector:
    """Which attributes of each listed object to return (SOL013 clause 5.3)."""

    all_fields: bool = False
    fields: tuple[str, ...] = ()
    exclude_fields: tuple[str, ...] = ()
    exclude_default: bool = False

    @classmethod
    def parse(cls, all_fields: str | None, fields: str | None, exclude_fields: str | None,
              exclude_default: str | None) -> Selector:
        """From the query parameters (``None`` when absent); ``BadQuery`` for the
        combinations SOL013 forbids."""
        given = [k for k, v in (("all_fields", all_fields), ("fields", fields),
                                ("exclude_fields", exclude_fields),
                                ("exclude_default", exclude_default)) if v is not None]
        if "all_fields" in given and len(given) > 1:
            raise BadQuery(f"all_fields cannot be combined with {', '.join(given[1:])}")
        if "exclude_fields" in given and ("fields" in given or "exclude_default" in given):
            raise BadQuery("exclude_fields cannot be combined with fields or exclude_default")

        def names(v: str | None, what: str) -> tuple[str, ...]:
            if v is None:
                return ()
            out = tuple(p for p in v.split(","))
            bad = [p for p in out if not _ATTR.fullmatch(p)]
            if bad:
                raise BadQuery(f"{what}: {bad[0]!r} is not an attribute name")
            return out
        return cls(all_fields is not None, names(fields, "fields"),
                   names(exclude_fields, "exclude_fields"), exclude_default is not None)

    def apply(self, obj: dict, default_excluded: Iterable[str]) -> dict:
        """A copy of ``obj`` with the attributes this selector leaves out removed."""
        if self.all_fields:
            return obj
        if self.exclude_fields:
            drop = list(self.exclude_fields)
        else:
            keep = set(self.fields)
            drop = [p for p in default_excluded if p not in keep]
        out = _copy(obj)
        for p in drop:
            _remove(out, p.split("/"))
        return out


def _copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


def _remove(obj: Any, path: list[str]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _remove(item, path)
    elif isinstance(obj, dict) and path[0] in obj:
        if len(path) == 1:
            del obj[path[0]]
        else:
            _remove(obj[path[0]], path[1:])


def page(items: list, marker: str | None, size: int) -> tuple[list, str | None]:
    """The page starting at ``marker`` (``None``: the first) and the next page's marker, or
    ``None`` on the last page. Markers are opaque to clients; a bad one is ``BadQuery``."""
    start = 0
    if marker is not None:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode() + b"==").decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadQuery(f"nextpage_opaque_marker {marker!r} is not one this server "
                           "issued") from None
        if start < 0 or start > len(items):
            raise BadQuery(f"nextpage_opaque_marker {marker!r} is past the end of the list")
    end = start + size
    nxt = base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=") \
        if end < len(items) else None
    return items[start:end], nxt
