"""The NFVIs the testbed runs network services on, behind two seams.

- ``mano.nfvi.NfviDriver``: what the MANO stack asks of an NFVI (instances, forwarding
  graphs, metrics, events).
- ``testbed.nfvi.api.ExperimentNfvi``: what an experiment does to it besides (faults,
  load, probes, host health); it carries the driver as ``.driver``.

Implementations live side by side, each in a package of its own:

- ``testbed.nfvi.emulated``: Mininet hosts and Open vSwitch switches programmed by the
  os-ken controller, real VNF programs, real packets (needs root);
- ``testbed.nfvi.simulated``: a flow-level model on a plain SimPy environment, calibrated
  from the emulated one; operations take modelled time (no root, no Mininet).

``open_nfvi(kind, topology, run_dir)`` returns the chosen one as a context manager. The
implementations are found by module name, so choosing one never imports another (the
emulated one needs mininet and os_ken; a simulated one must not).
"""
from __future__ import annotations

import importlib

from testbed.errors import TestbedError

KINDS = {"emulated": "testbed.nfvi.emulated", "simulated": "testbed.nfvi.simulated"}


def open_nfvi(kind: str, topology, run_dir, **options):
    """An ``ExperimentNfvi`` of the given kind on ``topology`` (a ``testbed.topology``
    ``Topology``), working in ``run_dir``; use it as a context manager (everything it made
    is removed on exit). Raises ``TestbedError`` for an unknown kind."""
    if kind not in KINDS:
        raise TestbedError(f"--nfvi {kind!r}: no such NFVI; known: {', '.join(sorted(KINDS))}")
    return importlib.import_module(KINDS[kind]).open_nfvi(topology, run_dir, **options)
