"""The emulated data center: a topology brought up as Mininet hosts and OVS switches.

Lifecycle::

    with Emulation(topology) as emu:      # start(): bridges, hosts, links, controller
        emu.hosts["h1"].cmd("ping -c1 10.0.0.2")
    # stop(): everything created is removed, also on Ctrl-C, SIGTERM or an exception

Bring-up is batched (see ``shell.py``): one ``ovs-vsctl`` transaction per group of bridges
and ports, one ``ip -batch`` per group of veth pairs (host ends are created directly inside
the hosts' namespaces), the hosts' namespaces held by ``sleep`` processes (a host's shell
starts at its first command, ``hosts.py``) and configured from this process by rtnetlink
(``netlink.py``). A run that is killed outright
(SIGKILL) leaves a record in ``/run/testbed`` that ``testbed clean`` uses.

Run-time hosts (``add_host``, e.g. VNF instances) are made from spare hosts started ahead
when the run keeps some (``keep_spares``, see ``spares.py``), and the switch ports of hosts
added at the same time go in one ``ovs-vsctl`` transaction (``shell.VsctlBatcher``).
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from testbed.emulator import features, names, netlink, portfds, registry
from testbed.emulator.ethtool import offloads_off
from testbed.emulator.hosts import FastHost, QuietIntf, start_netns_holders
from testbed.emulator.shell import VsctlBatcher, ip_batch, offload_script, run, sh, tc_batch, vsctl
from testbed.emulator.spares import SparePool
from testbed.errors import EmulationError

log = logging.getLogger(__name__)

IFNAMSIZ = names.IFNAMSIZ
TEMP_PREFIX = "testbed-"  # + run id: a run's own temporary folder
PREFIX_LEN = 8  # all hosts share 10.0.0.0/8


@dataclass
class SwitchPort:
    port: int
    iface: str          # interface name in the root namespace
    peer: str           # neighbour switch, endpoint or VNF host name


@dataclass
class Switch:
    name: str
    dpid: int
    ports: dict[int, SwitchPort] = field(default_factory=dict)

    def next_port(self) -> int:
        return max(self.ports, default=0) + 1

    def port_to(self, peer: str) -> SwitchPort:
        for p in self.ports.values():
            if p.peer == peer:
                return p
        raise EmulationError(f"switch {self.name} has no link to {peer!r}")


@dataclass
class Attachment:
    """Where a host plugs into the fabric (what the controller calls an attachment)."""
    name: str
    switch: str
    port: int
    mac: str
    ip: str

    def to_dict(self) -> dict:
        return {"name": self.name, "switch": self.switch, "port": self.port,
                "mac": self.mac, "ip": self.ip}


class ControllerCalls:
    """The controller's northbound client as the emulation's ``ctl``: every call goes to
    the controller process of the moment and, while ``restart_controller`` replaces that
    process, waits for the new one instead of failing on a closed port. Attributes are
    those of ``testbed.controller.process.NorthboundClient``."""

    def __init__(self, emu: Emulation):
        self._emu = emu

    def __getattr__(self, name: str):
        if not callable(getattr(self._emu.controller.client, name)):
            return getattr(self._emu.controller.client, name)

        def call(*args, **kwargs):
            with self._emu._ctl_lock:
                return getattr(self._emu.controller.client, name)(*args, **kwargs)
        call.__name__ = name
        return call


class Emulation:
    """A live emulation of ``topology`` (a ``testbed.topology.Topology``)."""

    def __init__(self, topology, *, run_dir: str | os.PathLike | None = None,
                 datapath: str = "auto", controller: bool = True,
                 controller_args: dict | None = None):
        self.topology = topology
        self.datapath = features.choose_datapath(datapath)
        self.run_id = "tb" + secrets.token_hex(4)
        # All root-namespace links of the run share an interface group: the kernel deletes
        # a whole group in one batch (0.1 s for 600 veths instead of 4.5 s one by one).
        self.link_group = link_group(self.run_id)
        # Without a run_dir the run works in a temporary folder of its own, removed at stop
        # (and by `testbed clean` after a SIGKILL). It is made in start(), not here.
        self._own_run_dir = run_dir is None
        self.run_dir = Path(run_dir) if run_dir else Path(
            tempfile.gettempdir()) / f"{TEMP_PREFIX}{self.run_id}"
        self.with_controller = controller
        self.controller_args = controller_args or {}
        self.switches: dict[str, Switch] = {}
        self.hosts: dict[str, FastHost] = {}
        self.attachments: dict[str, Attachment] = {}
        self.ctl = None          # ControllerCalls when the controller runs
        self.controller = None   # ControllerProcess
        self._ctl_lock = threading.RLock()   # held while the controller restarts
        self._ctl_attached: set[str] = set()  # run-time hosts the controller knows
        self._record: registry.RunRecord | None = None
        self._procs: list[tuple[subprocess.Popen, str]] = []
        self._procs_lock = threading.Lock()
        # run-time hosts are added and removed from several threads at once (the NFVI
        # creates a network service's instances in parallel): their bookkeeping (ports,
        # names, addresses, ``hosts``, ``attachments``) changes under this lock, the slow
        # system calls run outside it
        self._hosts_lock = threading.RLock()
        self.cgroups = None      # CgroupManager, made when a host gets limits
        self.spares = SparePool(self)             # hosts started ahead (keep_spares)
        self._port_transactions = VsctlBatcher()  # switch ports of hosts added at once
        self._prestarted: dict[str, subprocess.Popen] = {}   # host -> its spare's program
        self._links_down: set[str] = set()
        self._ifnames: set[str] = set()           # every interface name given in this run
        self._host_ifaces: dict[str, str] = {}    # host -> its interface (in its namespace)
        self._mac_counter = 0x100000
        self._ip_counter = 1 << 16   # VNF hosts get 10.1.x.y
        self._started = False
        self._stopping = False
        self._old_handlers: dict[int, object] = {}
        self.timings: dict[str, float] = {}

    # ---- context manager -------------------------------------------------------------
    def __enter__(self) -> Emulation:
        self._install_signal_handlers()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _install_signal_handlers(self) -> None:
        # SIGTERM and SIGHUP become SystemExit so that __exit__ runs; Ctrl-C already raises
        # KeyboardInterrupt. Only the main thread may install handlers.
        if threading.current_thread() is not threading.main_thread():
            return

        def _raise(signum, _frame):
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _raise)

    def _restore_signal_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    # ---- bring-up ----------------------------------------------------------------------
    def start(self) -> Emulation:
        if self._started:
            raise EmulationError("this emulation was started already; make a new one")
        self._started = True
        t0 = time.monotonic()
        self.topology.validate()
        if self.topology.needs_netem():
            features.require_netem(f"topology {self.topology.name!r} (links with delay or loss)")
        features.require_ovs()
        others = registry.live_runs()
        if others:
            raise EmulationError(
                f"another testbed run is active (run {others[0].run_id}, pid "
                f"{others[0].owner_pid}); stop it first. If it was killed, `testbed clean` "
                f"removes its leftovers.")
        self._check_names()
        self._record = registry.RunRecord.new(self.run_id, str(self.run_dir),
                                              owns_run_dir=self._own_run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        self._plan()
        self._record.bridges = list(self.switches)
        self._record.links = [p.iface for s in self.switches.values() for p in s.ports.values()]
        self._record.save()

        # Overlapped: the controller process boots meanwhile (it inherited its listening
        # socket, so switches made before it is up connect at once and wait in the queue);
        # the links between switches are made first, then ovs-vswitchd makes the bridges
        # and their ports between switches while this process makes the hosts (network
        # namespaces), links them and configures them; then ovs-vswitchd adds the hosts'
        # ports. The links between switches go first, alone: made while the namespaces
        # are made, both waited for the kernel's RTNL lock and the bridges came 0.3 s
        # later. fat-tree k=8: see bench/bringup.py and docs/architecture.md.
        if self.with_controller:
            self._start_controller()
        self._create_links(hosts=False)
        with _Lane(self._create_switches, "switches") as switches:
            self._start_hosts()
            self._create_links(hosts=True)
            self._configure_hosts()
        switches.check()
        self._attach_hosts()
        if self.controller is not None:
            self.controller.wait_ready()
        self._shape_links()
        self.timings["build"] = time.monotonic() - t0
        if self.ctl is not None:
            self.ctl.wait_switches(len(self.switches), timeout=60)
        self.timings["start"] = time.monotonic() - t0
        log.info("emulation %s up in %.2f s (%d switches, %d hosts, %s datapath)",
                 self.run_id, self.timings["start"], len(self.switches), len(self.hosts),
                 self.datapath)
        return self

    def _check_names(self) -> None:
        existing = set(os.listdir("/sys/class/net"))
        for sw in self.topology.switches():
            if sw.name in existing:
                raise EmulationError(
                    f"switch name {sw.name!r} clashes with an existing network interface of "
                    f"this machine; rename the switch in the topology")

    def _plan(self) -> None:
        """Number ports and name interfaces (pure bookkeeping, no system calls)."""
        for sw in self.topology.switches():
            self.switches[sw.name] = Switch(sw.name, sw.dpid)
        self._host_links: list[tuple[str, str, str, int, object]] = []
        self._switch_links: list[tuple[str, str, object]] = []
        endpoints = {e.name: e for e in self.topology.endpoints()}
        for link in self.topology.links():
            a, b = link.a, link.b
            if a in endpoints:
                a, b = b, a
            if b in endpoints:
                ep = endpoints[b]
                sw = self.switches[a]
                port = sw.next_port()
                iface = self._ifname(a, port)
                sw.ports[port] = SwitchPort(port, iface, b)
                self.attachments[b] = Attachment(b, a, port, ep.mac, ep.ip)
                hif = self._ifname(b, 0)
                self._host_ifaces[b] = hif
                self._host_links.append((b, hif, iface, port, link))
            else:
                sa, sb = self.switches[a], self.switches[b]
                pa, pb = sa.next_port(), sb.next_port()
                ia, ib = self._ifname(a, pa), self._ifname(b, pb)
                sa.ports[pa] = SwitchPort(pa, ia, b)
                sb.ports[pb] = SwitchPort(pb, ib, a)
                self._switch_links.append((ia, ib, link))

    def _ifname(self, node: str, port: int, extra: frozenset[str] = frozenset()) -> str:
        """A free interface name for ``node``'s ``port`` (``names.ifname``: at most
        IFNAMSIZ characters whatever the node name and port), reserved for this run."""
        name = names.ifname(node, port, self._ifnames | extra)
        self._ifnames.add(name)
        return name

    def host_iface(self, host: str) -> str:
        """The name of ``host``'s interface inside its namespace (``h1-eth0`` or, for a
        long host name, a bounded name; see :mod:`testbed.emulator.names`)."""
        try:
            return self._host_ifaces[host]
        except KeyError:
            raise EmulationError(f"no host {host!r} in this emulation") from None

    def _start_controller(self) -> None:
        from testbed.controller.process import ControllerProcess

        # a new run starts with no graphs: forget what a previous controller of a reused
        # run folder saved (restart_controller keeps it, on purpose)
        (self.run_dir / "controller-state.json").unlink(missing_ok=True)
        self.controller = ControllerProcess(self.run_dir, self.wiring(), **self.controller_args)
        self.controller.spawn()   # start() waits for it to answer, before the switches
        self._record.add_process(self.controller.pid, "controller")
        self.ctl = ControllerCalls(self)

    def restart_controller(self) -> float:
        """Stop the controller process and start a new one (same ports, same saved graphs);
        return the seconds until every switch is programmed again. Calls of the controller
        made meanwhile (``self.ctl``, e.g. a VNF being attached during a heal) wait for the
        new process instead of failing on a closed port."""
        from testbed.controller.process import ControllerProcess
        with self._ctl_lock:
            t = time.monotonic()
            old = self.controller
            old.stop()
            old.client.close()   # calls wait on the lock meanwhile, then use the new one
            self._record.forget_process(old.pid)
            self.controller = ControllerProcess(self.run_dir, self.wiring(),
                                                **{**self.controller_args,
                                                   "of_port": old.of_port,
                                                   "api_port": old.api_port})
            self.controller.start()
            self._record.add_process(self.controller.pid, "controller")
            self.ctl.wait_switches(len(self.switches), timeout=60)
            return time.monotonic() - t

    def _start_hosts(self) -> None:
        """The topology's hosts: a network namespace each, held by a process (their shells
        start at their first command, see ``hosts.FastHost``)."""
        t = time.monotonic()
        names_ = [name for name, *_ in self._host_links]
        holders = start_netns_holders(len(names_))
        try:   # in self.hosts at once: stop() ends them whatever happens next
            for name, p in zip(names_, holders):
                self.hosts[name] = FastHost(name, holder=p,
                                            on_shell=self._shell_recorder(name))
        except BaseException:
            for p in holders:
                p.kill()
                p.wait()
            raise
        self._record.processes.extend(
            registry.ProcRecord(p.pid, registry.proc_start_time(p.pid), f"host {name}")
            for name, p in zip(names_, holders))
        self._record.save()
        self.timings["hosts"] = time.monotonic() - t

    def _shell_recorder(self, host: str) -> Callable[[int], None]:
        def record(pid: int) -> None:
            if self._record is not None and not self._stopping:
                self._record.add_process(pid, f"host {host} shell")
        return record

    def _ovs_bridge_args(self, sw: Switch) -> list[str]:
        dp = "netdev" if self.datapath == "user" else "system"
        return ["--", "add-br", sw.name,
                "--", "set", "bridge", sw.name, f"datapath_type={dp}",
                "protocols=OpenFlow13", "fail_mode=secure",
                f"other-config:datapath-id={sw.dpid:016x}",
                "other-config:disable-in-band=true",
                f"external_ids:{registry.BRIDGE_TAG}={self.run_id}"]

    def _ovs_controller_args(self, sw: Switch) -> list[str]:
        if self.controller is None:
            return []
        return ["--", "set-controller", sw.name, f"tcp:127.0.0.1:{self.controller.of_port}",
                "--", "set", "controller", sw.name, "max_backoff=1000",
                "inactivity_probe=0"]

    @staticmethod
    def _ovs_port_args(bridge: str, port: SwitchPort) -> list[str]:
        return ["--", "add-port", bridge, port.iface,
                "--", "set", "interface", port.iface, f"ofport_request={port.port}"]

    def _create_switches(self) -> None:
        """Every bridge, with its controller, and its ports towards other switches, in
        one ``ovs-vsctl`` transaction (those links exist). Raises EmulationError."""
        t = time.monotonic()
        args: list[str] = []
        for sw in self.switches.values():
            args += (self._ovs_bridge_args(sw) + self._ovs_controller_args(sw)
                     + self._ovs_ports_args(sw, to_hosts=False))
        self._ovs_transaction(args)
        self.timings["switches"] = time.monotonic() - t

    def _attach_hosts(self) -> None:
        """The switches' ports towards hosts, in one transaction. Raises EmulationError."""
        t = time.monotonic()
        self._ovs_transaction([a for sw in self.switches.values()
                               for a in self._ovs_ports_args(sw, to_hosts=True)])
        self.timings["attach"] = time.monotonic() - t

    def _ovs_ports_args(self, sw: Switch, *, to_hosts: bool) -> list[str]:
        """``ovs-vsctl`` words adding ``sw``'s ports towards hosts, or towards switches."""
        return [a for port in sw.ports.values()
                if (port.peer in self.attachments) == to_hosts
                for a in self._ovs_port_args(sw.name, port)]

    def _ovs_transaction(self, args: list[str]) -> None:
        """Run one ``ovs-vsctl`` transaction. Raises EmulationError naming the switches
        ovs-vswitchd could not set up (ovs-vsctl itself exits 0 then)."""
        if args:
            r = run(["ovs-vsctl", "--timeout=120"] + _sets_last(args), timeout=125)
            # ovs-vsctl exits 0 when ovs-vswitchd could not set a bridge up; it says so on
            # stderr ("Error detected while setting up 'e4'"), and the switch never exists
            failed = re.findall(r"Error detected while setting up '([^']+)'", r.stderr)
            # a switch that failed fails its ports too: name the switches, else the ports
            what = [n for n in failed if n in self.switches] or failed
            total = f"{len(self.switches)} switches" if what is not failed else "ports"
            if failed:
                raise EmulationError(
                    f"Open vSwitch could not set up {len(what)} of the run's {total} "
                    f"({', '.join(what[:5])}{', ...' if len(what) > 5 else ''}). "
                    f"ovs-vswitchd's log "
                    f"(/var/log/openvswitch/ovs-vswitchd.log) says why; 'failed to open "
                    f"datapath of type netdev' there means another ovs-vswitchd on this "
                    f"machine holds the userspace datapath's device (ovs-netdev).")

    def _create_links(self, *, hosts: bool) -> None:
        """The veth pairs between switches (``hosts`` False) or from switches to hosts
        (True, the hosts' namespaces made), in one ``ip -batch``; offloads off on the
        switches' ends with the userspace datapath."""
        t = time.monotonic()
        tag = f"{registry.LINK_ALIAS_PREFIX}{self.run_id}"
        lines, ends = [], []
        for ia, ib, _link in ([] if hosts else self._switch_links):
            lines.append(f"link add name {ia} group {self.link_group} type veth "
                         f"peer name {ib} group {self.link_group}")
            lines += self._switch_end_lines(ia, tag) + self._switch_end_lines(ib, tag)
            ends += [ia, ib]
        for host, hif, sif, _port, _link in (self._host_links if hosts else []):
            mac = self.attachments[host].mac
            pid = self.hosts[host].pid
            lines.append(f"link add name {sif} group {self.link_group} type veth "
                         f"peer name {hif} address {mac} netns {pid}")
            lines += self._switch_end_lines(sif, tag)
            ends.append(sif)
        ip_batch(lines)
        if self.datapath == "user":
            self._offloads_off(ends)
        self.timings["host links" if hosts else "links"] = time.monotonic() - t

    def _switch_end_lines(self, iface: str, tag: str) -> list[str]:
        """``ip`` lines setting up a switch's end of a link: no IPv6 link-local address
        (a switch port has no use for one), then the run's tag and link group, and up
        (the group is given at creation too). ovs-vswitchd wakes up for every change of
        every link of the machine, and each line is one; but ``addrgenmode`` must be its
        own line, before ``up``: in one request the kernel brings the link up first, and
        the second end of a pair (carrier on at once) got its fe80 address.

        Without the address, ovs-vswitchd's port additions no longer slow down as ports
        accumulate: it rescans the machine's address list (``getifaddrs``) for each port,
        and every new link-local address had it dump the list again. 640 ports in one
        transaction: 0.44-0.48 s instead of 2.5 s here."""
        return [f"link set dev {iface} addrgenmode none",
                f"link set dev {iface} alias {tag} group {self.link_group} up"]

    @staticmethod
    def _offloads_off(ifaces: list[str]) -> None:
        failed = offloads_off(ifaces)
        if failed:  # fall back to the ethtool program, which says why if it fails too
            sh(offload_script(failed))

    def _host_net(self, host: str, iface: str, neighbours=()) -> netlink.HostNet:
        """A host's set-up (``netlink.HostNet``): its address, its interface and loopback
        up, static ARP for ``neighbours`` (attachments), its interface's offloads off."""
        att = self.attachments[host]
        # The host's end of its link: offloads off on either datapath. With the userspace
        # datapath TCP hangs otherwise (DESIGN.md); with the kernel datapath a host's frames
        # leave with a partial checksum, which a VNF program reading and resending raw
        # frames (forwarder, NAT, LB) would pass on unfinished, and the receiver drops them.
        return netlink.HostNet(self.hosts[host].pid, iface, att.ip, PREFIX_LEN,
                               tuple((a.ip, a.mac) for a in neighbours if a.name != host))

    def _configure_hosts(self) -> None:
        t = time.monotonic()
        endpoints = [a for a in self.attachments.values() if a.name in self.hosts]
        netlink.configure([self._host_net(host, hif, endpoints)
                           for host, hif, *_ in self._host_links])
        for host, hif, *_ in self._host_links:
            QuietIntf(hif, node=self.hosts[host], port=0, mac=self.attachments[host].mac,
                      ip=self.attachments[host].ip, prefix_len=PREFIX_LEN)
        self.timings["configure"] = time.monotonic() - t

    def _shape_links(self) -> None:
        """HTB rate limits (and netem delay/loss where the kernel has it) on both ends."""
        root_lines: list[str] = []
        for ia, ib, link in self._switch_links:
            for iface in (ia, ib):
                root_lines += _tc_lines(iface, link)
        host_scripts: dict[str, list[str]] = {}
        for host, hif, sif, _port, link in self._host_links:
            root_lines += _tc_lines(sif, link)
            host_scripts.setdefault(host, []).extend(_tc_lines(hif, link))
        tc_batch(root_lines)
        # the hosts' ends: a `tc -batch` in each host's namespace, several at once (a
        # topology host has no shell until its first command)
        todo = [(host, lines) for host, lines in host_scripts.items() if lines]
        if todo:
            from concurrent.futures import ThreadPoolExecutor

            def shape(item):
                host, lines = item
                try:
                    tc_batch(lines, netns_pid=self.hosts[host].pid)
                except EmulationError as exc:
                    raise EmulationError(f"host {host}: could not shape its link: {exc}") \
                        from None
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(shape, todo))

    # ---- what the controller needs --------------------------------------------------------
    def wiring(self) -> dict:
        """The fabric as the controller sees it: switches, links with ports, attachments."""
        links = []
        seen = set()
        for sw in self.switches.values():
            for p in sw.ports.values():
                if p.peer in self.switches and (p.peer, sw.name) not in seen:
                    seen.add((sw.name, p.peer))
                    links.append({"a": sw.name, "a_port": p.port, "b": p.peer,
                                  "b_port": self.switches[p.peer].port_to(sw.name).port})
        return {"switches": {s.name: s.dpid for s in self.switches.values()},
                "links": links,
                "attachments": [a.to_dict() for a in self.attachments.values()]}

    # ---- run time ---------------------------------------------------------------------
    def host(self, name: str) -> FastHost:
        try:
            return self.hosts[name]
        except KeyError:
            raise EmulationError(f"no host {name!r}; hosts: {', '.join(sorted(self.hosts))}")

    def _link_iface(self, a: str, b: str) -> str:
        if a in self.switches:
            return self.switches[a].port_to(b).iface
        if b in self.switches:
            return self.switches[b].port_to(a).iface
        raise EmulationError(f"no link between {a!r} and {b!r}")

    def set_link(self, a: str, b: str, up: bool) -> None:
        """Bring the link a-b down or up (carrier drops on both ends, like a cut cable)."""
        iface = self._link_iface(a, b)
        ip_batch([f"link set dev {iface} {'up' if up else 'down'}"])
        (self._links_down.discard if up else self._links_down.add)(iface)

    def link_down(self, a: str, b: str) -> None:
        self.set_link(a, b, False)

    def link_up(self, a: str, b: str) -> None:
        self.set_link(a, b, True)

    def add_host(self, name: str, switch: str, *, ip: str | None = None,
                 mac: str | None = None, bw_mbit: float | None = None,
                 cpu: float | None = None, memory_mb: int | None = None,
                 on_link: Callable[[FastHost], object] | None = None) -> FastHost:
        """Add a host (e.g. a VNF instance) at run time, attached to ``switch``.

        ``cpu`` (cores) and ``memory_mb`` limit the host in a cgroup of its own: its shell
        and every program started with ``popen`` are placed in it. ``on_link(host)`` is
        called as soon as the host's interface exists in its namespace (not yet up nor
        addressed, its switch port not yet made): a program that opens the interface can
        start there, overlapping the rest of the set-up; if the rest fails, the host is
        removed with that program."""
        # no spare is started meanwhile; the port transaction waits a little for the ports
        # of hosts being added at the same time
        with self.spares.activity(), self._port_transactions.expecting() as port_turn:
            with self._hosts_lock:
                if name in self.hosts or name in self.switches or name in self.attachments:
                    raise EmulationError(f"name {name!r} is taken already")
                if switch not in self.switches:
                    raise EmulationError(f"no switch {switch!r}; switches: "
                                         f"{', '.join(sorted(self.switches))}")
                sw = self.switches[switch]
                port = sw.next_port()
                sif = self._ifname(switch, port, frozenset(os.listdir("/sys/class/net")))
                hif = self._ifname(name, 0)
                self._host_ifaces[name] = hif
                ip = ip or self._next_ip()
                mac = mac or self._next_mac()
                # the port, names and addresses are taken now (a host added meanwhile by another
                # thread gets others); remove_host finds whatever part was made
                sw.ports[port] = SwitchPort(port, sif, name)
                self.attachments[name] = Attachment(name, switch, port, mac, ip)
                if cpu is not None or memory_mb is not None:
                    self.cgroup_manager()
            h = spare = None
            try:
                spare = self.spares.take()
                if spare is not None:
                    h = spare.host
                    h.name = name
                else:
                    h = FastHost(name)
                    h.wait_ready()
            except BaseException:
                with self._hosts_lock:
                    sw.ports.pop(port, None)
                    self.attachments.pop(name, None)
                    self._ifnames.discard(sif)
                    self._ifnames.discard(self._host_ifaces.pop(name, ""))
                if spare is not None:
                    self.spares._end(spare)
                elif h is not None:
                    with contextlib.suppress(Exception):
                        h.terminate()
                raise
            with self._hosts_lock:
                self.hosts[name] = h
            self._record.links.append(sif)        # saved below, before the link is made
            if spare is None:
                self._record.add_process(h.pid, f"host {name}")
            else:
                # the spare becomes this host: its processes carry the host's name from now on
                labels = {h.pid: f"host {name}"}
                if spare.program is not None:
                    labels[spare.program.pid] = f"{name}:{spare.what}"
                    with self._procs_lock:
                        self._procs = [(p, labels.get(p.pid, w)) for p, w in self._procs]
                    self._prestarted[name] = spare.program
                self._record.relabel_processes(labels)
            try:
                if spare is not None and spare.cgroup is not None:
                    # its processes are in it already: the group becomes the host's
                    self.cgroups.limit(self.cgroups.rename(spare.name, name), cpu=cpu,
                                       memory_mb=memory_mb)
                elif cpu is not None or memory_mb is not None:
                    cg = self.cgroup_manager().create(name, cpu=cpu, memory_mb=memory_mb)
                    cg.add(h.pid)
                    if spare is not None and spare.program is not None:
                        cg.add(spare.program.pid)
                tag = f"{registry.LINK_ALIAS_PREFIX}{self.run_id}"
                ip_batch([f"link add name {sif} type veth peer name {hif} address {mac} "
                          f"netns {h.pid}"] + self._switch_end_lines(sif, tag))
                if on_link is not None:
                    on_link(h)
                if self.datapath == "user":
                    self._offloads_off([sif])
                netlink.configure([self._host_net(name, hif)])
                if bw_mbit:
                    from testbed.topology.model import LinkSpec
                    spec = LinkSpec(switch, name, bw_mbit=bw_mbit)
                    tc_batch(_tc_lines(sif, spec))
                    tc_batch(_tc_lines(hif, spec), netns_pid=h.pid)
                if self.ctl is not None:
                    self.ctl.put_attachment(self.attachments[name].to_dict())
                    self._ctl_attached.add(name)
                self._port_transactions.run(self._ovs_port_args(switch, sw.ports[port]),
                                            port_turn)
                QuietIntf(hif, node=h, port=0, mac=mac, ip=ip, prefix_len=PREFIX_LEN)
            except BaseException:
                # all or nothing: a host half made (e.g. the controller could not take its
                # attachment) is taken down again, so a retry or a rollback finds no trace of it
                with contextlib.suppress(Exception):
                    self.remove_host(name)
                raise
            return h

    def keep_spares(self, size: int, *,
                    prestart: Callable[[FastHost], subprocess.Popen] | None = None,
                    what: str = "program") -> None:
        """Keep ``size`` spare hosts started ahead for ``add_host`` (0: none; spares there
        are ended at once). ``prestart(host)`` starts a program in each spare (e.g. a VNF
        program waiting for its arguments), labelled ``what`` like ``popen``'s; the host that
        takes the spare gets it from ``claim_prestarted``. See ``testbed.emulator.spares``
        for the cost and the clean-up."""
        if size and not self._started:
            raise EmulationError("spare hosts need a started emulation")
        self.spares.configure(size, prestart, what)

    def claim_prestarted(self, name: str) -> subprocess.Popen | None:
        """The program a spare had started (``keep_spares``' ``prestart``) if host ``name``
        was made from a spare and its program still runs; else None. The program is the
        host's, stopped with it; a second claim gets None."""
        proc = self._prestarted.pop(name, None)
        return proc if proc is not None and proc.poll() is None else None

    def cgroup_manager(self):
        """The run's cgroups (made on first use, recorded for `testbed clean`)."""
        with self._hosts_lock:          # the spare hosts' thread may ask at the same time
            if self.cgroups is None:
                from testbed.cgroups import CgroupManager
                self.cgroups = CgroupManager(self.run_id)
                self._record.cgroups = [self.cgroups.base]
                self._record.save()
        return self.cgroups

    def remove_host(self, name: str) -> None:
        """Remove a run-time host: its processes, its shell, its link and port (also one
        that ``add_host`` made only in part)."""
        h = self.host(name)
        self._prestarted.pop(name, None)
        if name in self._ctl_attached:
            # first: the controller refuses while a graph uses the host, and then nothing
            # of it is removed yet
            self.ctl.delete_attachment(name)
            self._ctl_attached.discard(name)
        with self._hosts_lock:
            att = self.attachments.pop(name, None)
        with self._procs_lock:
            mine = [pw for pw in self._procs if pw[1].startswith(f"{name}:")]
        for proc, what in mine:
            self._stop_proc(proc, what)
        with self._hosts_lock:
            sp = self.switches[att.switch].ports.pop(att.port, None) if att else None
        if sp is not None:
            vsctl(["--if-exists", "del-port", att.switch, sp.iface])
        shell_pid = h.shell.pid if h.shell is not None else None
        h.terminate()
        self._record.forget_process(h.pid)
        if shell_pid is not None and shell_pid != h.pid:   # a shell started at first use
            self._record.forget_process(shell_pid)
        with self._hosts_lock:
            del self.hosts[name]
        if sp is not None:
            ip_batch([f"link del dev {sp.iface}"], force=True)
        with self._hosts_lock:
            if sp is not None:
                self._ifnames.discard(sp.iface)
            self._ifnames.discard(self._host_ifaces.pop(name, ""))
        if self.cgroups is not None:
            self.cgroups.remove(name)

    def _taken(self, attr: str) -> set[str]:
        """Addresses (``ip`` or ``mac``) of the topology's endpoints and of every host
        attached now: a run-time host never gets one of them."""
        out = {str(getattr(e, attr)).lower() for e in self.topology.endpoints()}
        return out | {str(getattr(a, attr)).lower() for a in self.attachments.values()}

    def _next_mac(self) -> str:
        taken = self._taken("mac")
        while True:
            self._mac_counter += 1
            v = self._mac_counter
            mac = "02:" + ":".join(f"{(v >> s) & 0xff:02x}" for s in (32, 24, 16, 8, 0))
            if mac not in taken:
                return mac

    def _next_ip(self) -> str:
        taken = self._taken("ip")
        while True:
            self._ip_counter += 1
            v = self._ip_counter
            if v & 0xff in (0, 255):
                continue          # not a network or broadcast-looking host part
            ip = f"10.{(v >> 16) & 0xff}.{(v >> 8) & 0xff}.{v & 0xff}"
            if ip not in taken:
                return ip

    def popen(self, host: str, argv: list[str], *, what: str = "", **kwargs) -> subprocess.Popen:
        """Start a program in a host's namespace; it is stopped at the end of the run."""
        h = self.host(host)
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = h.popen(argv, **kwargs)
        if self.cgroups is not None and host in self.cgroups.groups:
            self.cgroups.get(host).add(proc.pid)
        self._adopt_process(proc, f"{host}:{what or argv[0]}")
        return proc

    def _adopt_process(self, proc: subprocess.Popen, label: str) -> None:
        """Make ``proc`` a program of the run: recorded, stopped with its host (by the
        ``HOST:`` of its label) or at the end of the run."""
        with self._procs_lock:
            self._procs.append((proc, label))
        if self._record is not None:
            self._record.add_process(proc.pid, label)


    def stop_process(self, proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
        with self._procs_lock:
            procs = list(self._procs)
        for p, what in procs:
            if p is proc:
                return self._stop_proc(p, what, timeout)
        return proc.poll()

    def _stop_proc(self, proc: subprocess.Popen, what: str, timeout: float = 5.0):
        if proc.poll() is None:
            proc.terminate()
            try:  # a stopped (SIGSTOP, "hung") process acts on SIGTERM only once continued
                proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with self._procs_lock:
            self._procs = [pw for pw in self._procs if pw[0] is not proc]
        if self._record is not None:
            self._record.forget_process(proc.pid)
        return proc.returncode

    # ---- tear-down ----------------------------------------------------------------------
    def stop(self) -> None:
        """Remove everything this run created. Safe to call more than once."""
        if self._stopping or self._record is None:
            self._restore_signal_handlers()
            return
        self._stopping = True
        t = time.monotonic()
        errors: list[str] = []
        # a Ctrl-C during the tear-down must not leave half of the run behind
        old_int = None
        if threading.current_thread() is threading.main_thread():
            old_int = signal.signal(signal.SIGINT, _tearing_down)
        # copies of ovs-vswitchd's descriptors of the run's ports, taken before the hosts'
        # ends of the links go: then deleting the bridges waits for no RCU grace period
        # (portfds.py); remove_tagged closes them, all at once
        fds = run_port_descriptors(self.run_id, list(self.switches)) \
            if self.datapath == "user" else []
        try:
            try:
                self.spares.close()
            except EmulationError as exc:
                errors.append(str(exc))
            for proc, what in list(self._procs):
                try:
                    self._stop_proc(proc, what)
                except Exception as exc:  # keep tearing down; report at the end
                    errors.append(f"{what}: {exc}")
            if self.controller is not None:
                try:
                    self.controller.stop()
                    self.controller.client.close()   # its pooled API connection
                except Exception as exc:
                    errors.append(f"controller: {exc}")
            # Hang up every shell first, end the namespaces' holders, then reap them: the
            # namespaces go with the last process in them,
            # and with them the host ends of the veths (and so their switch ends).
            for h in self.hosts.values():
                if h.shell is not None and h.shell.poll() is None:
                    try:
                        os.killpg(h.shell.pid, signal.SIGHUP)
                    except ProcessLookupError:
                        pass
            for h in self.hosts.values():   # the topology's hosts' namespace holders
                if h.holder is not None and h.holder.poll() is None:
                    h.holder.kill()
            for h in self.hosts.values():
                if h.holder is not None:
                    h.holder.wait()
                try:
                    h.cleanup()
                except Exception as exc:
                    errors.append(f"host {h.name}: {exc}")
            self.hosts.clear()
            if self.cgroups is not None:
                try:
                    self.cgroups.remove_all()
                except Exception as exc:
                    errors.append(f"cgroups: {exc}")
            remove_tagged(self.run_id, fds)
            atexit.unregister(self.stop)
            if not errors:  # else the record stays, for `testbed clean`, and the logs too
                self._record.remove()
                if self._own_run_dir:
                    shutil.rmtree(self.run_dir, ignore_errors=True)
        finally:
            portfds.close_all(fds)   # if remove_tagged was not reached
            self.timings["stop"] = time.monotonic() - t
            self._restore_signal_handlers()
            if old_int is not None:
                signal.signal(signal.SIGINT, old_int)
        if errors:
            raise EmulationError(f"tear-down had problems (logs kept in {self.run_dir}; "
                                 "`testbed clean` retries):\n  " + "\n  ".join(errors))


class _Lane:
    """A bring-up step run on a thread while the ``with`` block runs: the block's end
    waits for it; ``check()`` then raises what it raised."""

    def __init__(self, step: Callable[[], None], name: str):
        self._step, self._error = step, None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._step()
        except BaseException as exc:   # handed to the starting thread by check()
            self._error = exc

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join()

    def check(self) -> None:
        if self._error is not None:
            raise self._error


def _sets_last(args: list[str]) -> list[str]:
    """``ovs-vsctl`` words with the generic ``set`` commands moved after the others. For
    the bring-up's transactions, which only add and set (one transaction: the order of
    such commands does not change its result; a ``del-*`` could).

    ovs-vsctl rebuilds its cache of bridges and ports after each ``set`` for the next
    ``add-br``/``add-port``/``set-controller``: interleaved, fat-tree k=8's transaction
    cost the ovs-vsctl process 0.17 s of CPU; with the ``set`` commands last, 0.06 s."""
    commands: list[list[str]] = []
    for word in args:
        if word == "--" or not commands:
            commands.append([])
        if word != "--":
            commands[-1].append(word)
    ordered = sorted((c for c in commands if c), key=lambda c: c[0] == "set")
    return [w for c in ordered for w in ["--", *c]]


def _tearing_down(_signum, _frame) -> None:
    print("testbed: tearing down the emulation, please wait", file=sys.stderr, flush=True)


def run_port_descriptors(run_id: str, bridges: list[str]) -> list[int]:
    """Copies of ovs-vswitchd's descriptors of a run's ports: its tagged links' packet
    sockets and its ``bridges``' taps (:func:`portfds.copy_port_descriptors`); [] where
    there is no daemon or the kernel refuses."""
    pid = portfds.vswitchd_pid()
    if pid is None:
        return []
    names = tagged_links().get(f"{registry.LINK_ALIAS_PREFIX}{run_id}", []) + list(bridges)
    return portfds.copy_port_descriptors(pid, names)


def remove_tagged(run_id: str, fds: list[int] | None = None) -> None:
    """Delete a run's bridges and root-namespace links (only ours: found by their tags).

    ``fds``: copies of ovs-vswitchd's descriptors of the run's ports
    (:func:`run_port_descriptors`; taken here when None). This function closes them, and
    empties the list. With copies, the bridges are deleted waiting for ovs-vswitchd (whose
    closes are then free), then the copies are closed from many threads at once: 1.3 s at
    k=8 instead of 11 s. Without, the bridges go without waiting (``--no-wait``) while the
    links are deleted. The links go as one interface group (one by one took 4.5 s at k=8).
    """
    brs = tagged_bridges(strict=True).get(run_id, [])
    if fds is None:
        fds = run_port_descriptors(run_id, brs) if brs else []
    try:
        args: list[str] = [] if fds else ["--no-wait"]
        for b in brs:
            args += ["--", "--if-exists", "del-br", b]
        if brs:
            vsctl(args, check=False)
    finally:
        portfds.close_all(fds)
        fds.clear()
    tag = f"{registry.LINK_ALIAS_PREFIX}{run_id}"
    if tagged_links().get(tag):
        ip_batch([f"link del group {link_group(run_id)}"], force=True)
    # anything left (e.g. moved to another group by hand) goes one by one, still by tag
    ip_batch((f"link del dev {i}" for i in tagged_links().get(tag, [])), force=True)
    # ovs-vswitchd removes each userspace bridge's internal (tap) device in the background,
    # about 0.1 s each: wait for that, so the run leaves nothing behind when stop() returns.
    deadline = time.monotonic() + 120
    while brs and time.monotonic() < deadline:
        brs = [b for b in brs if os.path.exists(f"/sys/class/net/{b}")]
        if brs:
            time.sleep(0.05)
    if brs:
        raise EmulationError(f"ovs-vswitchd did not remove bridges {brs[:5]} within 120 s")
    # the --no-wait deletion is not checked (check=False): a bridge still in the database
    # (ovs-vsctl failed, e.g. timed out on a busy machine) is deleted again, waiting and
    # checked, so the next run does not find "a bridge named c1 already exists"
    left = tagged_bridges(strict=True).get(run_id, [])
    if left:
        vsctl([a for b in left for a in ("--", "--if-exists", "del-br", b)])
        left = tagged_bridges(strict=True).get(run_id, [])
        if left:
            raise EmulationError(f"Open vSwitch still has bridges {left[:5]} of run {run_id}")


def link_group(run_id: str) -> int:
    """The interface group of a run's links (derived from its id; 1000..2^30)."""
    return 1000 + int(run_id[2:], 16) % (1 << 30)


def tagged_links() -> dict[str, list[str]]:
    """Root-namespace links carrying a testbed alias, by alias."""
    out: dict[str, list[str]] = {}
    base = Path("/sys/class/net")
    for d in base.iterdir():
        try:
            alias = (d / "ifalias").read_text().strip()
        except OSError:
            continue
        if alias.startswith(registry.LINK_ALIAS_PREFIX):
            out.setdefault(alias, []).append(d.name)
    return out


def tagged_bridges(*, strict: bool = False) -> dict[str, list[str]]:
    """OVS bridges carrying the testbed's run tag, by run id. ``strict`` (tear-down): wait
    up to 60 s for ovs-vsctl and raise ``EmulationError`` if it fails, instead of answering
    "none" (a busy ovs-vswitchd made the 10 s listing time out and a run leave its bridges)."""
    try:
        text = vsctl(["--format=csv", "--data=bare", "--no-headings", "--columns=name,external_ids",
                      "list", "bridge"], timeout=60 if strict else 10)
    except EmulationError:
        if strict:
            raise
        return {}
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, _, ext = line.partition(",")
        for kv in ext.replace('"', "").split():
            k, _, v = kv.partition("=")
            if k == registry.BRIDGE_TAG:
                out.setdefault(v, []).append(name)
    return out


def _tc_lines(iface: str, link) -> list[str]:
    """tc commands (without the leading 'tc') shaping one interface for ``link``."""
    lines = []
    netem = []
    if link.delay_ms:
        netem.append(f"delay {link.delay_ms}ms")
    if link.loss_pct:
        netem.append(f"loss {link.loss_pct}%")
    if link.bw_mbit:
        lines.append(f"qdisc add dev {iface} root handle 5: htb default 1")
        lines.append(f"class add dev {iface} parent 5: classid 5:1 htb rate {link.bw_mbit}mbit "
                     f"burst 15k")
        if netem:
            lines.append(f"qdisc add dev {iface} parent 5:1 handle 10: netem {' '.join(netem)}")
    elif netem:
        lines.append(f"qdisc add dev {iface} root handle 10: netem {' '.join(netem)}")
    return lines
