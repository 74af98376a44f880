"""Calibration files: written by testbed calibrate's writer, read back and checked, with
clear errors naming the file and field; the driver wrapper that times the calls."""
from __future__ import annotations

import json

import pytest

from testbed import cli, fidelity
from testbed.calibrate import TimedDriver
from testbed.errors import TestbedError
from testbed.nfvi.simulated.calibration import (
    DEFAULT_PATH,
    FIELDS,
    load_calibration,
    write_calibration,
)


def _values() -> dict:
    doc = json.loads(DEFAULT_PATH.read_text())
    return {k: (v["value"], v["source"]) for k, v in doc["values"].items()}


def test_write_then_read_round_trip(tmp_path):
    """What write_calibration writes reads back with the same numbers, and the file keeps
    the command, date, machine and repetitions."""
    vals = _values()
    vals["reroute_s"] = (0.0333, "measured")
    path = tmp_path / "cal.json"
    cal = write_calibration(path, vals, about="a", command="testbed calibrate --quick",
                            date="2026-11-29T00:00:00Z", machine={"cpus": 2}, repetitions=3)
    assert cal.reroute_s == 0.0333
    assert cal.program_base_cost_us == load_calibration(DEFAULT_PATH).program_base_cost_us
    doc = json.loads(path.read_text())
    assert (doc["command"], doc["repetitions"], doc["machine"]) == \
        ("testbed calibrate --quick", 3, {"cpus": 2})
    assert doc["values"]["reroute_s"] == {"value": 0.0333, "source": "measured"}


def test_write_refuses_a_bad_value_and_leaves_no_file(tmp_path):
    """A negative time is refused naming the field; neither the file nor a temporary is
    left behind."""
    vals = _values()
    vals["graph_program_s"] = (-0.1, "broken")
    path = tmp_path / "cal.json"
    with pytest.raises(TestbedError, match=r"cal\.json: values\.graph_program_s\.value is -0\.1"):
        write_calibration(path, vals, about="a", command="c", date="d")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["values"]["program_base_cost_us"]["value"].pop("nat"),
     r"program_base_cost_us\.value: no cost for nat"),
    (lambda d: d["values"]["program_base_cost_us"].update(value=3),
     r"program_base_cost_us\.value: expected an object"),
    (lambda d: d["values"]["program_base_cost_us"]["value"].update(lb=True),
     r"values\.program_base_cost_us\.lb\.value is True"),
    (lambda d: d["values"]["vnf_queue_packets"].update(value=0),
     r"values\.vnf_queue_packets\.value is 0; expected a number in \[1, 1e\+07\]"),
    (lambda d: d["values"]["reroute_s"].pop("value"), r"values\.reroute_s: missing"),
    (lambda d: d.pop("values"), r"expected an object with a 'values' object"),
])
def test_read_errors_name_the_field(tmp_path, edit, message):
    """Each kind of bad calibration file is refused with the file and the field path."""
    doc = json.loads(DEFAULT_PATH.read_text())
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TestbedError, match=r"bad\.json.*" + message):
        load_calibration(path)


def test_not_json_is_named(tmp_path):
    """A file that is not JSON is refused as such, with its path."""
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(TestbedError, match=r"x\.json: not valid JSON"):
        load_calibration(path)


def test_shipped_file_was_made_by_testbed_calibrate():
    """The shipped default names the calibrate command, its date, machine and repetitions,
    and every value the simulated NFVI needs has a source."""
    doc = json.loads(DEFAULT_PATH.read_text())
    assert doc["command"].startswith("testbed calibrate")
    assert doc["date"] and doc["machine"]["cpus"] and doc["repetitions"] >= 1
    assert set(FIELDS) <= set(doc["values"])
    assert all(v["source"] for v in doc["values"].values())


class _Driver:
    def __init__(self):
        self.calls = []

    def put_graph(self, graph):
        self.calls.append(("put_graph", graph))
        return {"ok": graph}

    def delete_instance(self, iid):
        raise TestbedError(f"no instance {iid}")

    def endpoints(self):
        return {"h1": "10.0.0.1"}


def test_timed_driver_times_the_calls_and_passes_everything_on():
    """Timed calls return the driver's result (or raise its error) and add one duration
    each; other calls pass through untimed."""
    d = TimedDriver(_Driver())
    assert d.put_graph("g") == {"ok": "g"}
    with pytest.raises(TestbedError, match="no instance v"):
        d.delete_instance("v")
    assert d.endpoints() == {"h1": "10.0.0.1"}
    assert len(d.times["put_graph"]) == 1 and len(d.times["delete_instance"]) == 1
    assert "endpoints" not in d.times and d.times["put_graph"][0] >= 0


def test_calibrate_refuses_without_root(monkeypatch, capsys, tmp_path):
    """Without root, `testbed calibrate` says the emulated NFVI needs root and writes
    nothing (exit 2)."""
    monkeypatch.setattr(fidelity.os, "geteuid", lambda: 1000)
    out = tmp_path / "cal.json"
    assert cli.main(["calibrate", "--quick", "--out", str(out)]) == 2
    assert "testbed calibrate measures the emulated NFVI, which needs root" in \
        capsys.readouterr().err
    assert not out.exists()
