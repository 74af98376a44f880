"""The topology YAML file as a typed model (pydantic v2), on the descriptor model's base.

The same strict base (known keys only, required keys present) and the same error
formatting as the descriptors (:mod:`mano.fields`): every problem is reported
as ``<file>: <field path>: <what is wrong, the value, what is valid>``, e.g.
``topo.yaml: links[1].bw: unknown key 'bw'; known: a, b, bw_mbit, delay_ms, loss_pct``.
This module checks the shape and types of the file; the meaning (switches that exist,
addresses, a connected graph) is checked by :class:`~testbed.topology.model.Topology`.
The format is documented in ``topologies/README.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator

from mano.fields import Strict, fail, kind, listing, number, validate
from testbed.errors import TopologyError

LINK_KEYS = ("bw_mbit", "delay_ms", "loss_pct")
COMPUTE_KEYS = ("vcpu", "memory_mb", "disk_gb")


def _optional(check):
    """``check`` for a value that may be null (absent and null read alike)."""
    def run(v: Any):
        return None if v is None else check.func(v)
    return PlainValidator(run)


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise fail(f"expected a string, got {kind(v)} {v!r}")
    return v


def _mac(v: Any) -> str:
    if not isinstance(v, str):
        raise fail(f"expected a string like '02:00:00:00:00:01', got {kind(v)} {v!r}; quote "
                   f"it (YAML reads unquoted 00:00:... as a number)")
    return v


def _as_switch(v: Any) -> Any:
    return {"name": v} if isinstance(v, str) else v


Str = Annotated[str | None, _optional(PlainValidator(_string))]
Mac = Annotated[str | None, _optional(PlainValidator(_mac))]
Number = Annotated[float | None, _optional(number())]
Integer = Annotated[int | None, _optional(number(integer=True))]


def _items(model):
    """A list (maybe empty) of ``model`` mappings."""
    return Annotated[tuple[model, ...], BeforeValidator(listing(nonempty=False))]


class LinkParams(Strict):
    """``defaults.link`` / ``defaults.access_link``: link shaping (Mbit/s, ms, %)."""
    bw_mbit: Number = None
    delay_ms: Number = None
    loss_pct: Number = None


class ComputeDefaults(Strict):
    """``defaults.compute``: capacity of compute nodes that do not give their own."""
    vcpu: Integer = None
    memory_mb: Integer = None
    disk_gb: Integer = None


class Defaults(Strict):
    """``defaults``: values every link, access link and compute node starts from."""
    link: LinkParams = LinkParams()
    access_link: LinkParams = LinkParams()
    compute: ComputeDefaults = ComputeDefaults()


class SwitchEntry(Strict):
    """``switches[i]``: a name, or a mapping with the name and optional attributes."""
    name: Annotated[str, PlainValidator(_string)]
    role: Str = None
    site: Str = None
    dpid: Integer = None
    lat: Number = None
    lon: Number = None
    label: Str = None


class LinkEntry(Strict):
    """``links[i]``: a link between switches ``a`` and ``b``."""
    a: Annotated[str, PlainValidator(_string)]
    b: Annotated[str, PlainValidator(_string)]
    bw_mbit: Number = None
    delay_ms: Number = None
    loss_pct: Number = None


class EndpointEntry(Strict):
    """``endpoints[i]``: a traffic host on ``switch`` (address and MAC optional)."""
    name: Annotated[str, PlainValidator(_string)]
    switch: Annotated[str, PlainValidator(_string)]
    ip: Str = None
    mac: Mac = None
    bw_mbit: Number = None
    delay_ms: Number = None
    loss_pct: Number = None


class ComputeEntry(Strict):
    """``computes[i]``: a compute node (resource pool) on ``switch``."""
    name: Annotated[str, PlainValidator(_string)]
    switch: Annotated[str, PlainValidator(_string)]
    vcpu: Integer = None
    memory_mb: Integer = None
    disk_gb: Integer = None


class TopologyDocument(Strict):
    """A topology file: the builder form (``builder``) or the explicit form (the rest)."""
    name: Str = None
    description: Str = None
    builder: Any = None
    defaults: Defaults = Defaults()
    switches: Annotated[tuple[SwitchEntry, ...],
                        BeforeValidator(lambda v: [_as_switch(x) for x in v]
                                        if isinstance(v, list) else v),
                        BeforeValidator(listing(nonempty=False))] = ()
    links: _items(LinkEntry) = ()
    endpoints: _items(EndpointEntry) = ()
    computes: _items(ComputeEntry) = ()


def parse(data: Any, path: Path) -> TopologyDocument:
    """``data`` (a YAML document) as a :class:`TopologyDocument`; ``TopologyError`` listing
    every problem as ``<file name>: <field path>: <message>``."""
    return validate(TopologyDocument, data, path.name, error=TopologyError)


def given(entry: Strict, keys: tuple[str, ...]) -> dict[str, Any]:
    """The keys of ``keys`` the file gives in ``entry`` (null included), with values."""
    return {k: getattr(entry, k) for k in keys if k in entry.model_fields_set}
