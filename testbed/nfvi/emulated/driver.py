"""The emulated NFVI driver: ``mano.nfvi.NfviDriver`` on a live ``Emulation``.

A VNF instance is a Mininet host added to its compute node's switch, limited by a cgroup
from its flavour, running one of the testbed's VNF programs (``testbed.programs.forwarder``
with ``--program``). Forwarding graphs go to the controller's northbound API. A watcher
thread reports instances whose program ended as ``InfraEvent("instance_down")``.

Errors cross the seam as ``mano.errors`` classes: every public method translates the
testbed's own exceptions (``TestbedError``, ``ControllerError``, OS errors of the
emulation) into ``InfrastructureError``, and an unknown instance into ``NotFoundError``, so
that the NFVO's own fallbacks (which catch ``MANOError``) run.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import testbed
from mano.nfvi import Flavour, Image, InfraEvent, InstanceInfo, InstanceMetrics
from testbed.errors import ControllerError, TestbedError
from testbed.nfvi.driverbase import NoInstance, TopologyInventory, translated

log = logging.getLogger(__name__)
PROGRAMS = ("forwarder", "firewall", "nat", "lb")
# The VNF programs use the standard library only (see testbed.programs), so their python
# starts with -S: no site-packages, no .pth files (an editable install's finder, the
# machine's own), which took a third of a VNF's start-up here (bench/instantiate.py);
# PYTHONPATH names the folder that holds the testbed package instead.
_PACKAGE_DIR = str(Path(testbed.__file__).resolve().parent.parent)
_PROGRAM = [sys.executable, "-S", "-m", "testbed.programs.forwarder"]


@dataclass
class _Instance:
    info: InstanceInfo
    image: Image
    flavour: Flavour
    proc: object
    stats_path: object
    reported_down: bool = False
    hung: bool = False
    # hang watch: the counter last seen and since when input has waited without it moving
    seen_packets: int = -1
    stuck_since: float | None = None


def _queued_input(pid: int) -> int:
    """Bytes waiting in the receive queues of the packet sockets of ``pid``'s network
    namespace (``Rmem`` of ``/proc/PID/net/packet``); 0 when it cannot be read."""
    try:
        lines = Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]
    except OSError:
        return 0
    total = 0
    for line in lines:
        cols = line.split()
        if len(cols) >= 7 and cols[6].isdigit():
            total += int(cols[6])
    return total


class EmulatedDriver(TopologyInventory):
    """The NFVI of an emulated data center (implements ``mano.nfvi.NfviDriver``).

    ``create_concurrency``: how many ``create_instance`` calls the NFVO may make at once
    (``mano.nfvi``): a host's shell, links, OVS port and VNF program are made outside the
    driver's lock, so the creates of a network service's instances overlap.

    ``spares``: how many spare hosts the emulation keeps started ahead, each with a VNF
    program that has imported its code and waits for its arguments
    (``Emulation.keep_spares``, ``forwarder --await-args``): an instance made from one
    skips the shell's and the interpreter's start-up (0: none). ``close`` ends them."""

    def __init__(self, emu, *, watch_interval: float = 0.1, hang_s: float = 0.4,
                 create_concurrency: int = 3, spares: int = 3):
        self.emu = emu
        self.spares = spares
        self.topology = emu.topology
        self.create_concurrency = create_concurrency
        self._lock = threading.RLock()
        self._instances: dict[str, _Instance] = {}
        self._creating: set[str] = set()      # ids whose create_instance runs now
        self._created = threading.Condition(self._lock)   # notified when one ends
        self._subscribers: list[Callable[[InfraEvent], None]] = []
        self._init_inventory()
        self._watch_interval = watch_interval
        self._hang_s = hang_s
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        # instance id -> pidfd of its program; the watcher selects on them and on a pipe
        # that wakes it when one is added or the driver closes
        self._pidfds: dict[str, int] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        if spares:
            emu.keep_spares(spares, prestart=self._prestart_program, what="vnf")

    # ---- instances ------------------------------------------------------------------------
    @translated
    def create_instance(self, instance_id: str, compute_node: str, flavour: Flavour,
                        image: Image) -> InstanceInfo:
        if image.program not in PROGRAMS:
            raise TestbedError(f"instance {instance_id}: unknown VNF program "
                               f"{image.program!r}; known: {', '.join(PROGRAMS)}")
        try:
            node = self.topology.computes[compute_node]
        except KeyError:
            raise TestbedError(f"instance {instance_id}: unknown compute node {compute_node!r}")
        with self._lock:
            if instance_id in self._instances or instance_id in self._creating:
                raise TestbedError(f"instance {instance_id} exists already")
            self._creating.add(instance_id)
        try:
            # outside the lock: other creates, and the watcher, go on meanwhile. The VNF
            # program starts as soon as its interface exists (its interpreter's start-up
            # overlaps the switch port, addresses and the controller's attachment)
            started: list = []
            self.emu.add_host(instance_id, node.switch, cpu=flavour.vcpu,
                              memory_mb=flavour.memory_mb,
                              on_link=lambda _h: started.append(
                                  self._spawn_program(instance_id, image,
                                                      self.emu.claim_prestarted(instance_id))))
            try:
                if not started:     # an emulation that does not call on_link: start now
                    started.append(self._spawn_program(instance_id, image))
                proc, stats = started[0]
                self._wait_started(instance_id, image, proc, stats)
            except BaseException:
                self.emu.remove_host(instance_id)
                raise
            att = self.emu.attachments[instance_id]
            info = InstanceInfo(instance_id, compute_node, node.switch, att.ip, att.mac)
            with self._lock:
                self._instances[instance_id] = _Instance(info, image, flavour, proc, stats)
                self._track(instance_id, proc)
            return info
        finally:
            with self._lock:
                self._creating.discard(instance_id)
                self._created.notify_all()

    def _settle(self, instance_id: str | None = None) -> None:
        """Wait (caller holds the lock) until the create of ``instance_id`` (None: every
        create running) has ended, so that what is deleted, restarted or failed is what
        exists, as when creates held the lock throughout (at most 60 s)."""
        self._created.wait_for(lambda: not self._creating if instance_id is None
                               else instance_id not in self._creating, timeout=60)

    def _start_program(self, instance_id: str, image: Image):
        proc, stats = self._spawn_program(instance_id, image)
        self._wait_started(instance_id, image, proc, stats)
        return proc, stats

    def _spawn_program(self, instance_id: str, image: Image, prestarted=None):
        """Start the VNF program in the instance's host; (process, its stats file).
        ``prestarted``: the program a spare host started (``--await-args``), given its
        arguments instead of starting another (if it is gone by then, another starts)."""
        stats = self.emu.run_dir / f"vnf-{instance_id}.json"
        stats.unlink(missing_ok=True)
        params = dict(image.params)
        args = ["--iface", self.emu.host_iface(instance_id), "--stats", str(stats),
                "--name", instance_id, "--cost-us", str(params.pop("cost_us", 0) or 0)]
        if image.program != "forwarder" or params:
            args += ["--program", image.program, "--params", json.dumps(params)]
        if prestarted is not None:
            try:
                prestarted.stdin.write(json.dumps(args).encode() + b"\n")
                prestarted.stdin.close()
                return prestarted, stats
            except OSError:      # it ended meanwhile (its host stops what is left of it)
                log.warning("instance %s: pre-started VNF program gone; starting another",
                            instance_id)
        proc = self.emu.popen(instance_id, _PROGRAM + args, what="vnf",
                              env={**os.environ, "PYTHONPATH": _PACKAGE_DIR})
        return proc, stats

    @staticmethod
    def _prestart_program(host) -> subprocess.Popen:
        """A VNF program in a spare host that waits for its arguments on stdin."""
        return host.popen(_PROGRAM + ["--await-args"], stdin=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env={**os.environ, "PYTHONPATH": _PACKAGE_DIR})

    @staticmethod
    def _wait_started(instance_id: str, image: Image, proc, stats) -> None:
        """Wait until the program has opened its interface (it writes its stats file
        then); ``TestbedError`` if it exits first or takes more than 10 s."""
        deadline = time.monotonic() + 10
        while not stats.exists():
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise TestbedError(f"instance {instance_id}: VNF program {image.program} "
                                   f"exited at start ({proc.returncode}): {err}")
            if time.monotonic() > deadline:
                raise TestbedError(f"instance {instance_id}: VNF program did not start in 10 s")
            time.sleep(0.005)

    @translated
    def delete_instance(self, instance_id: str) -> None:
        with self._lock:
            self._settle(instance_id)
            inst = self._instances.pop(instance_id, None)
            self._untrack(instance_id)
            if instance_id in self.emu.hosts:
                try:
                    self.emu.remove_host(instance_id)
                except Exception:
                    if inst is not None and instance_id in self.emu.hosts:
                        # refused before anything went (a graph uses it): it stays whole
                        self._instances[instance_id] = inst
                        self._track(instance_id, inst.proc)
                    raise
            if inst is not None:
                inst.stats_path.unlink(missing_ok=True)

    @translated
    def restart_instance(self, instance_id: str) -> InstanceInfo:
        with self._lock:
            self._settle(instance_id)
            inst = self._get(instance_id)
            self.emu.stop_process(inst.proc)
            inst.proc, inst.stats_path = self._start_program(instance_id, inst.image)
            inst.reported_down = inst.hung = False
            inst.seen_packets, inst.stuck_since = -1, None
            self._track(instance_id, inst.proc)
            return inst.info

    @translated
    def kill_instance(self, instance_id: str) -> None:
        """Fault injection: the VNF program dies (SIGKILL), the host stays."""
        with self._lock:
            self._get(instance_id).proc.kill()

    @translated
    def hang_instance(self, instance_id: str, hung: bool = True) -> None:
        """Fault injection: the VNF program stops (SIGSTOP: alive, not forwarding) or goes
        on (SIGCONT)."""
        with self._lock:
            proc = self._get(instance_id).proc
            if proc.poll() is None:
                proc.send_signal(signal.SIGSTOP if hung else signal.SIGCONT)

    @translated
    def fail_compute_node(self, node: str) -> list[str]:
        """Fault injection: a compute node fails; every instance on it dies. The node stays
        unusable for placement until ``recover_compute_node``."""
        if node not in self.topology.computes:
            raise TestbedError(f"unknown compute node {node!r}")
        with self._lock:
            self._settle()
            self._down_nodes.add(node)
            victims = [i for i in self._instances.values() if i.info.compute_node == node]
            for i in victims:
                if i.proc.poll() is None:
                    i.proc.kill()
        self._emit(InfraEvent("compute_down", node, time.monotonic(),
                              {"instances": [i.info.instance_id for i in victims]}))
        return [i.info.instance_id for i in victims]

    @translated
    def recover_compute_node(self, node: str) -> None:
        with self._lock:
            self._down_nodes.discard(node)
        self._emit(InfraEvent("compute_up", node, time.monotonic(), {}))

    def _get(self, instance_id: str) -> _Instance:
        try:
            return self._instances[instance_id]
        except KeyError:
            raise NoInstance(f"no instance {instance_id!r}") from None

    @translated
    def list_instances(self) -> list[InstanceInfo]:
        # an instance whose create runs is not listed yet (waiting for it here would
        # serialise the overlapping creates: the VNFM lists before each placement)
        with self._lock:
            return [InstanceInfo(**{**vars(i.info),
                                    "alive": i.proc.poll() is None and not i.hung})
                    for i in self._instances.values()]

    @translated
    def find_instance(self, instance_id: str) -> InstanceInfo | None:
        # as list_instances: an instance whose create runs is not found yet
        with self._lock:
            i = self._instances.get(instance_id)
            if i is None:
                return None
            return InstanceInfo(**{**vars(i.info),
                                   "alive": i.proc.poll() is None and not i.hung})

    @translated
    def instance_metrics(self, instance_id: str) -> InstanceMetrics:
        with self._lock:
            inst = self._get(instance_id)
            alive = inst.proc.poll() is None and not inst.hung
            try:
                st = json.loads(inst.stats_path.read_text())
            except (OSError, ValueError):
                st = {}
            cg = self.emu.cgroups.groups.get(instance_id) if self.emu.cgroups else None
            cpu = cg.cpu_seconds() if cg is not None else 0.0
            return InstanceMetrics(instance_id, time.monotonic(), cpu,
                                   int(st.get("packets", 0)), int(st.get("bytes", 0)), alive)

    # ---- forwarding graphs -------------------------------------------------------------------
    @translated
    def put_graph(self, graph: dict) -> dict:
        return self.emu.ctl.put_graph(graph)

    @translated
    def delete_graph(self, name: str) -> None:
        try:
            self.emu.ctl.delete_graph(name)
        except ControllerError as exc:
            if "no forwarding graph" not in str(exc):
                raise

    @translated
    def list_graphs(self) -> list[str]:
        return sorted(self.emu.ctl.graphs())

    @translated
    def graph_stats(self, name: str) -> dict:
        return self.emu.ctl.graph_stats(name)

    @translated
    def probe(self, src: str, dst: str, *, port: int, rate: int = 1000,
              duration: float = 1.0, src_port: int | None = None) -> dict:
        """A sequence-numbered UDP probe from endpoint ``src`` to ``dst``:``port``: loss,
        latency and the largest gap, measured with real packets."""
        from testbed import chain
        for name in (src, dst):
            if name not in self.emu.hosts:
                raise TestbedError(f"no endpoint {name!r}")
        res = chain.Probe(self.emu, src, dst, port=port, rate=rate, duration=duration,
                          tag=f"probe-{src}-{dst}-{port}", src_port=src_port).start().wait()
        sent = res.get("sent") or 0
        return {"sent": sent, "received": res.get("received", 0),
                "loss_pct": 100.0 * (1 - res.get("received", 0) / sent) if sent else 100.0,
                "latency_ms": (res.get("latency_ms") or {}).get("median"),
                "max_gap_ms": res.get("max_gap_ms"), "time": time.monotonic()}

    # ---- events ---------------------------------------------------------------------------------
    def unsubscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    def subscribe(self, callback: Callable[[InfraEvent], None]) -> None:
        self._subscribers.append(callback)
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="nfvi-watch",
                                             daemon=True)
            self._watcher.start()

    def _emit(self, ev: InfraEvent) -> None:
        for cb in list(self._subscribers):
            try:
                cb(ev)
            except Exception:  # a subscriber's bug must not stop the watcher
                log.exception("NFVI event subscriber failed on %s", ev)

    def _track(self, instance_id: str, proc) -> None:
        """Watch ``proc``'s exit through a pidfd (caller holds the lock)."""
        self._untrack(instance_id)
        try:
            fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            return          # no pidfd here (old kernel, or it is gone): the rescan finds it
        self._pidfds[instance_id] = fd
        self._selector.register(fd, selectors.EVENT_READ, instance_id)
        self._wake()

    def _untrack(self, instance_id: str) -> None:
        fd = self._pidfds.pop(instance_id, None)
        if fd is not None:
            self._selector.unregister(fd)
            os.close(fd)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass            # a wake-up is pending already (or the driver is closed)

    def _watch(self) -> None:
        while not self._stop.is_set():
            ready = self._selector.select(self._watch_interval)
            with self._lock:
                for key, _ in ready:
                    if key.data is None:
                        os.read(self._wake_r, 4096)
                    elif self._pidfds.get(key.data) == key.fd:
                        # readable once its process has ended (a restart may have put a new
                        # process's pidfd on the same number meanwhile: look, then forget)
                        inst = self._instances.get(key.data)
                        if inst is None or inst.proc.poll() is not None:
                            self._untrack(key.data)
                dead = [i for i in self._instances.values()
                        if not i.reported_down and i.proc.poll() is not None]
                for i in dead:
                    i.reported_down = True
                now = time.monotonic()
                hung = [i for i in self._instances.values()
                        if not i.reported_down and self._hang_check(i, now)]
            for i in dead:
                self._emit(InfraEvent("instance_down", i.info.instance_id, time.monotonic(),
                                      {"exit_code": i.proc.returncode,
                                       "compute_node": i.info.compute_node}))
            for i in hung:
                self._emit(InfraEvent("instance_down", i.info.instance_id, time.monotonic(),
                                      {"hung": True, "compute_node": i.info.compute_node}))

    def _hang_check(self, inst: _Instance, now: float) -> bool:
        """Update ``inst``'s hang watch; True when it has just become hung (see the module
        docstring). Caller holds the lock."""
        try:
            st = json.loads(inst.stats_path.read_text())
            # every frame the program took in counts (a firewall dropping all still works)
            packets = sum(int(st.get(k, 0)) for k in ("packets", "dropped", "ignored",
                                                      "send_errors"))
        except (OSError, ValueError, TypeError):
            return False
        moved = packets != inst.seen_packets
        inst.seen_packets = packets
        if moved:
            inst.stuck_since = None
            inst.hung = False
            return False
        if inst.hung:
            return False
        if _queued_input(inst.proc.pid) <= 0:
            inst.stuck_since = None
            return False
        if inst.stuck_since is None:
            inst.stuck_since = now
            return False
        if now - inst.stuck_since >= self._hang_s:
            inst.hung = True
            return True
        return False

    def close(self) -> None:
        if self.spares:
            self.emu.keep_spares(0)
        self._stop.set()
        self._wake()
        if self._watcher is not None:
            self._watcher.join(2)
        with self._lock:
            for iid in list(self._pidfds):
                self._untrack(iid)
            if self._wake_r >= 0 and (self._watcher is None or not self._watcher.is_alive()):
                self._selector.close()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1
