"""Loading topologies from files: YAML (ours) and Topology Zoo GraphML/GML.

:func:`load_topology` dispatches on the file suffix. Whatever goes wrong (missing file,
YAML/XML syntax, unknown keys, wrong types, zoo quirks that cannot be repaired) comes out as
a :class:`~testbed.errors.TopologyError` whose message starts with the file name and names
the field, node or edge; no parser exception escapes. The YAML schema and the handling of
each zoo quirk are documented in ``topologies/README.md``; repairs made to zoo data are
recorded in ``Topology.quirks``.
"""
from __future__ import annotations

import inspect
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from testbed.errors import TopologyError
from testbed.topology import schema
from testbed.topology.builders import BUILDERS, WAN_COMPUTE, compute_capacity
from testbed.topology.model import Topology
from testbed.topology.schema import LINK_KEYS

SUFFIXES = (".yaml", ".yml", ".graphml", ".gml")
FIBRE_KM_PER_MS = 200.0  # light in fibre: about 5 us per km
EARTH_RADIUS_KM = 6371.0


def load_topology(path: str | Path, *, largest_component: bool = False) -> Topology:
    """Load and validate the topology in ``path`` (.yaml/.yml, .graphml or .gml).

    ``largest_component`` only matters for zoo files: a disconnected graph is refused
    unless it is True, in which case the largest part is kept and the rest dropped.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise TopologyError(f"{path}: unsupported file type '{path.suffix}'; supported: "
                            f"{', '.join(SUFFIXES)}")
    if not path.is_file():
        raise TopologyError(f"{path}: no such file")
    if suffix in (".yaml", ".yml"):
        return _load_yaml(path)
    return _load_zoo(path, largest_component=largest_component)


# -- YAML ---------------------------------------------------------------------------------

def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise TopologyError(f"{path.name}: {where}invalid YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise TopologyError(f"{path.name}: cannot read YAML: {exc}") from None


def _load_yaml(path: Path) -> Topology:
    doc = schema.parse(_read_yaml(path), path)
    name = doc.name if doc.name is not None else path.stem
    if "builder" in doc.model_fields_set:
        extra = [k for k in ("defaults", "switches", "links", "endpoints", "computes")
                 if k in doc.model_fields_set]
        if extra:
            raise TopologyError(f"{path.name}: builder: 'builder' cannot be combined with "
                                f"{', '.join(extra)}; use either the builder form or the "
                                f"explicit form")
        return _from_builder(path, name, doc.builder)
    try:
        topo = _from_explicit(path, name, doc)
        topo.validate()
    except TopologyError as exc:
        msg = str(exc)
        raise TopologyError(msg if msg.startswith(path.name) else f"{path.name}: {msg}") from None
    return topo


def _from_builder(path: Path, name: str, spec: Any) -> Topology:
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise TopologyError(f"{path.name}: builder: expected a mapping with 'type' (one of "
                            f"{', '.join(BUILDERS)}) and its parameters, got {spec!r}")
    kind = spec["type"]
    builder = BUILDERS.get(kind)
    if builder is None:
        raise TopologyError(f"{path.name}: builder.type: unknown builder '{kind}'; known: "
                            f"{', '.join(BUILDERS)}")
    params = {k: v for k, v in spec.items() if k != "type"}
    signature = inspect.signature(builder).parameters
    known = [p for p in signature if p != "name"]
    for key in params:
        if key not in known:
            raise TopologyError(f"{path.name}: builder.{key}: unknown parameter for {kind}; "
                                f"known: {', '.join(known)}")
    missing = [p for p, s in signature.items()
               if s.default is inspect.Parameter.empty and p not in params]
    if missing:
        raise TopologyError(f"{path.name}: builder: {kind} needs {', '.join(missing)}")
    try:
        return builder(**params, name=name)
    except TopologyError as exc:
        raise TopologyError(f"{path.name}: builder ({kind}): {exc}") from None


def _from_explicit(path: Path, name: str, doc: schema.TopologyDocument) -> Topology:
    """The topology of a validated explicit-form file; errors of meaning (an unknown
    switch, a duplicate name) name the entry they come from."""
    topo = Topology(name)
    link_default = schema.given(doc.defaults.link, LINK_KEYS)
    access_default = schema.given(doc.defaults.access_link, LINK_KEYS)
    compute_default = schema.given(doc.defaults.compute, schema.COMPUTE_KEYS)

    for i, sw in enumerate(doc.switches):
        _call(path, f"switches[{i}]", topo.add_switch, sw.name,
              role=sw.role if sw.role is not None else "switch", site=sw.site, dpid=sw.dpid,
              lat=sw.lat, lon=sw.lon, label=sw.label)
    for i, ln in enumerate(doc.links):
        _call(path, f"links[{i}]", topo.add_link, ln.a, ln.b,
              **{**link_default, **schema.given(ln, LINK_KEYS)})
    for i, ep in enumerate(doc.endpoints):
        _call(path, f"endpoints[{i}]", topo.add_endpoint, ep.name, ep.switch, ip=ep.ip,
              mac=ep.mac, **{**access_default, **schema.given(ep, LINK_KEYS)})
    for i, cn in enumerate(doc.computes):
        capacity = {**compute_default, **schema.given(cn, schema.COMPUTE_KEYS)}
        for key in schema.COMPUTE_KEYS:
            if capacity.get(key) is None:
                raise TopologyError(f"{path.name}: computes[{i}]: missing '{key}' (give it "
                                    f"here or in defaults.compute; an integer)")
        _call(path, f"computes[{i}]", topo.add_compute, cn.name, cn.switch, **capacity)
    return topo


def _call(path: Path, where: str, method: Callable[..., Any], *args: Any,
          **kwargs: Any) -> None:
    try:
        method(*args, **kwargs)
    except TopologyError as exc:
        raise TopologyError(f"{path.name}: {where}: {exc}") from None


# -- Topology Zoo GraphML / GML ------------------------------------------------------------

def _read_graph(path: Path) -> tuple[nx.Graph, list[str]]:
    """The raw graph and quirks met while parsing; TopologyError on unreadable files."""
    quirks: list[str] = []
    try:
        if path.suffix.lower() == ".graphml":
            graph = nx.read_graphml(path)
        else:
            text = path.read_text(encoding="utf-8")
            try:
                graph = nx.parse_gml(text, label=None)
            except nx.NetworkXError as exc:
                if "duplicated" not in str(exc):
                    raise
                # Parallel edges in a file that does not declare "multigraph 1".
                text = re.sub(r"\bgraph\s*\[", "graph [\n  multigraph 1", text, count=1)
                graph = nx.parse_gml(text, label=None)
                quirks.append("parallel edges in a GML file without 'multigraph 1': "
                              "read as a multigraph")
    except ET.ParseError as exc:
        line, col = exc.position
        raise TopologyError(f"{path.name}: line {line}, column {col + 1}: malformed XML "
                            f"({exc}); is this a GraphML file?") from None
    except (ValueError, nx.NetworkXException) as exc:
        detail = _graphml_bad_value(path) if path.suffix.lower() == ".graphml" else None
        raise TopologyError(f"{path.name}: cannot parse: {detail or exc}") from None
    except (KeyError, TypeError, IndexError, UnicodeDecodeError, OSError) as exc:
        raise TopologyError(f"{path.name}: cannot parse: {type(exc).__name__}: {exc}") from None
    if graph.is_directed():
        quirks.append("directed graph: edges treated as undirected links")
        graph = nx.MultiGraph(graph.to_undirected())
    return graph, quirks


def _graphml_bad_value(path: Path) -> str | None:
    """Name the node/edge and attribute whose value does not match its declared type."""
    casts: dict[str, Callable[[str], Any]] = {"int": int, "long": int, "float": float,
                                              "double": float}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    ns = root.tag[:-len("graphml")] if root.tag.endswith("graphml") else ""
    keys = {k.get("id"): (k.get("attr.name"), k.get("attr.type"))
            for k in root.iter(f"{ns}key")}
    for tag in ("node", "edge"):
        for element in root.iter(f"{ns}{tag}"):
            for data in element.findall(f"{ns}data"):
                attr, kind = keys.get(data.get("key"), (None, None))
                try:
                    casts.get(kind or "", str)(data.text or "")
                except ValueError:
                    ident = element.get("id") or f"{element.get('source')}-{element.get('target')}"
                    return (f"{tag} '{ident}': attribute '{attr}' = {data.text!r} is not a "
                            f"valid {kind} (as declared by its <key>); fix the value")
    return None


def _coordinate(data: Mapping[str, Any], key: str, limit: float) -> float | None | str:
    """The coordinate as a float, None if absent, or a string saying why it is unusable."""
    raw = data.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return f"{key} {raw!r} is not a number"
    if not -limit <= value <= limit:
        return f"{key} {raw!r} is out of range"
    return value


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _speed_mbit(data: Mapping[str, Any]) -> float | None:
    raw = data.get("LinkSpeedRaw")
    try:
        value = float(raw) / 1e6 if raw is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _describe(ids: list[Any], label_of: Mapping[Any, str | None], limit: int = 6) -> str:
    def short(text: Any) -> str:
        text = str(text)
        return text if len(text) <= 40 else text[:37] + "..."

    shown = [f"{short(i)} ({short(label_of[i])!r})" if label_of[i] else short(i)
             for i in ids[:limit]]
    return "{" + ", ".join(shown) + (f", ... {len(ids) - limit} more" if len(ids) > limit
                                     else "") + "}"


def _load_zoo(path: Path, *, largest_component: bool,
              compute: Mapping[str, Any] | None = None) -> Topology:
    raw, quirks = _read_graph(path)
    graph = nx.MultiGraph(raw)
    label_of: dict[Any, str | None] = {
        n: (str(d["label"]) if d.get("label") not in (None, "") else None)
        for n, d in graph.nodes(data=True)}

    loops = list(nx.selfloop_edges(graph, keys=True))
    if loops:
        graph.remove_edges_from(loops)
        quirks.append(f"dropped {len(loops)} self-loop(s) at node(s) "
                      f"{_describe(list(dict.fromkeys(u for u, *_ in loops)), label_of)}")
    if graph.number_of_nodes() == 0:
        raise TopologyError(f"{path.name}: the graph has no nodes; nothing to emulate")
    parts = sorted(nx.connected_components(graph), key=len, reverse=True)
    if len(parts) > 1:
        ordered = [[n for n in graph if n in part] for part in parts]
        listing = " and ".join(f"{_describe(p, label_of)} ({len(p)} node(s))"
                               for p in ordered[:4])
        if not largest_component:
            raise TopologyError(
                f"{path.name}: disconnected graph: {len(parts)} disconnected parts: {listing}"
                f"{' ...' if len(parts) > 4 else ''}; keep only the largest with "
                f"largest_component=True (CLI: --largest-component) or fix the file")
        dropped = [n for p in ordered[1:] for n in p]
        graph.remove_nodes_from(dropped)
        quirks.append(f"disconnected graph ({len(parts)} parts): kept the largest "
                      f"({len(ordered[0])} nodes), dropped {_describe(dropped, label_of)}")

    names = {n: f"s{i + 1}" for i, n in enumerate(graph)}
    unlabeled = [n for n in graph if label_of[n] is None]
    if unlabeled:
        shown = {f"{names[n]} (id {n})": None for n in unlabeled}
        quirks.append(f"{len(unlabeled)} node(s) without a label, labelled by their id: "
                      f"{_describe(list(shown), shown)}")
    labels = {n: label_of[n] or str(n) for n in graph}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    duplicated = sorted(label for label, c in counts.items() if c > 1)
    if duplicated:
        quirks.append("duplicate label(s) " + ", ".join(
            f"{label!r} ({', '.join(names[n] for n in graph if labels[n] == label)})"
            for label in duplicated) + ": kept as labels; sites named 'label [switch]'")

    coords: dict[Any, tuple[float, float] | None] = {}
    bad_coords, missing = [], []
    for n, data in graph.nodes(data=True):
        lat, lon = _coordinate(data, "Latitude", 90.0), _coordinate(data, "Longitude", 180.0)
        problems = [c for c in (lat, lon) if isinstance(c, str)]
        if problems:
            bad_coords.append(f"{names[n]} ({labels[n]!r}): {'; '.join(problems)}")
        if isinstance(lat, float) and isinstance(lon, float):
            coords[n] = (lat, lon)
        else:
            coords[n] = None
            if not problems:
                missing.append(n)
    if bad_coords:
        quirks.append("unusable coordinates, treated as missing: " + ", ".join(bad_coords))
    if missing:
        shown = {names[n]: labels[n] for n in missing}
        quirks.append(f"{len(missing)} of {len(graph)} node(s) without coordinates "
                      f"{_describe(list(shown), shown)}: links touching them get delay 0")

    topo = Topology(path.stem)
    capacity = compute_capacity(compute, WAN_COMPUTE)
    for n in graph:
        lat_lon = coords[n] or (None, None)
        site = labels[n] if counts[labels[n]] == 1 else f"{labels[n]} [{names[n]}]"
        topo.add_switch(names[n], role="site", site=site, lat=lat_lon[0], lon=lat_lon[1],
                        label=labels[n])
    merged = 0
    order = {n: i for i, n in enumerate(graph)}
    for u, v in dict.fromkeys(tuple(sorted((a, b), key=order.__getitem__))
                              for a, b in graph.edges()):
        parallel = list(graph.get_edge_data(u, v).values())
        speeds = [s for s in map(_speed_mbit, parallel) if s is not None]
        merged += len(parallel) - 1
        cu, cv = coords[u], coords[v]
        delay = _haversine_km(*cu, *cv) / FIBRE_KM_PER_MS if cu and cv else 0.0
        topo.add_link(names[u], names[v], bw_mbit=sum(speeds) if speeds else None,
                      delay_ms=round(delay, 3))
    if merged:
        quirks.append(f"merged {merged} parallel edge(s) into single links (bandwidth = sum "
                      f"of the known LinkSpeedRaw values)")
    for i, n in enumerate(graph, start=1):
        topo.add_endpoint(f"h{i}", names[n])
        topo.add_compute(f"n{i}", names[n], **capacity)
    topo.quirks = quirks
    try:
        topo.validate()
    except TopologyError as exc:
        raise TopologyError(f"{path.name}: {exc}") from None
    return topo
