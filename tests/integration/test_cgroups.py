"""Flavours become real cgroup limits on VNF hosts: a CPU quota saturates a busy program,
a memory limit kills one that allocates past it, and the groups go with the run."""
from __future__ import annotations

import sys
import time

import pytest

from testbed import cgroups
from testbed.emulator import Emulation
from testbed.topology.builders import linear


@pytest.fixture(scope="module")
def emu():
    with Emulation(linear(2), controller=False) as e:
        yield e
    assert not [b for b in cgroups.run_bases() if e.run_id in b]


def test_cpu_quota_caps_a_busy_program(emu):
    """A spinning program in a host limited to 0.25 vCPU gets about a quarter of a core."""
    emu.add_host("vcpu", "s1", cpu=0.25, memory_mb=256)
    cg = emu.cgroups.get("vcpu")
    proc = emu.popen("vcpu", [sys.executable, "-c", "while True: pass"], what="spin")
    time.sleep(0.3)
    c0, t0 = cg.cpu_seconds(), time.monotonic()
    time.sleep(2.0)
    share = (cg.cpu_seconds() - c0) / (time.monotonic() - t0)
    emu.stop_process(proc)
    assert 0.15 < share < 0.35, share
    emu.remove_host("vcpu")


def test_memory_limit_kills_a_program_that_allocates_past_it(emu):
    """A program allocating 200 MB in a 50 MB host is OOM-killed (SIGKILL), and the kill is
    counted by the cgroup."""
    emu.add_host("vmem", "s2", cpu=1.0, memory_mb=50)
    cg = emu.cgroups.get("vmem")
    proc = emu.popen("vmem", [sys.executable, "-c",
                              "x = bytearray(200 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096]); "
                              "import time; time.sleep(30)"], what="hog")
    rc = proc.wait(30)
    assert rc == -9
    assert cg.oom_kills() >= 1
    emu.remove_host("vmem")
    assert "vmem" not in emu.cgroups.groups
