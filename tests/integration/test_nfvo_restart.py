"""The NFVO as its own process under `testbed up`: killed mid-operation, it comes back and
reconciles with the infrastructure (no orphan instance, no lost record)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VNFD = ROOT / "descriptors" / "vnfd"
NSD = ROOT / "descriptors" / "nsd"


def _cli(state, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "testbed.cli", *args, "--state", str(state)],
                          check=False, capture_output=True, text=True, timeout=timeout)


def test_nfvo_killed_during_instantiate_is_reconciled(tmp_path):
    """`testbed up` runs the emulation and the NFVO process; the NFVO is SIGKILLed while an
    instantiation is PROCESSING; the restarted NFVO marks it FAILED_TEMP, a rollback leaves
    no instance behind, and a new instantiation succeeds. `testbed down` removes it all."""
    state = tmp_path / "state"
    up = subprocess.Popen([sys.executable, "-m", "testbed.cli", "up", "--state", str(state)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = up.stdout.readline()
        assert "testbed up" in line, up.stderr.read() if up.poll() is not None else line
        r = _cli(state, "ns", "onboard", str(NSD / "chain3.yaml"),
                 *[a for p in sorted(VNFD.glob("*.yaml")) for a in ("--vnfd", str(p))])
        assert r.returncode == 0, r.stderr
        inst = subprocess.Popen([sys.executable, "-m", "testbed.cli", "ns", "instantiate",
                                 "chain3", "web", "--state", str(state)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        nfvo_pid = json.loads((state / "nfvo.json").read_text())["pid"]
        infra = json.loads((state / "infra.json").read_text())
        from mano.remote import RemoteDriver
        drv = RemoteDriver(infra["url"])
        deadline = time.monotonic() + 30
        while not drv.list_instances() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert drv.list_instances(), "instantiation created no instance"
        os.kill(nfvo_pid, signal.SIGKILL)
        inst.wait(60)
        assert inst.returncode != 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = json.loads((state / "nfvo.json").read_text()) if (
                state / "nfvo.json").exists() else {}
            if info.get("pid") not in (None, nfvo_pid):
                break
            time.sleep(0.1)
        r = _cli(state, "op", "list")
        assert r.returncode == 0, r.stderr
        ns_ops = [ln for ln in r.stdout.splitlines() if " web " in f" {ln} " and
                  "INSTANTIATE" in ln]
        assert ns_ops and "FAILED_TEMP" in ns_ops[0], r.stdout
        op_id = ns_ops[0].split()[0]
        r = _cli(state, "op", "rollback", op_id)
        assert r.returncode == 0, r.stderr
        assert drv.list_instances() == [] and drv.list_graphs() == []
        r = _cli(state, "ns", "instantiate", "chain3", "web")
        assert r.returncode == 0 and "COMPLETED" in r.stdout, r.stdout + r.stderr
        r = _cli(state, "vnf", "list")
        assert r.stdout.count("INSTANTIATED") == 3
        r = _cli(state, "ns", "terminate", "web")
        assert r.returncode == 0, r.stderr
        drv.close()
    finally:
        r = _cli(state, "down", timeout=180)
        up.wait(60)
    assert r.returncode == 0 and up.returncode == 0, up.stderr.read()
