"""What the kernel of this machine can do, detected once per process.

DESIGN.md: on the machines of this project the Open vSwitch kernel module and ``sch_netem``
are missing; a Vagrant VM has both. The emulator picks the datapath from what it finds and
refuses (KernelFeatureMissing) a topology that needs netem where it is missing, instead of
silently ignoring delay and loss as stock Mininet does.
"""
from __future__ import annotations

import functools
import os
import socket
import subprocess

from testbed.errors import KernelFeatureMissing


def _modprobe(module: str) -> bool:
    if os.path.isdir(f"/sys/module/{module}"):
        return True
    try:
        subprocess.run(["modprobe", "-q", module], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return os.path.isdir(f"/sys/module/{module}")


@functools.cache
def ovs_kernel_datapath() -> bool:
    """True when the Open vSwitch kernel module is loaded or loadable."""
    return _modprobe("openvswitch")


@functools.cache
def netem_available() -> bool:
    """True when tc's netem qdisc works (tried on a throwaway dummy link)."""
    if os.path.isdir("/sys/module/sch_netem"):
        return True
    name = f"tbnetem{os.getpid() % 100000}"
    try:
        if subprocess.run(["ip", "link", "add", name, "type", "dummy"],
                          capture_output=True).returncode != 0:
            return False
        r = subprocess.run(["tc", "qdisc", "add", "dev", name, "root", "netem", "delay", "1ms"],
                           capture_output=True)
        return r.returncode == 0
    except OSError:
        return False
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def require_netem(why: str) -> None:
    if not netem_available():
        raise KernelFeatureMissing(
            f"{why} needs the kernel's netem qdisc (sch_netem), which this kernel does not "
            f"have (modprobe sch_netem failed and 'tc qdisc add ... netem' is refused). "
            f"Remove delay_ms/loss_pct from the topology's links, or run on a machine whose "
            f"kernel has sch_netem (the Vagrant VM does).")


def require_ovs() -> None:
    """Raise KernelFeatureMissing unless Open vSwitch runs: ovsdb-server accepts a
    connection on its socket and ovs-vswitchd's pid file names a live process, both in
    ``$OVS_RUNDIR`` (default /var/run/openvswitch), as OVS's own tools look for them.
    Without this check a stopped OVS shows up later as a raw ``ovs-vsctl`` error (database
    connection refused) or as a bridge creation that hangs. Costs well under 1 ms."""
    rundir = os.environ.get("OVS_RUNDIR", "/var/run/openvswitch")
    how = ("Start it with '/usr/share/openvswitch/scripts/ovs-ctl start' (scripts/install.sh "
           "does this), or 'systemctl start openvswitch-switch' where systemd runs.")
    sock = os.path.join(rundir, "db.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sock)
    except BlockingIOError:
        pass                        # a listener with a full backlog: running, but busy
    except OSError as e:
        raise KernelFeatureMissing(
            f"Open vSwitch is not running on this machine: its database server does not "
            f"answer on {sock} ({e.strerror or e}). {how}") from None
    pidfile = os.path.join(rundir, "ovs-vswitchd.pid")
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError) as e:
        raise KernelFeatureMissing(
            f"Open vSwitch's switch daemon ovs-vswitchd is not running on this machine "
            f"(pid file {pidfile}: {getattr(e, 'strerror', None) or e}). {how}") from None


def choose_datapath(requested: str = "auto") -> str:
    """'kernel' or 'user'. ``requested`` is 'auto', 'kernel' or 'user', or Open vSwitch's
    own names for the two, ``datapath_type`` 'system' (kernel) and 'netdev' (user)."""
    requested = {"system": "kernel", "netdev": "user"}.get(requested, requested)
    if requested not in ("auto", "kernel", "user"):
        raise ValueError(f"datapath must be auto, kernel (system) or user (netdev), "
                         f"not {requested!r}")
    if requested == "user":
        return "user"
    if ovs_kernel_datapath():
        return "kernel"
    if requested == "kernel":
        raise KernelFeatureMissing(
            "datapath 'kernel' needs the Open vSwitch kernel module (openvswitch), which "
            "this kernel does not have; use datapath 'auto' or 'user' (userspace datapath)")
    return "user"
