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


def _await(stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", "-m", "testbed.programs.forwarder",
                           "--await-args"], input=stdin, check=False, capture_output=True,
                          text=True, timeout=30, cwd="/",
                          env={**os.environ, "PYTHONPATH": driver._PACKAGE_DIR})


def test_a_waiting_forwarder_runs_with_the_arguments_it_reads_and_leaves_on_end_of_input():
    """``forwarder --await-args`` (a spare host's pre-started program) exits 0 on end of
    input, refuses a line that is no JSON list of strings (exit 2, saying so), and runs
    with the arguments it reads (here its set-up fails on the interface they name)."""
    assert _await("").returncode == 0
    bad = _await("--iface x\n")
    assert bad.returncode == 2 and "JSON list of strings" in bad.stderr
    run = _await('["--iface", "nope0", "--stats", "/nonexistent/s.json"]\n')
    assert run.returncode == 2
    assert "nope0" in run.stderr or "root" in run.stderr, run.stderr
