"""Topologies as pure data: a networkx graph with typed specs, builders and loaders.

- ``model``: :class:`Topology` and the frozen specs (:class:`SwitchSpec`,
  :class:`EndpointSpec`, :class:`ComputeSpec`, :class:`LinkSpec`); ``validate()`` says
  everything that is wrong at once.
- ``builders``: ``fat_tree``, ``leaf_spine``, ``linear``, ``wan``, and the ``BUILDERS``
  registry that YAML files name.
- ``loaders``: :func:`load_topology` for our YAML and Topology Zoo GraphML/GML; zoo data is
  repaired where that is safe and each repair is listed in ``Topology.quirks``.
- ``check``: :func:`check_file`, the printable summary behind ``testbed check``.

Nothing here imports mininet or touches the system; ``testbed.emulator`` turns a Topology
into a live network.
"""
from testbed.topology.builders import BUILDERS, fat_tree, leaf_spine, linear, wan
from testbed.topology.check import check_file, format_summary
from testbed.topology.loaders import load_topology
from testbed.topology.model import (
    ComputeSpec,
    EndpointSpec,
    LinkSpec,
    SwitchSpec,
    Topology,
)

__all__ = [
    "BUILDERS", "ComputeSpec", "EndpointSpec", "LinkSpec", "SwitchSpec", "Topology",
    "check_file", "fat_tree", "format_summary", "leaf_spine", "linear", "load_topology", "wan",
]
