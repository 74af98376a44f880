"""The typed descriptor model's shared parts (pydantic v2): a strict base model, the value
types every descriptor uses, and the translation of pydantic's errors into
``DescriptorError`` messages ``<source>: <field path>: <what is wrong; what is valid>``.
The descriptors (``mano.descriptors``), the topology file and the controller's documents
use them; it is outside ``mano.descriptors`` so that the controller process does not
import the descriptor readers (0.12 s of its start-up).

Every check raises ``fail(msg, *sub)``: a pydantic error whose message is final and whose
``sub`` (loc parts) is appended to the location pydantic reports, so a model-level check
can point at one field (``nsd.vnffg[0].path[2]``). ``validate(cls, data, source)`` runs a
model and raises one ``DescriptorError`` listing every problem, the first one first.
"""
from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from mano.errors import DescriptorError

ERROR = "descriptor"            # the pydantic error type of every check here


def fail(msg: str, *sub) -> PydanticCustomError:
    """An error to raise from a validator: ``msg`` is final; ``sub`` are loc parts below the
    place pydantic reports (field names or list indexes)."""
    return PydanticCustomError(ERROR, "{msg}", {"msg": msg, "sub": tuple(sub)})


def kind(v: Any) -> str:
    """'a mapping', 'a list', ... for messages."""
    return {dict: "a mapping", list: "a list", tuple: "a list", str: "a string",
            bool: "a boolean", int: "a number", float: "a number",
            type(None): "nothing"}.get(type(v), "a value")


def loc_path(loc) -> str:
    """``("vnfd", "vdu", 0, "id")`` -> ``vnfd.vdu[0].id``; empty -> ``(top)``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def messages(exc: ValidationError, prefix=()) -> list[tuple[str, str]]:
    """Every error of ``exc`` as ``(field path, message)``, in pydantic's order."""
    out = []
    for e in exc.errors(include_url=False):
        loc = tuple(prefix) + tuple(p for p in e["loc"] if not _is_tag(p))
        ctx = e.get("ctx") or {}
        if e["type"] == ERROR:
            out.append((loc_path(loc + tuple(ctx.get("sub", ()))), ctx["msg"]))
        else:   # pydantic's own wording, with the value
            out.append((loc_path(loc), (f"{e['msg'][0].lower()}{e['msg'][1:]}, "
                                       f"got {e.get('input')!r}")))
    return out


def _is_tag(part) -> bool:
    # pydantic adds validator names ("function-plain[...]") to some locations
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def validate(cls: type[BaseModel], data: Any, source: str, context: dict | None = None,
             error: type[Exception] = DescriptorError):
    """``cls`` validated from ``data``; raises one ``error`` (a ``DescriptorError`` unless
    told; ``<source>: <path>: <message>``, one line per problem, the first one first)."""
    try:
        return cls.model_validate(data, context=context)
    except ValidationError as exc:
        lines = [f"{source}: {p}: {m}" for p, m in messages(exc)]
        raise error("\n".join(lines)) from None


