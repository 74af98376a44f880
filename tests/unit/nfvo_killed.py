"""NFVO processes that SIGKILL themselves at one crash point of one operation (the children
of test_nfvo_sigkill; not a test module).

``python nfvo_killed.py URL`` reads lines ``DB OPERATION K`` on stdin. For each it forks (the
imports are done once, so a child starts in milliseconds; this process starts no thread, so
forking is safe); the child builds an NFVO on the SQLite file DB driving the NFVI served at
URL (``mano.remote.RemoteDriver``) and runs OPERATION (a key of
``test_nfvo_crash.OPERATIONS``), counting the crash points the in-process campaign counts;
at point K it sends itself SIGKILL. Per line, this process answers one JSON line on stdout:
``{"pid", "signal", "status", "point"}`` (the child's pid, the signal that ended it or null,
its exit status or null, the name of the point it died at). Exit status 3: the operation
ended before point K; 4: it raised (traceback on stderr). EOF on stdin ends the server.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback

from test_nfvo_crash import OPERATIONS, CrashPointsMixin, Points, _crash_at_commits

from mano.nfvo import NFVO
from mano.remote import RemoteDriver

NOT_REACHED = 3
RAISED = 4


class KillPoints(Points):
    """Counts crash points; at point ``at`` it writes the point's name to file descriptor
    ``report`` and this process dies by SIGKILL."""

    def __init__(self, report: int):
        super().__init__()
        self.report = report

    def tick(self, what: str) -> None:
        if self.at is None:
            return
        self.n += 1
        if self.n == self.at:
            os.write(self.report, what.encode())
            os.kill(os.getpid(), signal.SIGKILL)


class KilledRemoteDriver(CrashPointsMixin, RemoteDriver):
    """The NFVI client with a crash point before and after every call that changes it."""

    def __init__(self, url: str, points: Points):
        super().__init__(url)
        self.points = points


def run(url: str, db: str, name: str, k: int, report: int) -> int:
    """In the child: run operation ``name`` on a new NFVO, dying at crash point ``k``."""
    points = KillPoints(report)
    nfvo = NFVO(KilledRemoteDriver(url, points), db, reconcile=False)
    points.at = k
    _crash_at_commits(nfvo, points)
    OPERATIONS[name][1](nfvo)
    return NOT_REACHED


def fork_one(url: str, db: str, name: str, k: int) -> dict:
    """Run ``name`` in a forked child until it dies at point ``k``; how it ended."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = RAISED
        try:
            code = run(url, db, name, k, w)
        except Exception:  # noqa: BLE001 -- any other ending is RAISED, told on stderr
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        point = f.read().decode()
    _, status = os.waitpid(pid, 0)
    return {"pid": pid, "point": point,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "status": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}


def serve(url: str) -> None:
    for line in sys.stdin:
        db, name, k = line.split()
        print(json.dumps(fork_one(url, db, name, int(k))), flush=True)


if __name__ == "__main__":
    serve(*sys.argv[1:])
