"""Health of the machine that runs an emulation: per-CPU idle and the busiest processes.

An emulation is only as faithful as its host: a saturated core (often the one running
ovs-vswitchd or the load generator) delays and drops packets that the network under test
would not. :class:`HostHealth` samples, with psutil, the idle share of every CPU and the
CPU use of the processes it was told to watch (by process id) plus the machine's top three;
:func:`testbed.measures.saturation` turns the idle samples into the overload verdict.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

OVS_VSWITCHD_PIDFILE = Path("/var/run/openvswitch/ovs-vswitchd.pid")
TOP_N = 3  # the machine's busiest processes reported besides the watched ones


def ovs_vswitchd_pid(pidfile: Path | str = OVS_VSWITCHD_PIDFILE) -> int | None:
    """The process id in OVS's ovs-vswitchd pidfile, or None if there is no such file.

    Raises ValueError naming the file if it does not hold a process id.
    """
    try:
        text = Path(pidfile).read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{pidfile}: expected a process id, got {text[:40]!r}") from None


class HostHealth:
    """Samples per-CPU idle and process CPU use, each over the time since the previous sample.

    ``watch``: name -> pid of processes to report in every sample (ovs-vswitchd, the
    controller, load generators...). Construction takes the first reading, so the first
    :meth:`sample` covers the time since then.
    """

    def __init__(self, watch: dict[str, int] | None = None) -> None:
        self._watched: dict[str, psutil.Process] = {}
        for name, pid in (watch or {}).items():
            self.watch(name, pid)
        psutil.cpu_times_percent(interval=None, percpu=True)
        self._top_sweep()

    def watch(self, name: str, pid: int) -> None:
        """Report process ``pid`` as ``name`` from the next sample on (skipped once gone)."""
        try:
            proc = psutil.Process(pid)
            proc.cpu_percent(None)  # starts its measuring period
        except psutil.Error:
            return  # already gone: nothing to report
        self._watched[name] = proc

    def _top_sweep(self) -> list[dict]:
        """Every process's CPU % since the previous sweep (process_iter keeps the objects)."""
        out = []
        for proc in psutil.process_iter(["name"]):
            try:
                out.append({"name": proc.info["name"], "pid": proc.pid,
                            "cpu_pct": proc.cpu_percent(None)})
            except psutil.Error:
                continue
        return out

    def sample(self) -> dict:
        """One sample: {"t", "idle_pct_per_cpu": [...], "busiest": [...]}.

        t: time.monotonic() s. idle_pct_per_cpu: % of each CPU's time idle since the
        previous sample. busiest: the watched processes still alive plus the machine's top
        three other processes, each {"name", "pid", "cpu_pct" (% of one core since the
        previous sample, psutil's ``cpu_percent(None)``), "watched"}, by cpu_pct descending.
        """
        idle = [c.idle for c in psutil.cpu_times_percent(interval=None, percpu=True)]
        busiest = []
        for name, proc in list(self._watched.items()):
            try:
                busiest.append({"name": name, "pid": proc.pid,
                                "cpu_pct": proc.cpu_percent(None), "watched": True})
            except psutil.Error:
                del self._watched[name]  # went away
        watched_pids = {p.pid for p in self._watched.values()}
        others = [p for p in self._top_sweep() if p["pid"] not in watched_pids]
        others.sort(key=lambda p: p["cpu_pct"], reverse=True)
        busiest += [{**p, "watched": False} for p in others[:TOP_N]]
        busiest.sort(key=lambda p: p["cpu_pct"], reverse=True)
        return {"t": time.monotonic(), "idle_pct_per_cpu": idle, "busiest": busiest}
