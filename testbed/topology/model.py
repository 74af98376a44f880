"""The topology model: typed specs on a networkx graph, pure data.

A :class:`Topology` is what every builder and loader produces and what the emulator (or a
simulated NFVI) turns into live things. It never touches the system.

- ``graph`` holds switches and endpoints as nodes, with node attributes
  ``kind`` ("switch" or "endpoint") and ``spec`` (a :class:`SwitchSpec` or
  :class:`EndpointSpec`); every edge has ``spec`` (a :class:`LinkSpec`).
- ``computes`` holds compute nodes: resource pools (vCPU, memory, disk) hanging off a
  switch. They are *not* graph nodes; VNF instances placed on one become hosts on its switch.
- ``quirks`` lists human-readable notes of what a loader did to odd input data.

Names of switches, endpoints and computes match ``[A-Za-z][A-Za-z0-9_]{0,9}`` because the
emulator derives interface names from them (``s12-eth3``; Linux allows 15 characters).
All hosts share the network 10.0.0.0/8 (:data:`HOST_NETWORK`).
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any

import networkx as nx

from testbed.errors import TopologyError

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,9}")
MAC_RE = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
HOST_NETWORK = ipaddress.IPv4Network("10.0.0.0/8")
ROLES = ("core", "agg", "edge", "spine", "leaf", "site", "switch")
MAX_DPID = 2**64 - 1


@dataclass(frozen=True)
class SwitchSpec:
    """A switch; ``label`` keeps an original name (e.g. a Topology Zoo city) when renamed."""

    name: str
    dpid: int
    role: str = "switch"
    site: str | None = None
    lat: float | None = None
    lon: float | None = None
    label: str | None = None


@dataclass(frozen=True)
class EndpointSpec:
    """A traffic endpoint host on ``switch``; ``ip`` is in 10.0.0.0/8, ``mac`` lower-case."""

    name: str
    switch: str
    ip: str
    mac: str


@dataclass(frozen=True)
class ComputeSpec:
    """A compute node: a resource pool attached to ``switch`` (not a graph node)."""

    name: str
    switch: str
    vcpu: int
    memory_mb: int
    disk_gb: int


@dataclass(frozen=True)
class LinkSpec:
    """A link; ``bw_mbit`` None means unshaped. Access links have the endpoint as ``a``."""

    a: str
    b: str
    bw_mbit: float | None = None
    delay_ms: float = 0.0
    loss_pct: float = 0.0


def _host_ip(index: int) -> str:
    return str(HOST_NETWORK.network_address + index)


def _host_mac(index: int) -> str:
    return ":".join(f"{(index >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


class Topology:
    """A network topology as pure data; see the module docstring for the layout."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.graph: nx.Graph = nx.Graph(name=name)
        self.computes: dict[str, ComputeSpec] = {}
        self.quirks: list[str] = []
        self._links: list[tuple[str, str]] = []  # insertion order, as (a, b) of each spec
        self._host_counter = 0

    # -- building ------------------------------------------------------------------------

    def _require_new_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TopologyError(f"name must be a non-empty string, got {name!r}")
        if name in self.graph or name in self.computes:
            raise TopologyError(f"duplicate name '{name}': every switch, endpoint and "
                                f"compute needs its own name")

    def _require_switch(self, name: str, what: str) -> None:
        if name not in self.graph:
            raise TopologyError(f"{what} refers to unknown switch '{name}'")
        if self.graph.nodes[name].get("kind") != "switch":
            raise TopologyError(f"{what} refers to '{name}', which is not a switch")

    def add_switch(self, name: str, *, role: str = "switch", site: str | None = None,
                   dpid: int | None = None, lat: float | None = None,
                   lon: float | None = None, label: str | None = None) -> SwitchSpec:
        """Add a switch; ``dpid`` defaults to the lowest unused integer from 1."""
        self._require_new_name(name)
        if dpid is None:
            used = {s.dpid for s in self.switches()}
            dpid = 1
            while dpid in used:
                dpid += 1
        spec = SwitchSpec(name, dpid, role, site, lat, lon, label)
        self.graph.add_node(name, kind="switch", spec=spec)
        return spec

    def add_endpoint(self, name: str, switch: str, *, ip: str | None = None,
                     mac: str | None = None, bw_mbit: float | None = None,
                     delay_ms: float = 0.0, loss_pct: float = 0.0) -> EndpointSpec:
        """Add an endpoint host and its access link to ``switch``; ip/mac auto-assigned."""
        self._require_new_name(name)
        self._require_switch(switch, f"endpoint '{name}'")
        used_ips = {e.ip for e in self.endpoints()}
        used_macs = {e.mac for e in self.endpoints()}
        if ip is None or mac is None:
            # One counter drives both, skipping values taken by explicit assignments.
            self._host_counter += 1
            while (_host_ip(self._host_counter) in used_ips
                   or _host_mac(self._host_counter) in used_macs):
                self._host_counter += 1
        ip = ip if ip is not None else _host_ip(self._host_counter)
        mac = (mac if mac is not None else _host_mac(self._host_counter))
        spec = EndpointSpec(name, switch, ip, mac.lower() if isinstance(mac, str) else mac)
        self.graph.add_node(name, kind="endpoint", spec=spec)
        self._add_edge(LinkSpec(name, switch, bw_mbit, delay_ms, loss_pct))
        return spec

    def add_compute(self, name: str, switch: str, *, vcpu: int, memory_mb: int,
                    disk_gb: int) -> ComputeSpec:
        """Add a compute node (resource pool) attached to ``switch``."""
        self._require_new_name(name)
        self._require_switch(switch, f"compute '{name}'")
        spec = ComputeSpec(name, switch, vcpu, memory_mb, disk_gb)
        self.computes[name] = spec
        return spec

    def add_link(self, a: str, b: str, *, bw_mbit: float | None = None,
                 delay_ms: float = 0.0, loss_pct: float = 0.0) -> LinkSpec:
        """Add a switch-to-switch link (endpoint access links come from add_endpoint)."""
        if a == b:
            raise TopologyError(f"link {a}-{b} connects '{a}' to itself; drop it")
        self._require_switch(a, f"link {a}-{b}")
        self._require_switch(b, f"link {a}-{b}")
        if self.graph.has_edge(a, b):
            raise TopologyError(f"duplicate link {a}-{b}: merge parallel links into one "
                                f"(sum their bw_mbit)")
        spec = LinkSpec(a, b, bw_mbit, delay_ms, loss_pct)
        self._add_edge(spec)
        return spec

    def _add_edge(self, spec: LinkSpec) -> None:
        self.graph.add_edge(spec.a, spec.b, spec=spec)
        self._links.append((spec.a, spec.b))

    # -- reading -------------------------------------------------------------------------

    def _specs(self, kind: str) -> list[Any]:
        return [d["spec"] for _, d in self.graph.nodes(data=True) if d.get("kind") == kind]

    def switches(self) -> list[SwitchSpec]:
        """All switches, in insertion order."""
        return self._specs("switch")

    def endpoints(self) -> list[EndpointSpec]:
        """All endpoints, in insertion order."""
        return self._specs("endpoint")

    def links(self) -> list[LinkSpec]:
        """All links (switch-switch and access), in insertion order."""
        return [self.graph.edges[a, b]["spec"] for a, b in self._links
                if self.graph.has_edge(a, b)]

    def switch(self, name: str) -> SwitchSpec:
        """The switch called ``name``; TopologyError if there is none."""
        self._require_switch(name, "lookup")
        spec: SwitchSpec = self.graph.nodes[name]["spec"]
        return spec

    def endpoint(self, name: str) -> EndpointSpec:
        """The endpoint called ``name``; TopologyError if there is none."""
        if self.graph.nodes.get(name, {}).get("kind") != "endpoint":
            raise TopologyError(f"no endpoint '{name}' in topology '{self.name}'")
        spec: EndpointSpec = self.graph.nodes[name]["spec"]
        return spec

    def sites(self) -> list[str]:
        """Distinct sites of the switches, in order of first appearance."""
        return list(dict.fromkeys(s.site for s in self.switches() if s.site is not None))

    def switch_graph(self) -> nx.Graph:
        """A read-only view of the graph restricted to switches and their links."""
        return self.graph.subgraph(s.name for s in self.switches())

    def needs_netem(self) -> bool:
        """True if any link asks for delay or loss (which needs the sch_netem qdisc)."""
        return any(link.delay_ms > 0 or link.loss_pct > 0 for link in self.links())

    # -- checking ------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise TopologyError listing every problem found; return None if there is none."""
        problems = _problems(self)
        if problems:
            shown = "\n  - ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise TopologyError(f"topology '{self.name}' is invalid "
                                f"({len(problems)} problem(s)):\n  - {shown}{more}")

    def summary(self) -> dict[str, Any]:
        """Counts, capacities, diameter (switch hops) and link delay as a plain dict."""
        sg = self.switch_graph()
        diameter = nx.diameter(sg) if len(sg) and nx.is_connected(sg) else None
        links = self.links()
        return {
            "name": self.name,
            "switches": len(self.switches()),
            "endpoints": len(self.endpoints()),
            "computes": len(self.computes),
            "links": len(links),
            "switch_links": sg.number_of_edges(),
            "sites": self.sites(),
            "vcpu": sum(c.vcpu for c in self.computes.values()),
            "memory_mb": sum(c.memory_mb for c in self.computes.values()),
            "disk_gb": sum(c.disk_gb for c in self.computes.values()),
            "diameter": diameter,
            "max_link_delay_ms": max((link.delay_ms for link in links), default=0.0),
            "needs_netem": self.needs_netem(),
            "quirks": list(self.quirks),
        }

    def __repr__(self) -> str:
        return (f"Topology({self.name!r}, switches={len(self.switches())}, "
                f"endpoints={len(self.endpoints())}, computes={len(self.computes)})")


