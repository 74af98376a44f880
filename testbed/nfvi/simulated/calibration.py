"""The simulated NFVI's calibration: timings and costs measured on the emulated NFVI.

A calibration file is JSON ``{"about", "date", "command", "values": {NAME: {"value",
"source"}}}`` (``testbed calibrate`` adds ``machine`` and ``repetitions``); every name of
``FIELDS`` must be present, with a number in its range (``program_base_cost_us`` maps each
VNF program to a number). The default file, ``calibration.json`` beside this module, says
where each number comes from. ``write_calibration`` writes one and checks it by reading it
back.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError

DEFAULT_PATH = Path(__file__).with_name("calibration.json")
PROGRAMS = ("forwarder", "firewall", "nat", "lb")

# name -> (lower bound, upper bound): every value a calibration file must give
FIELDS = {
    "instance_create_s": (0.0, 600.0),
    "graph_program_s": (0.0, 60.0),
    "instance_delete_s": (0.0, 600.0),
    "instance_delete_dead_s": (0.0, 600.0),
    "instance_restart_s": (0.0, 600.0),
    "graph_delete_s": (0.0, 60.0),
    "port_status_s": (0.0, 10.0),
    "reroute_s": (0.0, 10.0),
    "ff_switchover_s": (0.0, 10.0),
    "instance_down_detect_s": (0.0, 60.0),
    "controller_restart_s": (0.0, 600.0),
    "switch_latency_us": (0.0, 1e6),
    "vnf_queue_packets": (1.0, 1e7),
    "packet_bytes": (64.0, 9000.0),
}


@dataclass(frozen=True)
class Calibration:
    """Seconds for operations and reactions, microseconds per packet or per switch,
    packets for queue sizes, bytes for the packet size (see ``calibration.json``)."""

    instance_create_s: float
    graph_program_s: float
    instance_delete_s: float
    instance_delete_dead_s: float
    instance_restart_s: float
    graph_delete_s: float
    port_status_s: float
    reroute_s: float
    ff_switchover_s: float
    instance_down_detect_s: float
    controller_restart_s: float
    switch_latency_us: float
    vnf_queue_packets: float
    packet_bytes: float
    program_base_cost_us: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def base_cost_us(self, program: str) -> float:
        """The per-packet CPU microseconds a VNF program spends before its ``cost_us``."""
        try:
            return self.program_base_cost_us[program]
        except KeyError:
            raise TestbedError(f"calibration {self.source}: no program_base_cost_us for VNF "
                               f"program {program!r}; it has "
                               f"{', '.join(sorted(self.program_base_cost_us))}") from None


def _number(path: str, name: str, raw, lo: float, hi: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) \
            or not lo <= raw <= hi:
        raise TestbedError(f"{path}: values.{name}.value is {raw!r}; expected a number in "
                           f"[{lo:g}, {hi:g}]")
    return float(raw)


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Read and check a calibration file (the default one if ``path`` is None). Raises
    ``TestbedError`` naming the file and the field for a missing file, bad JSON, a
    missing or unknown value, or a number out of range."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise TestbedError(f"calibration file {path}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise TestbedError(f"calibration file {path}: not valid JSON ({exc})") from None
    values = doc.get("values") if isinstance(doc, dict) else None
    if not isinstance(values, dict):
        raise TestbedError(f"{path}: expected an object with a 'values' object")
    known = set(FIELDS) | {"program_base_cost_us"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TestbedError(f"{path}: values.{unknown[0]}: unknown; known: "
                           f"{', '.join(sorted(known))}")
    out = {}
    for name, (lo, hi) in FIELDS.items():
        entry = values.get(name)
        if not isinstance(entry, dict) or "value" not in entry:
            raise TestbedError(f"{path}: values.{name}: missing (an object with 'value' and "
                               f"'source')")
        out[name] = _number(str(path), name, entry["value"], lo, hi)
    costs = (values.get("program_base_cost_us") or {}).get("value")
    if not isinstance(costs, dict):
        raise TestbedError(f"{path}: values.program_base_cost_us.value: expected an object "
                           f"mapping each VNF program ({', '.join(PROGRAMS)}) to microseconds")
    missing = [p for p in PROGRAMS if p not in costs]
    if missing:
        raise TestbedError(f"{path}: values.program_base_cost_us.value: no cost for "
                           f"{', '.join(missing)}")
    base = {p: _number(str(path), f"program_base_cost_us.{p}", v, 0.0, 1e6)
            for p, v in costs.items()}
    return Calibration(**out, program_base_cost_us=base, source=str(path))


def write_calibration(path: str | Path, values: dict[str, tuple[object, str]], *,
                      about: str, command: str, date: str, machine: dict | None = None,
                      repetitions: int | None = None) -> Calibration:
    """Write a calibration file: ``values`` maps every name of ``FIELDS`` and
    ``program_base_cost_us`` to (value, source). The file is checked by reading it back
    (``load_calibration``); a bad value raises ``TestbedError`` naming the field and the
    file is not left behind. Returns the calibration read back."""
    path = Path(path)
    doc = {"about": about, "date": date, "command": command}
    if machine is not None:
        doc["machine"] = machine
    if repetitions is not None:
        doc["repetitions"] = repetitions
    doc["values"] = {name: {"value": v, "source": src} for name, (v, src) in values.items()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    try:
        load_calibration(tmp)
    except TestbedError as exc:
        tmp.unlink(missing_ok=True)
        raise TestbedError(str(exc).replace(str(tmp), str(path))) from None
    tmp.replace(path)
    return load_calibration(path)
