"""Integration tier: real Mininet, Open vSwitch and the controller process (root needed).

Each test skips with the reason when this machine lacks what it needs; CI has all of it.
At the end of the session the machine must hold nothing of ours.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (Mininet and Open vSwitch)"
    for tool in ("ovs-vsctl", "mnexec", "ip", "tc", "ethtool"):
        if shutil.which(tool) is None:
            return f"needs {tool} (run scripts/install.sh)"
    try:
        import mininet.node  # noqa: F401
    except ImportError:
        return "needs the mininet Python module (Debian's python3-mininet; see install.sh)"
    r = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True)
    if r.returncode != 0:
        return "needs a running Open vSwitch (scripts/install.sh starts it)"
    return None


MISSING = _missing()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if MISSING:
                item.add_marker(pytest.mark.skip(reason=MISSING))


def leftovers() -> list[str]:
    """What of ours is still on the machine: tagged bridges and links, run records."""
    from testbed.emulator import registry
    from testbed.emulator.net import TEMP_PREFIX, tagged_bridges, tagged_links

    out = [f"bridge {b}" for bs in tagged_bridges().values() for b in bs]
    out += [f"link {i}" for ls in tagged_links().values() for i in ls]
    out += [f"record {r.run_id}" for r in registry.all_runs()]
    from testbed import cgroups
    out += [f"cgroup {b}" for b in cgroups.run_bases()]
    out += [f"folder {p}" for p in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}tb*")]
    return out


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """After all integration tests: no bridge, link or run record of ours remains."""
    yield
    if MISSING is None:
        assert leftovers() == []


@pytest.fixture(autouse=True)
def one_emulation_at_a_time():
    """The machine holds one emulation at a time (a second is refused): when another
    user's run is active, wait for it (up to 10 minutes) instead of failing."""
    if MISSING is not None:
        yield
        return
    from testbed.emulator import registry

    def others():   # this process's own emulation (a module's shared one) is no reason
        return [r for r in registry.live_runs() if r.owner_pid != os.getpid()]
    deadline = time.monotonic() + 600
    while others() and time.monotonic() < deadline:
        time.sleep(2)
    yield
