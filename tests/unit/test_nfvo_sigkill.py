"""Crash campaign with a real SIGKILL: the NFVO runs in its own process against an NFVI that
outlives it, and is killed by SIGKILL at every crash point of every NS operation type.

The NFVI is the fake one of test_nfvo_crash, served from the test process by the testbed's
NFVI RPC server (``testbed.infra_server``, HTTP on loopback); the NFVO is a child process
(forked by the server in tests/unit/nfvo_killed.py, a process started once per test so each
child starts in milliseconds) on the SQLite file, driving it through ``mano.remote.
RemoteDriver``, that counts the same crash points as the in-process campaign and sends
itself SIGKILL at point N. The NFVO restarted in the test process (same file, same running
NFVI, again over RPC) reconciles and recovers; the checks are test_nfvo_crash's. Each crash
point of each operation gets one kill and one recovery, which rotates retry, rollback and
fail over the points so every recovery meets every operation type (a process per kill is too
slow for the full cross product; the in-process campaign keeps it).
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_nfvo import ROOT  # tests/unit is on sys.path (rootdir-relative)
from test_nfvo_crash import (
    OPERATIONS,
    VNFDS,
    Bed,
    count_points,
    run_point,
)

from mano.errors import MANOError
from mano.nfvo import NFVO
from mano.remote import RemoteDriver
from testbed.infra_server import InfraServer

CHILD = Path(__file__).with_name("nfvo_killed.py")
MODES = ("retry", "rollback", "fail")


class Served:
    """The fake NFVI under the keyword names of ``NfviDriver`` (the RPC server calls its
    methods with keyword arguments)."""

    def __init__(self, drv):
        self.drv = drv

    def create_instance(self, instance_id, compute_node, flavour, image):
        return self.drv.create_instance(instance_id, compute_node, flavour, image)

    def delete_instance(self, instance_id):
        return self.drv.delete_instance(instance_id)

    def restart_instance(self, instance_id):
        return self.drv.restart_instance(instance_id)

    def put_graph(self, graph):
        return self.drv.put_graph(graph)

    def __getattr__(self, name):
        return getattr(self.drv, name)


class SeenRemoteDriver(RemoteDriver):
    """An NFVI client whose ``instances`` and ``graphs`` are what the served fake NFVI
    holds, for test_nfvo_crash's checks."""

    def __init__(self, url: str, drv):
        super().__init__(url)
        self.drv = drv

    @property
    def instances(self):
        return self.drv.instances

    @property
    def graphs(self):
        return self.drv.graphs


class RemoteBed(Bed):
    """test_nfvo_crash's bed whose fake NFVI is served over RPC: NFVOs started here drive it
    through ``RemoteDriver``."""

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self.server = InfraServer(Served(self.drv)).start()
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.clients: list[RemoteDriver] = []
        self.kills: list[str] = []
        self.err = tmp / "nfvo_killed.err"
        with self.err.open("w") as err:
            self.forker = subprocess.Popen([sys.executable, str(CHILD), self.url],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=err, text=True)

    def nfvo(self, reconcile: bool = True) -> NFVO:
        client = SeenRemoteDriver(self.url, self.drv)
        self.clients.append(client)
        return NFVO(client, self.db, reconcile=reconcile)

    def close_clients(self) -> None:
        while self.clients:
            self.clients.pop().close()

    def stop(self) -> None:
        """Stop the fork server (by its pid if it does not end), the clients, the server."""
        self.forker.stdin.close()
        try:
            self.forker.wait(10)
        except subprocess.TimeoutExpired:
            self.forker.kill()
            self.forker.wait()
        self.forker.stdout.close()
        self.close_clients()
        self.server.stop()

    def sigkill(self, _bed, n: NFVO, k: int, name: str) -> bool:
        """``run_point``'s ``die``: close ``n``, run ``name`` in a child NFVO process that
        SIGKILLs itself at point ``k``; whether it died so."""
        n.close()
        self.forker.stdin.write(f"{self.db} {name} {k}\n")
        self.forker.stdin.flush()
        line = self.forker.stdout.readline()
        assert line, f"the fork server ended: {self.err.read_text()[-2000:]}"
        end = json.loads(line)
        assert end["signal"] == signal.SIGKILL, (end, self.err.read_text()[-2000:])
        self.kills.append(end["point"])
        self.points.where = [end["point"]]
        return True


@pytest.fixture
def bed(tmp_path):
    b = RemoteBed(tmp_path)
    yield b
    b.stop()


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_the_nfvo_killed_at_every_crash_point_recovers(bed, name):
    """For every crash point of the operation, a real NFVO process killed there by SIGKILL
    leaves, after a restart on the same SQLite file and the same running NFVI, its
    occurrence FAILED_TEMP (or never started), and the rotating recovery (retry, rollback
    or fail) leaves the records, VIM and NFVI consistent and the NS usable."""
    n = NFVO(bed.drv, bed.db)
    n.onboard_nsd(ROOT / "nsd" / "chain3.yaml", VNFDS)
    OPERATIONS[name][0](n)
    n.close()
    base = bed.save("base")
    total = count_points(bed, base, name)
    names = list(bed.points.where)                  # the points, as the fake NFVI counted
    bed.close_clients()
    assert total > 10
    failures = []
    for k in range(1, total + 1):
        mode = MODES[k % len(MODES)]
        try:
            run_point(bed, base, name, k, mode, die=bed.sigkill)
        except (AssertionError, MANOError) as exc:
            failures.append(f"{name} point {k} ({bed.points.where[-1:]}) {mode}: "
                            f"{type(exc).__name__}: {exc}")
        finally:
            bed.close_clients()
    print(f"{name}: {len(bed.kills)} of {total} crash points killed by SIGKILL")
    assert failures == [], "\n".join(failures[:10]) + f"\n... {len(failures)} in all"
    assert bed.kills == names                       # each child died where it was told to
