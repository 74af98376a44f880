"""Experiments: scenarios, the SimPy engine, load and faults, results, plots and sweeps."""
