"""The NBI's own records, in SQLite beside the NFVO's database (``DIR/nbi.db``).

What SOL005 exposes but the NFVO does not keep: NSD and VNF package information objects
(their own ids, onboarding state, user-defined data), the NS instances' names and
descriptions, each resource's tenant (project), the request of each LCM operation
occurrence, subscriptions and OAuth clients. One table of JSON documents keyed by
(kind, id), each with the tenant that owns it; every write commits before it returns, so
the NBI can be killed at any time like the NFVO.

Kinds: ``nsd_info``, ``vnf_pkg``, ``ns`` (name, description, nsdInfoId), ``op``
(operationParams), ``subscription``, ``client``.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from mano.errors import NotFoundError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (kind, id)
);
"""


class Records:
    """Documents by kind and id. ``get`` raises ``NotFoundError`` naming the kind and id.
    Safe to use from several threads (one connection, one lock)."""

    def __init__(self, path: str | Path):
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def put(self, kind: str, id: str, tenant: str, data: dict) -> dict:
        """Create or replace a document (its creation time is kept); returns ``data``."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO doc(kind, id, tenant, data, created) VALUES (?,?,?,?,?) "
                "ON CONFLICT(kind, id) DO UPDATE SET tenant=excluded.tenant, "
                "data=excluded.data", (kind, id, tenant, json.dumps(data), time.time()))
        return data

    def get(self, kind: str, id: str) -> tuple[str, dict]:
        """(tenant, data) of one document."""
        with self._lock:
            row = self._conn.execute("SELECT tenant, data FROM doc WHERE kind=? AND id=?",
                                     (kind, id)).fetchone()
        if row is None:
            raise NotFoundError(f"no {kind} {id!r}")
        return row[0], json.loads(row[1])

    def find(self, kind: str, id: str) -> tuple[str, dict] | None:
        try:
            return self.get(kind, id)
        except NotFoundError:
            return None

    def list(self, kind: str, tenant: str | None = None) -> list[tuple[str, str, dict]]:
        """(id, tenant, data) of every document of ``kind`` (of ``tenant`` if given), oldest
        first."""
        sql, args = "SELECT id, tenant, data FROM doc WHERE kind=?", [kind]
        if tenant is not None:
            sql += " AND tenant=?"
            args.append(tenant)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY created, rowid", args).fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def delete(self, kind: str, id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM doc WHERE kind=? AND id=?", (kind, id))
        return cur.rowcount > 0
