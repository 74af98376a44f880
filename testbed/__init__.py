"""The NFVI side of the testbed.

What lives here is the infrastructure that the MANO stack in ``mano/`` drives through one
driver interface:

- ``testbed.topology``: topologies as pure data (a networkx graph with typed specs), builders
  (fat-tree, leaf-spine, linear, WAN) and loaders (YAML, Topology Zoo GraphML/GML).
- ``testbed.emulator``: turns a topology into a live Mininet network of Open vSwitch switches,
  fast and as a context manager that removes everything it created.
- ``testbed.controller``: the SDN controller, an os-ken application in its own process that
  installs VNF forwarding graphs; ``controller.logic`` is the plain-Python core that turns
  graphs and port events into flow and group specs.
- ``testbed.programs``: real programs run inside Mininet hosts (VNF forwarders, probes).

An NFVI driver is what ``mano/`` talks to; the emulated driver is built from the pieces above,
a simulated (pure SimPy) one comes later.
"""
__version__ = "0.1.0"
