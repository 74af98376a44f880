"""The MANO stack (ETSI NFV-MANO split).

- NFVO: network-service catalogue and lifecycle, forwarding graphs, grants.
- VNFM: VNF lifecycle (instantiate, scale, heal, terminate) as operation occurrences.
- VIM: compute resources of the NFVI and placement.

``mano`` never imports mininet or os_ken: it reaches the infrastructure only through the NFVI
driver interface. (Filled in by a later issue.)
"""
