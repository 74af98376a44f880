"""Builders for the usual data-center and WAN shapes; each returns a validated Topology.

Naming is short on purpose (interface names are limited to 15 characters):

=============  =========================================  ==========================
builder        switches                                   hosts / compute nodes
=============  =========================================  ==========================
fat_tree       core ``c1..``, aggregation ``a1..``,       ``h1..`` on edge switches,
               edge ``e1..``                              one ``n<i>`` per edge switch
leaf_spine     spines ``sp1..``, leaves ``lf1..``         ``h1..`` on leaves, one
                                                          ``n<i>`` per leaf
linear         ``s1..sN`` in a chain                      ``h1..``, one ``n<i>`` per switch
wan            ``s1..sN``, one per site (role "site")     one ``h<i>`` and ``n<i>`` per site
=============  =========================================  ==========================

``bw_mbit``/``delay_ms``/``loss_pct`` apply to every link (for ``wan``: ``delay_ms`` is the
default inter-site delay, access links get none). ``compute`` overrides the capacities of the
compute nodes (keys ``vcpu``, ``memory_mb``, ``disk_gb``). Bad parameters raise TopologyError
naming the parameter and what would be valid.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from testbed.errors import TopologyError
from testbed.topology.model import Topology

DC_COMPUTE = {"vcpu": 8, "memory_mb": 16384, "disk_gb": 200}
WAN_COMPUTE = {"vcpu": 16, "memory_mb": 65536, "disk_gb": 1000}


def _int_param(name: str, value: Any, *, minimum: int, even: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TopologyError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise TopologyError(f"{name} must be >= {minimum}, got {value}")
    if even and value % 2:
        raise TopologyError(f"{name} must be even (2, 4, 6, 8, ...), got {value}")
    return value


def compute_capacity(compute: Mapping[str, Any] | None,
                     default: Mapping[str, int]) -> dict[str, int]:
    """``default`` overridden by ``compute``; unknown keys or bad values raise TopologyError."""
    merged = dict(default)
    for key, value in (compute or {}).items():
        if key not in default:
            raise TopologyError(f"compute: unknown key '{key}'; known: {', '.join(default)}")
        merged[key] = _int_param(f"compute.{key}", value, minimum=1)
    return merged


def _link(bw_mbit: float | None, delay_ms: float, loss_pct: float) -> dict[str, Any]:
    return {"bw_mbit": bw_mbit, "delay_ms": delay_ms, "loss_pct": loss_pct}


def _finish(topo: Topology) -> Topology:
    topo.validate()
    return topo


def fat_tree(k: int, *, bw_mbit: float | None = None, delay_ms: float = 0.0,
             loss_pct: float = 0.0, hosts_per_edge: int | None = None,
             compute: Mapping[str, Any] | None = None, name: str | None = None) -> Topology:
    """A k-ary fat-tree: (k/2)^2 cores, k pods of k/2 aggregation + k/2 edge switches."""
    k = _int_param("k", k, minimum=2, even=True)
    half = k // 2
    hosts = half if hosts_per_edge is None else _int_param("hosts_per_edge", hosts_per_edge,
                                                           minimum=1)
    capacity = compute_capacity(compute, DC_COMPUTE)
    link = _link(bw_mbit, delay_ms, loss_pct)
    topo = Topology(name or f"fat-tree-{k}")
    cores = [topo.add_switch(f"c{i + 1}", role="core").name for i in range(half * half)]
    aggs = [topo.add_switch(f"a{i + 1}", role="agg").name for i in range(k * half)]
    edges = [topo.add_switch(f"e{i + 1}", role="edge").name for i in range(k * half)]
    for pod in range(k):
        pod_aggs = aggs[pod * half:(pod + 1) * half]
        pod_edges = edges[pod * half:(pod + 1) * half]
        for j, agg in enumerate(pod_aggs):
            # Aggregation switch j of every pod reaches the j-th group of k/2 cores.
            for core in cores[j * half:(j + 1) * half]:
                topo.add_link(core, agg, **link)
            for edge in pod_edges:
                topo.add_link(agg, edge, **link)
    host = 0
    for i, edge in enumerate(edges):
        for _ in range(hosts):
            host += 1
            topo.add_endpoint(f"h{host}", edge, **link)
        topo.add_compute(f"n{i + 1}", edge, **capacity)
    return _finish(topo)


def leaf_spine(spines: int, leaves: int, servers_per_leaf: int, *,
               bw_mbit: float | None = None, delay_ms: float = 0.0, loss_pct: float = 0.0,
               compute: Mapping[str, Any] | None = None, name: str | None = None) -> Topology:
    """Every leaf linked to every spine; servers and one compute node on each leaf."""
    spines = _int_param("spines", spines, minimum=1)
    leaves = _int_param("leaves", leaves, minimum=1)
    servers = _int_param("servers_per_leaf", servers_per_leaf, minimum=1)
    capacity = compute_capacity(compute, DC_COMPUTE)
    link = _link(bw_mbit, delay_ms, loss_pct)
    topo = Topology(name or f"leaf-spine-{spines}x{leaves}")
    spine_names = [topo.add_switch(f"sp{i + 1}", role="spine").name for i in range(spines)]
    leaf_names = [topo.add_switch(f"lf{i + 1}", role="leaf").name for i in range(leaves)]
    for leaf in leaf_names:
        for spine in spine_names:
            topo.add_link(spine, leaf, **link)
    for i, leaf in enumerate(leaf_names):
        for j in range(servers):
            topo.add_endpoint(f"h{i * servers + j + 1}", leaf, **link)
        topo.add_compute(f"n{i + 1}", leaf, **capacity)
    return _finish(topo)


def linear(n: int, *, hosts_per_switch: int = 1, bw_mbit: float | None = None,
           delay_ms: float = 0.0, loss_pct: float = 0.0,
           compute: Mapping[str, Any] | None = None, name: str | None = None) -> Topology:
    """A chain s1-s2-...-sN with hosts and one compute node on every switch."""
    n = _int_param("n", n, minimum=1)
    hosts = _int_param("hosts_per_switch", hosts_per_switch, minimum=1)
    capacity = compute_capacity(compute, DC_COMPUTE)
    link = _link(bw_mbit, delay_ms, loss_pct)
    topo = Topology(name or f"linear-{n}")
    names = [topo.add_switch(f"s{i + 1}").name for i in range(n)]
    for a, b in itertools.pairwise(names):
        topo.add_link(a, b, **link)
    for i, sw in enumerate(names):
        for j in range(hosts):
            topo.add_endpoint(f"h{i * hosts + j + 1}", sw, **link)
        topo.add_compute(f"n{i + 1}", sw, **capacity)
    return _finish(topo)


def wan(sites: Sequence[str] | int, links: Sequence[Sequence[Any]], *,
        bw_mbit: float | None = None, delay_ms: float = 10.0, loss_pct: float = 0.0,
        compute: Mapping[str, Any] | None = None, name: str | None = None) -> Topology:
    """Multi-site WAN: a switch, endpoint and compute node per site; links carry delay.

    ``sites`` is a list of site names or a count (sites "site1".."siteN"); ``links`` holds
    pairs of site names, or triples ``(a, b, delay_ms)`` overriding the default delay.
    """
    if isinstance(sites, int) and not isinstance(sites, bool):
        site_names = [f"site{i + 1}" for i in range(_int_param("sites", sites, minimum=1))]
    elif (isinstance(sites, Sequence) and not isinstance(sites, str) and sites
          and all(isinstance(s, str) and s for s in sites)):
        site_names = list(sites)
    else:
        raise TopologyError(f"sites must be a non-empty list of site names or a count, "
                            f"got {sites!r}")
    if len(set(site_names)) != len(site_names):
        dups = sorted({s for s in site_names if site_names.count(s) > 1})
        raise TopologyError(f"sites: duplicate site name(s) {', '.join(dups)}")
    if isinstance(links, (str, bytes)) or not isinstance(links, Sequence):
        raise TopologyError(f"links must be a list of [site, site] pairs, got {links!r}")
    capacity = compute_capacity(compute, WAN_COMPUTE)
    topo = Topology(name or "wan")
    switch_of = {}
    for i, site in enumerate(site_names):
        switch_of[site] = topo.add_switch(f"s{i + 1}", role="site", site=site, label=site).name
    for index, pair in enumerate(links):
        if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence)
                or len(pair) not in (2, 3)):
            raise TopologyError(f"links[{index}]: expected [site, site] or [site, site, "
                                f"delay_ms], got {pair!r}")
        for site in pair[:2]:
            if site not in switch_of:
                raise TopologyError(f"links[{index}]: unknown site {site!r}; known: "
                                    f"{', '.join(site_names)}")
        link_delay = pair[2] if len(pair) == 3 else delay_ms
        topo.add_link(switch_of[pair[0]], switch_of[pair[1]], bw_mbit=bw_mbit,
                      delay_ms=link_delay, loss_pct=loss_pct)
    for i, site in enumerate(site_names):
        topo.add_endpoint(f"h{i + 1}", switch_of[site], bw_mbit=bw_mbit)
        topo.add_compute(f"n{i + 1}", switch_of[site], **capacity)
    return _finish(topo)


BUILDERS: dict[str, Callable[..., Topology]] = {
    "fat_tree": fat_tree,
    "leaf_spine": leaf_spine,
    "linear": linear,
    "wan": wan,
}
