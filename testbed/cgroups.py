"""CPU and memory limits of VNF instances: one cgroup per instance, v1 or v2.

A flavour's vCPU becomes a CFS quota (``cpu.cfs_quota_us`` / ``cpu.max``: a VNF at its quota
saturates), its memory the memory limit (``memory.limit_in_bytes`` / ``memory.max``: one
that allocates past it is OOM-killed). CPU use is read from cgroup accounting.

Processes are placed from the root namespace by writing their pid to ``cgroup.procs``
(inside a Mininet host /sys/fs/cgroup is not the host's; DESIGN.md). Every group of a run
lives under ``testbed-<run-id>`` so that a killed run's groups are found and removed by
``testbed clean``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from testbed.errors import EmulationError, KernelFeatureMissing

ROOT = Path(os.environ.get("TESTBED_CGROUP_ROOT", "/sys/fs/cgroup"))
PREFIX = "testbed-"
PERIOD_US = 100_000


def cgroup_version() -> int:
    if (ROOT / "cgroup.controllers").exists():
        return 2
    if (ROOT / "cpu").is_dir() and (ROOT / "memory").is_dir():
        return 1
    raise KernelFeatureMissing(
        f"no usable cgroup hierarchy at {ROOT} (need cgroup v2, or v1 with the cpu, cpuacct "
        f"and memory controllers mounted)")


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise EmulationError(f"cannot write {value!r} to {path}: {exc.strerror}") from None


class Cgroup:
    """One instance's cgroup (in every hierarchy that matters for the version)."""

    def __init__(self, version: int, dirs: dict[str, Path]):
        self.version = version
        self.dirs = dirs   # controller -> directory ("unified" for v2)

    def add(self, pid: int) -> None:
        for d in {p.resolve() for p in self.dirs.values()}:
            _write(d / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        d = next(iter(self.dirs.values()))
        try:
            return [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def cpu_seconds(self) -> float:
        if self.version == 2:
            for line in (self.dirs["unified"] / "cpu.stat").read_text().splitlines():
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
            return 0.0
        return int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9

    def memory_bytes(self) -> int:
        f = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        d = self.dirs["unified" if self.version == 2 else "memory"]
        return int((d / f).read_text())

    def oom_kills(self) -> int:
        if self.version == 2:
            text = (self.dirs["unified"] / "memory.events").read_text()
        else:
            text = (self.dirs["memory"] / "memory.oom_control").read_text()
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the group; its processes must have ended (a cgroup with members stays)."""
        deadline = time.monotonic() + timeout
        for d in sorted({p.resolve() for p in self.dirs.values()}):
            while d.exists():
                try:
                    d.rmdir()
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise EmulationError(f"cannot remove cgroup {d}: {exc.strerror} "
                                             f"(processes left: {self.pids()})") from None
                    time.sleep(0.02)


class CgroupManager:
    """The cgroups of one run, under ``testbed-<run-id>``."""

    def __init__(self, run_id: str):
        self.version = cgroup_version()
        self.base = PREFIX + run_id
        self.groups: dict[str, Cgroup] = {}

    def _controllers(self) -> dict[str, Path]:
        if self.version == 2:
            return {"unified": ROOT}
        return {c: ROOT / c for c in ("cpu", "cpuacct", "memory")}

    def base_dirs(self) -> list[Path]:
        return sorted({(d / self.base) for d in self._controllers().values()})

    def create(self, name: str, *, cpu: float | None, memory_mb: int | None) -> Cgroup:
        if name in self.groups:
            raise EmulationError(f"cgroup {name} exists already")
        dirs = {c: d / self.base / name for c, d in self._controllers().items()}
        if self.version == 2:
            for parent in (ROOT, ROOT / self.base):
                parent.mkdir(exist_ok=True)
                _write(parent / "cgroup.subtree_control", "+cpu +memory")
        for d in {p.resolve() if p.exists() else p for p in dirs.values()}:
            d.mkdir(parents=True, exist_ok=True)
        cg = Cgroup(self.version, dirs)
        self.groups[name] = cg
        self.limit(cg, cpu=cpu, memory_mb=memory_mb)
        return cg

    def limit(self, cg: Cgroup, *, cpu: float | None, memory_mb: int | None) -> None:
        """Set ``cg``'s CPU quota (cores) and memory limit (MiB); None leaves one as is."""
        dirs = cg.dirs
        if cpu is not None:
            quota = max(1000, int(cpu * PERIOD_US))
            if self.version == 2:
                _write(dirs["unified"] / "cpu.max", f"{quota} {PERIOD_US}")
            else:
                _write(dirs["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
                _write(dirs["cpu"] / "cpu.cfs_quota_us", str(quota))
        if memory_mb is not None:
            limit = str(int(memory_mb) * 1024 * 1024)
            if self.version == 2:
                _write(dirs["unified"] / "memory.max", limit)
                if (dirs["unified"] / "memory.swap.max").exists():
                    _write(dirs["unified"] / "memory.swap.max", "0")
            else:
                _write(dirs["memory"] / "memory.limit_in_bytes", limit)
                sw = dirs["memory"] / "memory.memsw.limit_in_bytes"
                if sw.exists():
                    try:
                        sw.write_text(limit)
                    except OSError:
                        pass  # swap accounting off: the memory limit alone applies

    def rename(self, old: str, new: str) -> Cgroup:
        """Group ``old`` (a spare host's) becomes ``new``'s, with its processes. Its
        directories are renamed where the hierarchy allows it (cgroup v1); where it does
        not (v2), they keep the old name, and the group is still found as ``new``."""
        if new in self.groups:
            raise EmulationError(f"cgroup {new} exists already")
        cg = self.groups.pop(old)
        done: list[tuple[Path, Path]] = []
        try:
            for d in sorted({p.resolve() for p in cg.dirs.values()}):
                os.rename(d, d.parent / new)
                done.append((d, d.parent / new))
        except OSError:
            for d, moved in reversed(done):     # all or none: one name for the group
                os.rename(moved, d)
        else:
            cg.dirs = {c: d.parent / new for c, d in cg.dirs.items()}
        self.groups[new] = cg
        return cg

    def get(self, name: str) -> Cgroup:
        return self.groups[name]

    def remove(self, name: str) -> None:
        cg = self.groups.pop(name, None)
        if cg is not None:
            cg.remove()

    def remove_all(self) -> None:
        for name in list(self.groups):
            self.remove(name)
        remove_base(self.base)


def remove_base(base: str) -> list[str]:
    """Remove ``base`` (testbed-<run-id>) and its empty children in every hierarchy."""
    removed = []
    tops = [ROOT] if (ROOT / "cgroup.controllers").exists() else [
        ROOT / c for c in ("cpu", "cpuacct", "memory")]
    for top in {t.resolve() for t in tops if t.is_dir()}:
        b = top / base
        if not b.is_dir():
            continue
        for child in sorted((c for c in b.iterdir() if c.is_dir()), reverse=True):
            try:
                child.rmdir()
                removed.append(str(child))
            except OSError:
                pass
        try:
            b.rmdir()
            removed.append(str(b))
        except OSError:
            pass
    return removed


def run_bases() -> list[str]:
    """Names of every ``testbed-*`` cgroup base on the machine."""
    tops = [ROOT] if (ROOT / "cgroup.controllers").exists() else [
        ROOT / c for c in ("cpu", "cpuacct", "memory")]
    out = set()
    for top in tops:
        if top.is_dir():
            out |= {d.name for d in top.iterdir() if d.is_dir() and d.name.startswith(PREFIX)}
    return sorted(out)
