"""The emulator on real Mininet + OVS: bring-up, host configuration, and clean-up on every
kind of exit (normal, exception, Ctrl-C, SIGTERM, SIGKILL followed by `testbed clean`)."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import leftovers

from testbed.emulator import Emulation, features, registry
from testbed.errors import EmulationError, KernelFeatureMissing
from testbed.topology.builders import fat_tree, linear


def test_fat_tree_comes_up_with_hosts_configured_and_switches_programmed():
    """fat-tree k=4 starts: 20 switches connect to the controller, hosts have their address,
    static ARP for the other endpoints, and offloads off on the userspace datapath."""
    with Emulation(fat_tree(4)) as emu:
        health = emu.ctl.health()
        assert health["ready"] == 20 and health["connected"] == 20
        h1 = emu.hosts["h1"]
        assert "10.0.0.1/8" in h1.cmd("ip -br addr show h1-eth0")
        assert h1.cmd("ip neigh show 10.0.0.16").count("PERMANENT") == 1
        if emu.datapath == "user":
            assert "tx-checksumming: off" in h1.cmd("ethtool -k h1-eth0")
            sw_if = emu.switches["e1"].port_to("h1").iface
            out = subprocess.run(["ethtool", "-k", sw_if], capture_output=True, text=True).stdout
            assert "tcp-segmentation-offload: off" in out
        # no IPv6 address on any switch port (ovs-vswitchd rescans the address list
        # for each port it adds) nor on a host's interface (the fabric carries IPv4 only)
        ports = {p.iface for sw in emu.switches.values() for p in sw.ports.values()}
        six = subprocess.run(["ip", "-6", "-o", "addr"], capture_output=True, text=True,
                             check=True).stdout.splitlines()
        assert [ln for ln in six if ln.split()[1].split("@")[0] in ports] == []
        assert h1.cmd("ip -6 addr show dev h1-eth0").strip() == ""
        wiring = emu.wiring()
        assert len(wiring["links"]) == 32 and len(wiring["attachments"]) == 16
        ports = emu.ctl.port_stats()
        assert set(ports) == set(emu.switches)
        # the OpenFlow listener queues every switch connecting at once, fat-tree k=8's 80
        # too (os-ken's own queue of 50 delayed the others by a TCP retransmission, 1 s)
        listener = subprocess.run(["ss", "-Hltn", f"sport = :{emu.controller.of_port}"],
                                  capture_output=True, text=True, check=True).stdout.split()
        assert int(listener[2]) >= 80, listener
    assert leftovers() == []


def test_second_run_is_refused_while_one_is_active():
    """Two runs at once would fight over bridge names: the second is refused, clearly."""
    with Emulation(linear(2), controller=False):
        with pytest.raises(EmulationError, match="another testbed run is active"):
            Emulation(linear(2), controller=False).start()
    assert leftovers() == []


def test_a_switch_open_vswitch_cannot_set_up_is_refused_at_once(monkeypatch):
    """ovs-vsctl exits 0 when ovs-vswitchd cannot set a bridge up (seen when another
    ovs-vswitchd held the userspace datapath: the run then waited 60 s for switches that
    never connect). Here one switch asks for a datapath type OVS does not have: the
    bring-up stops with the switch named and where OVS says why, and leaves nothing."""
    original = Emulation._ovs_bridge_args

    def one_bogus(self, sw):
        args = original(self, sw)
        if sw.name == "s2":
            args = [a.replace("datapath_type=netdev", "datapath_type=tbbogus")
                     .replace("datapath_type=system", "datapath_type=tbbogus") for a in args]
        return args

    monkeypatch.setattr(Emulation, "_ovs_bridge_args", one_bogus)
    t = time.monotonic()
    with pytest.raises(EmulationError, match=r"could not set up 1 of the run's 3 switches "
                                             r"\(s2\).*ovs-vswitchd.log"), Emulation(linear(3)):
        pass
    assert time.monotonic() - t < 30
    assert leftovers() == []


@pytest.mark.skipif(features.netem_available(), reason="this kernel has netem")
def test_delay_without_netem_is_refused_naming_the_kernel_feature():
    """A topology with link delay on a kernel without sch_netem fails before building."""
    topo = linear(2, delay_ms=5)
    with pytest.raises(KernelFeatureMissing, match="sch_netem"):
        Emulation(topo, controller=False).start()
    assert leftovers() == []


@pytest.mark.skipif(not features.netem_available(), reason="this kernel has no netem")
def test_delay_with_netem_is_applied():
    """Where netem exists, link delay shows in the round-trip time."""
    with Emulation(linear(2, delay_ms=20), controller=False) as emu:
        assert "netem" in subprocess.run(["tc", "qdisc"], capture_output=True, text=True).stdout
        del emu


SCRIPT = textwrap.dedent("""
    import os, sys, time
    from testbed.emulator import Emulation
    from testbed.topology.builders import linear
    mode = sys.argv[1]
    with Emulation(linear(3)) as emu:
        emu.add_host("v1", "s2", cpu=0.2, memory_mb=64)
        p = emu.popen("v1", ["sleep", "600"], what="sleeper")
        print(json.dumps({"pids": [h.pid for h in emu.hosts.values()] + [p.pid,
              emu.controller.pid], "run": emu.run_id}), flush=True)
        if mode == "exit":
            sys.exit(0)
        if mode == "raise":
            raise RuntimeError("boom")
        time.sleep(600)
