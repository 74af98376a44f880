"""``check_file``: load a topology file and describe it for a human (``testbed check``).

The CLI prints the returned text; on :class:`~testbed.errors.TopologyError` it prints the
error's message and exits 2. Nothing here needs root.
"""
from __future__ import annotations

from pathlib import Path

from testbed.topology.loaders import load_topology
from testbed.topology.model import Topology


def _sites(sites: list[str], limit: int = 8) -> str:
    if not sites:
        return "0"
    shown = "; ".join(sites[:limit])
    return f"{len(sites)} ({shown}{'; ...' if len(sites) > limit else ''})"


def format_summary(topo: Topology) -> str:
    """A multi-line, printable summary of ``topo`` (see :meth:`Topology.summary`)."""
    s = topo.summary()
    diameter = "n/a (disconnected)" if s["diameter"] is None else f"{s['diameter']} hops"
    lines = [
        f"topology       {s['name']}",
        f"switches       {s['switches']}",
        f"endpoints      {s['endpoints']}",
        f"compute nodes  {s['computes']}",
        f"links          {s['links']} ({s['switch_links']} between switches)",
        f"sites          {_sites(s['sites'])}",
        f"capacity       {s['vcpu']} vCPU, {s['memory_mb']} MB memory, {s['disk_gb']} GB disk",
        f"diameter       {diameter} (between switches)",
        f"longest delay  {s['max_link_delay_ms']:g} ms (one link)",
        f"needs netem    {'yes (links have delay or loss)' if s['needs_netem'] else 'no'}",
    ]
    if s["quirks"]:
        lines.append(f"quirks handled {len(s['quirks'])}:")
        lines.extend(f"  - {q}" for q in s["quirks"])
    else:
        lines.append("quirks handled none")
    return "\n".join(lines)


def check_file(path: str | Path, *, largest_component: bool = False) -> str:
    """Load ``path`` (raising TopologyError if it is bad) and return its printable summary."""
    return format_summary(load_topology(path, largest_component=largest_component))
