"""What every NFVI driver (``mano.nfvi.NfviDriver``) shares, written once: the translation
of the testbed's errors into ``mano.errors`` at the seam, and the inventory a topology gives
(compute nodes, endpoints, switch distances).

Errors cross the seam as ``mano.errors`` classes: a driver method decorated with
``translated`` raises an unknown instance (``NoInstance``) as ``NotFoundError`` and any
other ``TestbedError`` (or OS error of the infrastructure) as ``InfrastructureError``, so
the NFVO's own fallbacks (which catch ``MANOError``) run.
"""
from __future__ import annotations

import functools

import networkx as nx

from mano.errors import InfrastructureError, MANOError, NotFoundError
from mano.nfvi import ComputeNodeInfo
from testbed.errors import TestbedError


class NoInstance(TestbedError):
    """An instance id the driver does not know (becomes ``NotFoundError`` at the seam)."""


def translated(fn):
    """Raise the testbed's errors of ``fn`` as ``mano.errors`` classes (module docstring)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MANOError:
            raise
        except NoInstance as exc:
            raise NotFoundError(str(exc)) from exc
        except (TestbedError, OSError) as exc:
            raise InfrastructureError(f"{fn.__name__}: {exc}") from exc
    return wrapper


class TopologyInventory:
    """The inventory calls of ``NfviDriver`` answered from ``self.topology`` (a
    ``testbed.topology.Topology``); compute nodes in ``self._down_nodes`` are reported down.
    Call ``_init_inventory()`` in the constructor."""

    def _init_inventory(self) -> None:
        self._down_nodes: set[str] = set()
        self._dist = dict(nx.all_pairs_shortest_path_length(self.topology.switch_graph()))

    @translated
    def compute_nodes(self) -> list[ComputeNodeInfo]:
        return [ComputeNodeInfo(c.name, c.switch, float(c.vcpu), c.memory_mb, c.disk_gb,
                                up=c.name not in self._down_nodes)
                for c in self.topology.computes.values()]

    @translated
    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoint_map()[0])

    @translated
    def endpoint_switches(self) -> dict[str, str]:
        return dict(self._endpoint_map()[1])

    def _endpoint_map(self) -> tuple[dict[str, str], dict[str, str]]:
        """(name -> IP, name -> switch) of the topology's endpoints, made again only when
        the topology grew (it only grows, and its specs are frozen): the NFVO binds every
        graph through ``endpoints``, and reading them from the topology's graph each time
        cost O(nodes) per graph (bench/simscale.py profile)."""
        size = self.topology.graph.number_of_nodes()
        hit = getattr(self, "_endpoints_at", None)
        if hit is None or hit[0] != size:
            eps = self.topology.endpoints()
            hit = self._endpoints_at = (size, {e.name: e.ip for e in eps},
                                        {e.name: e.switch for e in eps})
        return hit[1], hit[2]

    def switch_distance(self, a: str, b: str) -> float:
        """Hops between two switches (inf when either is unknown or they are apart). Raises
        nothing, so it is not ``translated`` (placement asks it for every switch)."""
        try:
            return float(self._dist[a][b])
        except KeyError:
            return float("inf")