""").replace("import os, sys, time", "import json, os, sys, time")


def _run_until_up(mode: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"script failed: {proc.stderr.read()}")
    return proc, json.loads(line)


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if registry.proc_start_time(p) is not None]


@pytest.mark.parametrize("mode,sig", [("exit", None), ("raise", None),
                                      ("wait", signal.SIGINT), ("wait", signal.SIGTERM)])
def test_everything_is_removed_on_exit_crash_ctrl_c_and_sigterm(mode, sig):
    """Whatever way the run ends, its bridges, links, hosts, processes and record go."""
    proc, info = _run_until_up(mode)
    assert leftovers() != []
    if sig is not None:
        proc.send_signal(sig)
    proc.wait(60)
    assert _alive(info["pids"]) == []
    assert leftovers() == []
    assert not (registry.REGISTRY_DIR / f"{info['run']}.json").exists()


def test_sigkill_leaves_a_record_that_testbed_clean_removes():
    """A run killed with SIGKILL cannot tidy up; `testbed clean` removes its leftovers (and
    only those), ending its processes by recorded pid."""
    proc, info = _run_until_up("wait")
    proc.kill()
    proc.wait(10)
    time.sleep(0.3)
    assert any(info["run"] in x or "bridge" in x for x in leftovers())
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "clean"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "removed run" in out.stdout
    deadline = time.monotonic() + 10
    while _alive(info["pids"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(info["pids"]) == []
    assert leftovers() == []
    again = subprocess.run([sys.executable, "-m", "testbed.cli", "clean"], capture_output=True,
                           text=True, timeout=60)
    assert again.stdout.strip() == "nothing to clean"


def test_added_host_gets_a_port_and_is_removed_with_its_link():
    """A VNF host added at run time is attached, reachable by the controller, and removed."""
    with Emulation(linear(2)) as emu:
        emu.add_host("v1", "s1")
        att = emu.attachments["v1"]
        assert att.switch == "s1" and att.port == max(emu.switches["s1"].ports)
        names = {a["name"] for a in emu.ctl.topology()["attachments"]}
        assert "v1" in names
        iface = emu.switches["s1"].ports[att.port].iface
        emu.remove_host("v1")
        assert not Path(f"/sys/class/net/{iface}").exists()
        assert "v1" not in {a["name"] for a in emu.ctl.topology()["attachments"]}
    assert leftovers() == []


def test_tear_down_takes_copies_of_every_port_descriptor_and_closes_them_all():
    """With the userspace datapath the tear-down copies ovs-vswitchd's descriptor of every
    switch port (a packet socket each) and of every bridge (a tap each), so that the
    daemon's closes wait for no RCU grace period; the copies are all closed again: the
    process holds the same descriptors after the run as before (the controller client's
    pooled connection included), and nothing is left."""
    from testbed.emulator import net, portfds

    def held():
        return {p.name: os.readlink(p) for p in Path("/proc/self/fd").iterdir() if p.exists()}

    before = held()
    with Emulation(fat_tree(4)) as emu:
        if emu.datapath != "user":
            pytest.skip("kernel datapath: no port sockets in ovs-vswitchd")
        # a soft limit of open descriptors too low for the copies is raised for them
        limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(held()) + 20, limits[1]))
        try:
            fds = net.run_port_descriptors(emu.run_id, list(emu.switches))
        finally:
            raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        ports = sum(len(sw.ports) for sw in emu.switches.values())
        try:
            assert raised > len(held())
            kinds = {Path(f"/proc/self/fd/{fd}").readlink().as_posix().split(":")[0]
                     for fd in fds}
            assert len(fds) == ports + len(emu.switches), (len(fds), ports)
            assert kinds == {"socket", "/dev/net/tun"}
        finally:
            portfds.close_all(fds)
        assert fds  # close_all leaves the list to its owner
    assert held() == before
    assert leftovers() == []
    # a process that has ended has nothing to copy
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert portfds.copy_port_descriptors(proc.pid, ["e1"]) == []


def _record(run_id: str):
    return next(r for r in registry.all_runs() if r.run_id == run_id)


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_topology_hosts_start_their_shell_at_the_first_command_and_leave_nothing():
    """A topology host is a namespace held by a process; its shell starts (and is recorded
    for `testbed clean`) at its first command. Programs start without one. The holders and
    shells are gone after the run; the hosts' interfaces carry no IPv6."""
    with Emulation(linear(2), controller=False) as emu:
        h1, h2 = emu.hosts["h1"], emu.hosts["h2"]
        holders = [h1.pid, h2.pid]
        assert h1.shell is None and h2.shell is None
        assert os.readlink(f"/proc/{h1.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        recorded = {p.pid for p in _record(emu.run_id).processes}
        assert set(holders) <= recorded
        out = emu.popen("h2", ["ip", "-br", "-4", "addr", "show", "h2-eth0"],
                        stdout=subprocess.PIPE).communicate(timeout=10)[0].decode()
        assert "10.0.0.2/8" in out and h2.shell is None
        assert "10.0.0.1/8" in h1.cmd("ip -br -4 addr show h1-eth0")
        shell = h1.shell.pid
        assert h1.pid == holders[0] and shell != h1.pid
        assert shell in {p.pid for p in _record(emu.run_id).processes}
        assert h1.cmd("cat /proc/sys/net/ipv6/conf/h1-eth0/disable_ipv6").strip() == "1"
        assert h1.cmd("ip -6 addr show dev h1-eth0").strip() == ""
    assert not any(_running(p) for p in holders + [shell])
    assert leftovers() == []


def test_a_host_set_up_the_kernel_refuses_names_the_interface_and_the_request():
    """``netlink.configure`` raises naming the interface and what the kernel refused: an
    interface that is not there, an address the interface has already."""
    from testbed.emulator import netlink
    from testbed.emulator.hosts import start_netns_holders

    [holder] = start_netns_holders(1)
    try:
        subprocess.run(["ip", "link", "add", "name", "tbnlA", "type", "veth", "peer", "name",
                        "tbnlB", "netns", str(holder.pid)], check=True)
        with pytest.raises(EmulationError, match="no interface 'tbnlX'"):
            netlink.configure([netlink.HostNet(holder.pid, "tbnlX", "10.9.0.1", 8)])
        host = netlink.HostNet(holder.pid, "tbnlB", "10.9.0.1", 8,
                               (("10.9.0.2", "02:00:00:00:09:02"),))
        netlink.configure([host])
        neigh = subprocess.run(["mnexec", "-a", str(holder.pid), "ip", "neigh", "show",
                                "10.9.0.2"], capture_output=True, text=True, check=True).stdout
        assert "02:00:00:00:09:02" in neigh and "PERMANENT" in neigh
        with pytest.raises(EmulationError,
                           match=r"tbnlB .*could not add address 10.9.0.1/8 to tbnlB: EEXIST"):
            netlink.configure([host])
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(["ip", "link", "del", "tbnlA"], capture_output=True, check=False)


def test_switches_made_before_the_controller_has_booted_connect_at_once(tmp_path):
    """The controller's OpenFlow port listens from the moment its process is started (it
    inherits the socket): a switch connecting before the controller has imported anything
    is queued, not refused (OVS would retry a second later). Once the controller is gone,
    nothing listens."""
    import socket

    from testbed.controller.process import ControllerProcess

    ctl = ControllerProcess(tmp_path, {"switches": [], "links": [], "attachments": []})
    ctl.spawn()
    try:
        socket.create_connection(("127.0.0.1", ctl.of_port), timeout=1).close()
        ctl.wait_ready()
    finally:
        ctl.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ctl.of_port), timeout=1)