def _bad_number(value: Any, *, low: float, high: float = math.inf,
                low_inclusive: bool = True) -> str | None:
    """Why ``value`` is not a finite number in range, or None if it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number ({value!r})"
    if math.isnan(value) or math.isinf(value):
        return f"is {value}"
    if value < low or (value == low and not low_inclusive):
        return f"is {value}, must be {'>=' if low_inclusive else '>'} {low:g}"
    if value > high:
        return f"is {value}, must be <= {high:g}"
    return None


def _problems(topo: Topology) -> list[str]:
    """Everything wrong with ``topo``, each as one human-readable line."""
    out: list[str] = []
    g = topo.graph
    for name, data in g.nodes(data=True):
        kind, spec = data.get("kind"), data.get("spec")
        expected = {"switch": SwitchSpec, "endpoint": EndpointSpec}.get(kind)  # type: ignore
        if expected is None or not isinstance(spec, expected) or spec.name != name:
            out.append(f"graph node '{name}' has no valid kind/spec (use add_switch or "
                       f"add_endpoint)")
    if out:
        return out
    switches, endpoints = topo.switches(), topo.endpoints()
    if not switches:
        out.append("has no switches")
    for n in [*switches, *endpoints, *topo.computes.values()]:
        if not isinstance(n.name, str) or not NAME_RE.fullmatch(n.name):
            out.append(f"name '{n.name}' must match [A-Za-z][A-Za-z0-9_]{{0,9}} (it becomes "
                       f"part of 15-character interface names like 's12-eth3')")
    seen: dict[Any, str] = {}
    for s in switches:
        if s.role not in ROLES:
            out.append(f"switch '{s.name}': role '{s.role}' is not one of {', '.join(ROLES)}")
        if isinstance(s.dpid, bool) or not isinstance(s.dpid, int) or not 1 <= s.dpid <= MAX_DPID:
            out.append(f"switch '{s.name}': dpid {s.dpid!r} must be an integer in 1..2^64-1")
        elif ("dpid", s.dpid) in seen:
            out.append(f"switch '{s.name}': dpid {s.dpid} already used by "
                       f"'{seen['dpid', s.dpid]}'")
        else:
            seen["dpid", s.dpid] = s.name
        for attr, limit in (("lat", 90.0), ("lon", 180.0)):
            value = getattr(s, attr)
            why = value is not None and _bad_number(value, low=-limit, high=limit)
            if why:
                out.append(f"switch '{s.name}': {attr} {why}")
    for e in endpoints:
        try:
            ip = ipaddress.IPv4Address(e.ip)
            if ip not in HOST_NETWORK or ip in (HOST_NETWORK.network_address,
                                                HOST_NETWORK.broadcast_address):
                out.append(f"endpoint '{e.name}': ip {e.ip} is not a host address in "
                           f"{HOST_NETWORK}")
        except (ipaddress.AddressValueError, ValueError):
            out.append(f"endpoint '{e.name}': ip {e.ip!r} is not an IPv4 address "
                       f"like 10.0.0.1")
        if not isinstance(e.mac, str) or not MAC_RE.fullmatch(e.mac):
            out.append(f"endpoint '{e.name}': mac {e.mac!r} is not like 00:00:00:00:00:01")
        elif int(e.mac[:2], 16) & 1:
            out.append(f"endpoint '{e.name}': mac {e.mac} is multicast; use a unicast one")
        for attr in ("ip", "mac"):
            key = (attr, getattr(e, attr))
            if key in seen:
                out.append(f"endpoint '{e.name}': {attr} {key[1]} already used by "
                           f"'{seen[key]}'")
            seen[key] = e.name
        if g.nodes.get(e.switch, {}).get("kind") != "switch":
            out.append(f"endpoint '{e.name}' is attached to '{e.switch}', which is not a "
                       f"switch")
        elif set(g[e.name]) != {e.switch}:
            out.append(f"endpoint '{e.name}' must have exactly one link, to its switch "
                       f"'{e.switch}'; it has {sorted(g[e.name])}")
    for c in topo.computes.values():
        if c.name in g:
            out.append(f"compute '{c.name}': name also used by a switch or endpoint")
        if g.nodes.get(c.switch, {}).get("kind") != "switch":
            out.append(f"compute '{c.name}' is attached to '{c.switch}', which is not a "
                       f"switch")
        for attr in ("vcpu", "memory_mb", "disk_gb"):
            value = getattr(c, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                out.append(f"compute '{c.name}': {attr} {value!r} must be an integer > 0")
    for a, b, data in g.edges(data=True):
        link = data.get("spec")
        if not isinstance(link, LinkSpec) or {link.a, link.b} != {a, b}:
            out.append(f"link {a}-{b} has no valid spec (use add_link)")
            continue
        if a == b:
            out.append(f"link {a}-{b} connects '{a}' to itself")
        checks = (("bw_mbit", link.bw_mbit, {"low": 0.0, "low_inclusive": False}),
                  ("delay_ms", link.delay_ms, {"low": 0.0}),
                  ("loss_pct", link.loss_pct, {"low": 0.0, "high": 100.0}))
        for attr, value, limits in checks:
            why = None if (attr == "bw_mbit" and value is None) else _bad_number(value, **limits)
            if why:
                out.append(f"link {link.a}-{link.b}: {attr} {why}")
    sg = topo.switch_graph()
    if len(sg) > 1 and not nx.is_connected(sg):
        parts = sorted(nx.connected_components(sg), key=len, reverse=True)
        shown = ["{" + ", ".join([n for n in sg if n in part][:8])
                 + (", ..." if len(part) > 8 else "") + "}" for part in parts[:5]]
        out.append(f"switches form {len(parts)} disconnected parts: {'; '.join(shown)}; "
                   f"add links joining them")
    return out
