"""The emulated NFVI: Mininet + Open vSwitch + the os-ken controller, on this machine.

- ``driver.EmulatedDriver``: ``mano.nfvi.NfviDriver`` on a live ``Emulation`` (VNF
  instances are Mininet hosts with cgroup limits running the testbed's VNF programs);
- ``experiment.EmulatedNfvi``: ``testbed.nfvi.api.ExperimentNfvi`` (faults, load
  generators, probes and host health with real processes and packets).
"""
from testbed.nfvi.emulated.driver import EmulatedDriver
from testbed.nfvi.emulated.experiment import EmulatedNfvi, open_nfvi

__all__ = ["EmulatedDriver", "EmulatedNfvi", "open_nfvi"]
