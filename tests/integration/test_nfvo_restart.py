"""The NFVO as its own process under `testbed up`: killed mid-operation, it comes back and
reconciles with the infrastructure (no orphan instance, no lost record); killed at chosen
points of SCALE and TERMINATE, the operations are rolled back or retried through the CLI;
an NFVI that is gone (`testbed down`, `up` again) is healed back (issue 9, cases 1 and 8).
The unit campaign over every crash point is tests/unit/test_nfvo_crash.py."""
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


VNFD_ARGS = [a for p in sorted(VNFD.glob("*.yaml")) for a in ("--vnfd", str(p))]


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
                 *VNFD_ARGS)
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


class _Testbed:
    """`testbed up` on a state directory, stopped by `testbed down`."""

    def __init__(self, state: Path):
        self.state = state
        self.up = subprocess.Popen([sys.executable, "-m", "testbed.cli", "up", "--state",
                                    str(state)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        line = self.up.stdout.readline()
        assert "testbed up" in line, self.up.stderr.read() if self.up.poll() is not None \
            else line
        from mano.remote import RemoteDriver
        self.drv = RemoteDriver(json.loads((state / "infra.json").read_text())["url"])

    def cli(self, *args, ok=True):
        r = _cli(self.state, *args)
        if ok:
            assert r.returncode == 0, r.stdout + r.stderr
        return r

    def ns(self, ns="web") -> dict:
        """The NFVO's own record of NS ``ns`` (named through the CLI, which shows the
        SOL005 view), with its VNF records and operation occurrences, read from its
        database read-only: states as the NFVO keeps them (TERMINATED, DEGRADED, LOST)."""
        from mano.store import Store
        ns_id = json.loads(self.cli("ns", "show", ns).stdout)["id"]
        with Store(self.state / "nfvo.db", readonly=True) as st:
            row = st.get_ns_instance(ns_id)
            row["vnfs"] = st.list_vnf_instances(ns_id=ns_id)
            row["operations"] = st.list_op_occs(subject_id=ns_id)
        return row

    def graph(self, ns="web") -> str:
        """The controller's name of the NS's graph fg1 (NS ids are the NBI's uuids)."""
        return f"{self.ns(ns)['id']}.fg1"

    def children(self, op_id: str) -> list[dict]:
        """The VNF operations of NS operation ``op_id``, read from the NFVO's database
        (read-only, as the CLI may)."""
        from mano.store import Store
        with Store(self.state / "nfvo.db", readonly=True) as st:
            return st.list_op_occs(parent=op_id)

    def nfvo_pid(self) -> int:
        return json.loads((self.state / "nfvo.json").read_text())["pid"]

    def kill_nfvo_when(self, args, ready, timeout=60.0):
        """Run CLI ``args`` and SIGKILL the NFVO as soon as ``ready()`` holds; wait for
        the NFVO to be restarted. Returns the killed pid."""
        pid = self.nfvo_pid()
        cmd = subprocess.Popen([sys.executable, "-m", "testbed.cli", *args, "--state",
                                str(self.state)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline and cmd.poll() is None, \
                f"{args}: the kill point never came ({cmd.communicate()})"
            time.sleep(0.002)
        os.kill(pid, signal.SIGKILL)
        cmd.communicate(timeout=60)
        assert cmd.returncode != 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = json.loads((self.state / "nfvo.json").read_text()) if (
                self.state / "nfvo.json").exists() else {}
            if info.get("pid") not in (None, pid):
                return pid
            time.sleep(0.1)
        raise AssertionError("the NFVO was not restarted")

    def instances(self) -> set[str]:
        return {i.instance_id for i in self.drv.list_instances()}

    def flows(self) -> float:
        """Loss (%) of a UDP probe h1 -> h16 through the chain."""
        return self.drv.probe("h1", "h16", port=5001, rate=200, duration=1.0)["loss_pct"]

    def down(self):
        self.drv.close()
        r = _cli(self.state, "down", timeout=180)
        self.up.wait(60)
        assert r.returncode == 0 and self.up.returncode == 0, self.up.stderr.read()


def _last_ns_op(tb: _Testbed, operation: str) -> dict:
    ops = [o for o in tb.ns()["operations"] if o["level"] == "ns" and
           o["operation"] == operation]
    return ops[-1]


def test_nfvo_killed_during_scale_and_terminate_recovers_through_the_cli(tmp_path):
    """SIGKILL of the NFVO process (1) once a scale-out's new host exists, (2) once a
    terminate removed the graph, (3) once a terminate removed an instance: after each
    restart the NS operation is FAILED_TEMP (its VNF operation too, or PROCESSING if its
    work was done, waiting on the NS operation); `op rollback` of (1)
    leaves the NS INSTANTIATED with its three instances and packets flowing, and a new scale
    is accepted; (2) is rolled back (graph back, packets flow) or, if the kill came after an
    instance was removed, ends FAILED naming it; `op retry` of (3) completes the terminate
    and nothing is left."""
    tb = _Testbed(tmp_path / "state")
    try:
        tb.cli("ns", "onboard", str(NSD / "chain3.yaml"),
               *VNFD_ARGS)
        tb.cli("ns", "instantiate", "chain3", "web")
        base = tb.instances()
        assert len(base) == 3 and tb.flows() < 5

        # (1) scale out: killed once the new host exists
        tb.kill_nfvo_when(["ns", "scale", "web", "fwd"], lambda: len(tb.instances()) > 3)
        op = _last_ns_op(tb, "SCALE")
        assert op["state"] == "FAILED_TEMP", op
        child = tb.children(op["id"])
        assert len(child) == 1 and (child[0]["state"] == "FAILED_TEMP" or (
            child[0]["state"] == "PROCESSING" and child[0]["steps_done"][-1] == "done"))
        assert "ROLLED_BACK" in tb.cli("op", "rollback", op["id"]).stdout
        ns = tb.ns()
        assert ns["state"] == "INSTANTIATED"
        assert [o["state"] for o in tb.children(op["id"])] == ["ROLLED_BACK"]
        assert tb.instances() == base and tb.graph() in tb.drv.list_graphs()
        assert tb.flows() < 5
        assert "COMPLETED" in tb.cli("ns", "scale", "web", "fwd").stdout
        assert "COMPLETED" in tb.cli("ns", "scale", "web", "fwd", "--in").stdout
        base = tb.instances()

        # (2) terminate: killed once the graph is gone
        g = tb.graph()
        tb.kill_nfvo_when(["ns", "terminate", "web"], lambda: g not in tb.drv.list_graphs())
        op = _last_ns_op(tb, "TERMINATE")
        assert op["state"] == "FAILED_TEMP", op
        out = tb.cli("op", "rollback", op["id"], ok=False).stdout   # exit 1 when FAILED
        op = _last_ns_op(tb, "TERMINATE")
        if "ROLLED_BACK" in out:
            assert tb.ns()["state"] == "INSTANTIATED" and tb.instances() == base
            assert tb.graph() in tb.drv.list_graphs() and tb.flows() < 5
        else:          # the kill came after the first instance was removed
            assert op["state"] == "FAILED" and "cannot be restored" in op["error"], op
            assert tb.ns()["state"] in ("DEGRADED", "NOT_INSTANTIATED")
            # end what is left; with no instance left the NS is not instantiated any more
            # and the terminate is refused as such (the kill came after the last removal)
            r = tb.cli("ns", "terminate", "web", ok=False)
            assert r.returncode == 0 or "is NOT_INSTANTIATED" in r.stderr, r.stderr
            tb.cli("ns", "instantiate", "chain3", "web")
        base = tb.instances()

        # (3) terminate: killed once an instance is gone
        tb.kill_nfvo_when(["ns", "terminate", "web"], lambda: not base <= tb.instances())
        op = _last_ns_op(tb, "TERMINATE")
        assert op["state"] == "FAILED_TEMP", op
        assert "COMPLETED" in tb.cli("op", "retry", op["id"]).stdout
        ns = tb.ns()
        assert ns["state"] == "TERMINATED"
        assert {o["state"] for o in tb.children(op["id"])} <= {"COMPLETED", "ROLLED_BACK"}
        assert tb.instances() == set() and tb.drv.list_graphs() == []
    finally:
        tb.down()


def test_an_nfvi_that_is_gone_is_healed_back(tmp_path):
    """`testbed up --state D`, instantiate, `testbed down`, `testbed up --state D` again:
    the NS is healed back (new hosts, the graph reprogrammed, packets flow), its records
    name exactly the hosts that exist, and scale, heal and terminate work."""
    state = tmp_path / "state"
    tb = _Testbed(state)
    try:
        tb.cli("ns", "onboard", str(NSD / "chain3.yaml"),
               *VNFD_ARGS)
        tb.cli("ns", "instantiate", "chain3", "web")
    finally:
        tb.down()
    tb = _Testbed(state)
    try:
        ns = tb.ns()
        assert ns["state"] == "INSTANTIATED", ns
        live = {v["id"] for v in ns["vnfs"] if v["state"] == "INSTANTIATED"}
        assert live == tb.instances() and len(live) == 3
        ips = [v["ip"] for v in ns["vnfs"] if v["state"] != "TERMINATED"]
        assert len(ips) == len(set(ips))
        assert tb.graph() in tb.drv.list_graphs() and tb.flows() < 5
        assert "COMPLETED" in tb.cli("ns", "scale", "web", "fwd").stdout
        fw = next(v["id"] for v in tb.ns()["vnfs"] if v["vnfd_id"] == "fw" and
                  v["state"] == "INSTANTIATED")
        assert "COMPLETED" in tb.cli("ns", "heal", "web", fw).stdout
        assert tb.flows() < 5
        assert "COMPLETED" in tb.cli("ns", "terminate", "web").stdout
        assert tb.instances() == set() and tb.drv.list_graphs() == []
    finally:
        tb.down()
