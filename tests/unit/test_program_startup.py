"""The emulated driver starts VNF programs with ``python -S`` and the package folder on
PYTHONPATH (no site-packages): every program must run that way, importing only the
standard library and ``testbed.programs``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testbed.nfvi.emulated import driver

PROGRAMS = ["forwarder", "probe", "trafgen", "vnf", "common"]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", *args], check=False, capture_output=True,
                          text=True, timeout=30, cwd="/",
                          env={**os.environ, "PYTHONPATH": driver._PACKAGE_DIR})


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_imports_without_site_packages(name):
    """Each program module imports under ``python -S`` with the driver's PYTHONPATH."""
    out = _run(["-c", f"import testbed.programs.{name}"])
    assert out.returncode == 0, out.stderr


def test_forwarder_runs_as_the_driver_starts_it():
    """``python -S -m testbed.programs.forwarder --help`` exits 0."""
    out = _run(["-m", "testbed.programs.forwarder", "--help"])
    assert out.returncode == 0 and "--iface" in out.stdout, out.stderr