def nested(cls: type[BaseModel], data: Any, *sub):
    """Validate a sub-document whose model depends on a sibling field (a program's
    params); its first error is raised at ``sub`` + the error's own path."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        loc = tuple(p for p in e["loc"] if not _is_tag(p))
        if e["type"] == ERROR:
            raise fail(e["ctx"]["msg"], *sub, *loc, *e["ctx"].get("sub", ())) from None
        raise fail(f"{e['msg']}, got {e.get('input')!r}", *sub, *loc) from None


class Strict(BaseModel):
    """A descriptor mapping: known keys only, required keys present, frozen.

    Fields named in ``INTERNAL`` (the source file, warnings) are not read from documents
    and take no part in equality. Errors list the keys in definition order, required first.
    """
    model_config = ConfigDict(frozen=True, populate_by_name=False, extra="forbid",
                              arbitrary_types_allowed=True)
    INTERNAL: ClassVar[tuple[str, ...]] = ("source", "warnings", "origin")

    @classmethod
    def keys(cls) -> tuple[list[str], list[str]]:
        """(required, optional) document keys."""
        req, opt = [], []
        for name, f in cls.model_fields.items():
            if name in cls.INTERNAL:
                continue
            (req if f.is_required() else opt).append(f.alias or name)
        return req, opt

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, v: Any) -> Any:
        req, opt = cls.keys()
        known = req + opt
        if v is None and cls.__name__.endswith("Document"):
            raise fail(f"the document is empty; expected a mapping with key "
                       f"{', '.join(map(repr, known))}")
        if not isinstance(v, dict):
            raise fail(f"expected a mapping with keys {', '.join(known)}, got {kind(v)} {v!r}")
        for k in v:
            if k not in known:
                raise fail(f"unknown key {k!r}; known: {', '.join(known)}", k)
        for k in req:
            if k not in v:
                raise fail(f"missing required key {k!r}; required: {', '.join(req)}")
        return v

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in type(self).model_fields
                   if n not in self.INTERNAL)

    def __hash__(self) -> int:
        return hash((type(self).__name__, getattr(self, "id", None)))


# ----------------------------------------------------------------------- value checks
def number(*, integer: bool = False, gt: float | None = None, ge: float | None = None,
           le: float | None = None):
    """A finite number (an integer, written without a decimal point, when ``integer``;
    never a boolean) within the bounds."""
    what = "an integer" if integer else "a number"
    if gt == 0 and ge is None and le is None:
        what = "a positive integer" if integer else "a positive number"
    elif ge is not None and le is not None:
        what += f" {ge}..{le}"
    else:
        bounds = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
                  f"<= {le}" if le is not None else ""]
        what = " ".join([what, " and ".join(b for b in bounds if b)]).rstrip()

    def check(v: Any):
        ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
              and (isinstance(v, int) or not integer))
        if not ok or (gt is not None and not v > gt) or (ge is not None and v < ge) or (
                le is not None and v > le):
            raise fail(f"expected {what}, got {v!r}")
        return v
    return PlainValidator(check)


def string(pattern: re.Pattern | None = None, what: str = "", hint: str = ""):
    """A non-empty string, matching ``pattern`` when given."""
    def check(v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise fail(f"expected a non-empty string, got {v!r}")
        if pattern is not None and not pattern.fullmatch(v):
            raise fail(f"{v!r} is not a valid {what}: expected {pattern.pattern}{hint}")
        return v
    return PlainValidator(check)


def _text(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise fail(f"expected a string, got {kind(v)} {v!r}")
    return str(v)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise fail(f"expected true or false, got {v!r}")
    return v


def choice(*options):
    """One of ``options`` (never a boolean)."""
    def check(v: Any):
        if isinstance(v, bool) or not isinstance(v, (str, int)) or v not in options:
            raise fail(f"{v!r} is not one of {', '.join(map(str, options))}")
        return v
    return PlainValidator(check)


def _ipv4(v: Any) -> str:
    try:
        if not isinstance(v, str):
            raise TypeError
        return str(ipaddress.IPv4Address(v))
    except (TypeError, ValueError):
        raise fail(f"{v!r} is not a valid IPv4 address (e.g. 10.0.0.1)") from None


def _ipv4_or_prefix(v: Any) -> str:
    if isinstance(v, str) and "/" not in v:
        return _ipv4(v)
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
        raise fail(f"{v!r} is not a valid IPv4 prefix or address "
                   f"(e.g. 10.0.0.1 or 10.0.0.0/24){hint}") from None


def _port(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and not 1 <= v <= 65535:
        raise fail(f"port {v} is outside 1..65535")
    if isinstance(v, bool) or not isinstance(v, int):
        raise fail(f"expected an integer 1..65535, got {v!r}")
    return v


def listing(*, nonempty: bool = True):
    """A list (the field's type checks the items)."""
    def check(v: Any):
        if not isinstance(v, (list, tuple)) or (nonempty and not v):
            raise fail(f"expected a {'non-empty ' if nonempty else ''}list, "
                       f"got {kind(v)} {v!r}")
        return v
    return check


def unique(values, what: str, key=lambda x: x, field: str | None = None) -> None:
    """Raise at the second occurrence: ``<what> 'x' appears twice (first at index i)``."""
    seen: list = []
    for i, item in enumerate(values):
        k = key(item)
        if k in seen:
            sub = (i, field) if field else (i,)
            raise fail(f"{what} {k!r} appears twice (first at index {seen.index(k)})", *sub)
        seen.append(k)


Text = Annotated[str, PlainValidator(_text)]
Boolean = Annotated[bool, PlainValidator(_boolean)]
NonEmpty = Annotated[str, string()]
IPv4 = Annotated[str, PlainValidator(_ipv4)]
PositiveNumber = Annotated[float, number(gt=0)]
PositiveInt = Annotated[int, number(integer=True, gt=0)]
OptIPv4 = Annotated[str | None, PlainValidator(_ipv4)]
OptIPv4OrPrefix = Annotated[str | None, PlainValidator(_ipv4_or_prefix)]
OptPort = Annotated[int | None, PlainValidator(_port)]
