"""The MANO stack (ETSI NFV-MANO split). ``mano`` never imports mininet, os_ken or testbed:
it reaches the infrastructure only through the NFVI driver interface (``mano.nfvi``).

- ``nfvo``: NFV Orchestrator. The NSD/VNFD catalogue, NS lifecycle (instantiate, scale,
  heal, terminate) as NS-level operation occurrences, forwarding graphs (through the NFVI's
  controller), grants for the VNFM, persistence and reconciliation after a restart.
- ``vnfm``: VNF Manager. VNF lifecycle as VNF-level operation occurrences (SOL003 states),
  one at a time per VNF, resources only after a grant, rollback of failed steps.
- ``vim``: Virtualised Infrastructure Manager. Compute resources and placement strategies;
  reports resource changes to the VNFM and infrastructure status to the NFVO.
- ``descriptors``: VNFD/NSD YAML parsed into typed models with precise errors.
- ``opocc``, ``store``: the operation-occurrence state machine and its SQLite (WAL) store.
- ``monitoring``: a time-series store and the per-instance metrics poller.
- ``nfvi``: the driver interface; ``remote``: a driver in another process (HTTP);
  ``nbi``: the NFVO's ETSI SOL005 northbound interface (FastAPI) and the NFVO as a process
  (``python -m mano.nbi.server``).
"""
