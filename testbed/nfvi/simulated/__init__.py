"""The simulated NFVI: a flow-level model of the data center on a plain SimPy environment.

- ``model.FlowModel``: the fluid model (servers, instances with a CPU cost per packet,
  links with capacity and delay, paths from the controller's own logic, traffic streams);
  pure, every call takes ``now``;
- ``driver.SimulatedDriver``: ``mano.nfvi.NfviDriver`` on the model; operations take
  modelled time (``calibration.json``) through ``baton.Baton``;
- ``experiment.SimulatedNfvi``: ``testbed.nfvi.api.ExperimentNfvi`` (faults with holds,
  load generators, probes with synthesised records, no host health);
- ``calibration``: the timings and costs, with their sources.

Nothing here imports mininet or os_ken; ``docs/simulated-nfvi.md`` states every choice.
"""
from testbed.nfvi.simulated.driver import SimulatedDriver
from testbed.nfvi.simulated.experiment import SimulatedNfvi, open_nfvi

__all__ = ["SimulatedDriver", "SimulatedNfvi", "open_nfvi"]
