"""SQLite persistence for the NFVO: descriptors, NS and VNF records, operation occurrences,
grants and resource allocations.

One database file, in WAL mode, owned by the NFVO process; the CLI may open the same file
read-only (``Store(path, readonly=True)``) while the NFVO runs, and WAL lets it read without
blocking the writer.

Durability. Every helper that writes is one transaction, committed before it returns, so
after the NFVO is killed (even with SIGKILL) the file holds exactly the last state it
reached. Inside ``with store.batch():`` (group commit, the NFVO's operations) transactions
end without committing, and ``store.commit()`` commits them together: the NFVO commits
before every call that changes the NFVI and when the operation ends, so a crash loses only
writes no NFVI step depended on yet, leaving the state of the last commit.
``synchronous=NORMAL`` is the default: in WAL mode a commit is then safe against a
crash of the *process* (the WAL pages are in the OS cache), and only a power loss or kernel
crash may lose the last few commits. That is the right trade here: the records describe an
emulation (Mininet hosts, OVS bridges) which a power loss destroys anyway, and NORMAL saves
an fsync per commit. Pass ``synchronous="FULL"`` to also survive power loss.

Several writes that must land together go in ``with store.transaction():``; the helpers
inside it join that transaction instead of committing on their own.

Rows come back as plain dicts, one key per column; JSON columns (``data``, ``params``,
``steps_done``) are decoded, ``enabled`` is a bool. ``get_*`` raises ``NotFoundError`` for an
unknown id; ``delete_*`` returns whether a row was deleted. Persisted times (``created``,
``updated``, ``onboarded``) are wall-clock seconds (``time.time``, injectable as ``clock``),
since monotonic time means nothing after a reboot.

References are checked (foreign keys on; a refused write says which one is missing): an
``ns_instance`` names an onboarded ``nsd``; a ``vnf_instance`` names a ``vnfd`` and, if it
belongs to one, an ``ns_instance``; a ``grant`` names an ``op_occ`` (and goes with it when
the occurrence is deleted). Deleting a row that others still name is refused with
``ConflictError`` (an NSD in use, an NS with VNF records). ``allocation`` rows are the VIM's
and reference nothing, so the VIM can allocate before any record exists.

Usable from several threads of one process (one connection, guarded by a lock).
"""
from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from mano.errors import ConflictError, MANOError, NotFoundError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nsd (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    data TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    onboarded REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vnfd (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ns_instance (
    id TEXT PRIMARY KEY,
    nsd_id TEXT NOT NULL REFERENCES nsd(id),
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vnf_instance (
    id TEXT PRIMARY KEY,
    ns_id TEXT REFERENCES ns_instance(id),
    vnfd_id TEXT NOT NULL REFERENCES vnfd(id),
    state TEXT NOT NULL,
    compute_node TEXT,
    switch TEXT,
    ip TEXT,
    mac TEXT,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS vnf_instance_ns ON vnf_instance(ns_id);
CREATE TABLE IF NOT EXISTS op_occ (
    id TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    error TEXT,
    steps_done TEXT NOT NULL,
    parent TEXT,
    grant_id TEXT
);
CREATE INDEX IF NOT EXISTS op_occ_subject ON op_occ(subject_id, state);
CREATE INDEX IF NOT EXISTS op_occ_parent ON op_occ(parent);
CREATE TABLE IF NOT EXISTS "grant" (
    id TEXT PRIMARY KEY,
    op_id TEXT NOT NULL REFERENCES op_occ(id) ON DELETE CASCADE,
    data TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS allocation (
    instance_id TEXT PRIMARY KEY,
    vnf_id TEXT,
    node TEXT NOT NULL,
    vcpu REAL NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS allocation_node ON allocation(node);
"""

# Per table: its columns in order, which hold JSON, which hold booleans, and its key.
_TABLES: dict[str, dict[str, Any]] = {
    "nsd": {"cols": ("id", "version", "data", "enabled", "onboarded"),
            "json": {"data"}, "bool": {"enabled"}, "key": "id"},
    "vnfd": {"cols": ("id", "data"), "json": {"data"}, "bool": set(), "key": "id"},
    "ns_instance": {"cols": ("id", "nsd_id", "state", "data", "created", "updated"),
                    "json": {"data"}, "bool": set(), "key": "id"},
    "vnf_instance": {"cols": ("id", "ns_id", "vnfd_id", "state", "compute_node", "switch",
                              "ip", "mac", "data", "created", "updated"),
                     "json": {"data"}, "bool": set(), "key": "id"},
    "op_occ": {"cols": ("id", "level", "subject_id", "operation", "state", "params", "started",
                        "updated", "error", "steps_done", "parent", "grant_id"),
               "json": {"params", "steps_done"}, "bool": set(), "key": "id"},
    "grant": {"cols": ("id", "op_id", "data", "created"), "json": {"data"}, "bool": set(),
              "key": "id"},
    "allocation": {"cols": ("instance_id", "vnf_id", "node", "vcpu", "memory_mb", "disk_gb"),
                   "json": set(), "bool": set(), "key": "instance_id"},
}

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
WAL_CHECKPOINT_PAGES = 4000


@functools.cache
def _upsert_sql(table: str, keep: tuple[str, ...], back: bool) -> str:
    """INSERT of every column of ``table``, updating all but the key and ``keep`` when the
    key exists; with ``RETURNING *`` when ``back``. An upsert, not INSERT OR REPLACE:
    REPLACE deletes the old row first, which would fire ON DELETE CASCADE (an op_occ
    update would drop its grants)."""
    spec = _TABLES[table]
    cols = ", ".join(spec["cols"])
    marks = ", ".join("?" * len(spec["cols"]))
    sets = ", ".join(f"{c}=excluded.{c}" for c in spec["cols"]
                     if c != spec["key"] and c not in keep)
    return (f'INSERT INTO "{table}" ({cols}) VALUES ({marks}) '
            f'ON CONFLICT({spec["key"]}) DO UPDATE SET {sets}'
            + (" RETURNING *" if back else ""))


class Store:
    """The NFVO's database. ``Store(path)`` creates the file and its tables if needed;
    ``Store(path, readonly=True)`` opens an existing one for reading only (writes raise
    ``MANOError``). Close with ``close()`` or use as a context manager."""

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 synchronous: str = "NORMAL", clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.readonly = readonly
        self.clock = clock
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous={synchronous!r}; valid: {', '.join(_SYNCHRONOUS)}")
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction(); >0 means one is open (lock held)
        #: counts the writes of NSDs and VNFDs through this store (put, enable, delete),
        #: also those a failed transaction undid: a reader that cached a descriptor
        #: knows it may have changed while the number moved
        self.descriptors_version = 0
        # per thread: the depth of batch(), and the after_commit callbacks waiting
        self._local = threading.local()
        if readonly:
            if not self.path.exists():
                raise NotFoundError(f"store {self.path}: no such database file")
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None,
                                         check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a read-then-write
            # (check a reference, then insert) is inside the same transaction.
            self._conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                                         check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        try:
            self._setup(synchronous.upper())
        except BaseException:
            self._conn.close()
            raise

    def _setup(self, synchronous: str) -> None:
        c = self._conn
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("PRAGMA busy_timeout=10000")
        if self.readonly:
            try:
                row = c.execute("SELECT version FROM schema_version").fetchone()
            except sqlite3.DatabaseError as e:
                raise MANOError(f"store {self.path}: not an NFVO database ({e})") from e
        else:
            mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise MANOError(f"store {self.path}: could not enable WAL (journal_mode={mode})")
            c.execute(f"PRAGMA synchronous={synchronous}")
            # A checkpoint (WAL pages copied into the database) syncs the disk twice, which
            # stalls a commit 10-50 ms on a busy machine: every 4,000 pages (16 MiB of
            # WAL at most) instead of SQLite's 1,000 makes a quarter as many stalls.
            # Durability does not change: a commit is in the WAL either way.
            c.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            # One transaction: a crash during creation leaves no half-made schema.
            c.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA
                + f"INSERT INTO schema_version SELECT {SCHEMA_VERSION} "
                  "WHERE NOT EXISTS (SELECT 1 FROM schema_version); COMMIT;")
            row = c.execute("SELECT version FROM schema_version").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = None if row is None else row[0]
            raise MANOError(f"store {self.path}: schema version {found}, this code knows "
                            f"version {SCHEMA_VERSION}")

    # --- life cycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> _Transaction:
        """All writes inside commit together when the block ends, or none on an exception.
        Nested blocks join the outer one (no savepoints: an exception caught inside the outer
        block does not undo the inner block's writes). Other threads wait until it ends.

        Inside ``batch()`` (in this thread) the block's writes are not committed when it
        ends but stay pending until ``commit()``; a block that fails then undoes only its
        own writes (a savepoint), never those of the blocks before it."""
        return _Transaction(self)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: the transaction blocks this thread ends inside stay pending (seen by
        every reader of this connection, not yet by other connections) until ``commit()``
        or the end of the outermost ``batch()`` of this thread, which commits them also
        when an exception leaves it. Each block still lands whole or not at all, so a crash
        before the commit leaves the state of an earlier commit: a caller must
        ``commit()`` before anything outside the database depends on the pending writes
        (the NFVO commits before every call that changes the NFVI, see
        ``mano.nfvi.CommitBeforeChange``, and before an operation returns)."""
        self._check_writable()
        self._local.batch = self._batched() + 1
        try:
            yield
        finally:
            self._local.batch -= 1
            if not self._local.batch:
                self.commit()

    def commit(self) -> None:
        """Commit what ``batch()`` left pending, then run this thread's ``after_commit``
        callbacks. Inside a transaction block of this thread it does nothing (the block
        commits as a whole when it ends)."""
        with self._lock:
            if self._depth:
                return
            self._commit()
        self._run_told()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` (in this thread) once the writes made so far are committed: at
        once if nothing is pending; dropped if the block that made them fails."""
        with self._lock:   # held by this thread's open block, if any: then _depth > 0
            pending = self._conn.in_transaction and (self._depth > 0 or self._batched() > 0)
            if pending:
                self._told().append(fn)
        if not pending:
            fn()

    def _commit(self) -> None:
        if not self._conn.in_transaction:
            return
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _batched(self) -> int:
        return getattr(self._local, "batch", 0)

    def _told(self) -> list[Callable[[], None]]:
        told = getattr(self._local, "told", None)
        if told is None:
            told = self._local.told = []
        return told

    def _run_told(self) -> None:
        """Run this thread's callbacks: called after a commit, which covered every write
        made before it (by any thread of this connection)."""
        told = self._told()
        while told:
            told.pop(0)()

    def journal_mode(self) -> str:
        return str(self._query_one("PRAGMA journal_mode")[0])

    def tables(self) -> list[str]:
        rows = self._query("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        return [r[0] for r in rows]

    # --- nsd --------------------------------------------------------------------------------

    def put_nsd(self, id: str, data: dict, *, version: str = "1.0",
                enabled: bool = True) -> dict:
        """Onboard (or replace) an NSD; a replaced one keeps its ``onboarded`` time."""
        with self.transaction():
            self.descriptors_version += 1
            return self._put("nsd", {"id": id, "version": version, "data": data,
                                     "enabled": enabled, "onboarded": self.clock()},
                             keep=("onboarded",))

    def set_nsd_enabled(self, id: str, enabled: bool) -> dict:
        with self.transaction():
            self.descriptors_version += 1
            self.get_nsd(id)
            self._conn.execute("UPDATE nsd SET enabled=? WHERE id=?", (int(enabled), id))
            return self.get_nsd(id)

    def get_nsd(self, id: str) -> dict:
        return self._must("nsd", id)

    def list_nsds(self, *, enabled: bool | None = None) -> list[dict]:
        return self._list("nsd", {"enabled": None if enabled is None else int(enabled)})

    def delete_nsd(self, id: str) -> bool:
        """Refused (``ConflictError``) while NS instances name it."""
        with self.transaction():
            self.descriptors_version += 1
            self._refuse_if_used(id, "nsd", "ns_instance", "nsd_id")
            return self._delete("nsd", id)

    # --- vnfd -------------------------------------------------------------------------------

    def put_vnfd(self, id: str, data: dict) -> dict:
        with self.transaction():
            self.descriptors_version += 1
            return self._put("vnfd", {"id": id, "data": data})

    def get_vnfd(self, id: str) -> dict:
        return self._must("vnfd", id)

    def list_vnfds(self) -> list[dict]:
        return self._list("vnfd", {})

    def delete_vnfd(self, id: str) -> bool:
        """Refused (``ConflictError``) while VNF instances name it."""
        with self.transaction():
            self.descriptors_version += 1
            self._refuse_if_used(id, "vnfd", "vnf_instance", "vnfd_id")
            return self._delete("vnfd", id)

    # --- ns_instance ------------------------------------------------------------------------

    def put_ns_instance(self, id: str, nsd_id: str, state: str,
                        data: dict | None = None) -> dict:
        """Create or replace an NS record (``created`` kept, ``updated`` now). States as in
        SOL005: NOT_INSTANTIATED, INSTANTIATED (not checked here)."""
        with self.transaction():
            return self._put_timed("ns_instance", {"id": id, "nsd_id": nsd_id, "state": state,
                                                   "data": data or {}},
                                   refs=[("nsd", nsd_id)])

    def set_ns_state(self, id: str, state: str) -> dict:
        return self._set_state("ns_instance", id, state)

    def get_ns_instance(self, id: str) -> dict:
        return self._must("ns_instance", id)

    def list_ns_instances(self, *, nsd_id: str | None = None,
                          state: str | None = None) -> list[dict]:
        return self._list("ns_instance", {"nsd_id": nsd_id, "state": state})

    def list_ns_instances_binding(self, endpoints: Collection[str],
                                  nsd_ids: Collection[str]) -> list[dict]:
        """The NS records (in creation order) whose ``data.sap`` binds some name to one of
        ``endpoints``, or whose NSD is one of ``nsd_ids``: filtered in SQL (JSON1), so an
        overlap check reads the NSs that can share an ingress, not every NS."""
        eps, ids = [str(e) for e in endpoints], [str(i) for i in nsd_ids]
        where = []
        if ids:
            where.append(f"nsd_id IN ({', '.join('?' * len(ids))})")
        if eps:
            where.append("EXISTS (SELECT 1 FROM json_each(ns_instance.data, '$.sap') "
                         f"WHERE json_each.value IN ({', '.join('?' * len(eps))}))")
        if not where:
            return []
        rows = self._query(f'SELECT * FROM "ns_instance" WHERE {" OR ".join(where)} '
                           "ORDER BY rowid", ids + eps)
        return [self._decode("ns_instance", r) for r in rows]

    def ns_instance_nsd_ids(self) -> list[str]:
        """The NSDs NS records name, sorted."""
        return [r[0] for r in self._query(
            "SELECT DISTINCT nsd_id FROM ns_instance ORDER BY nsd_id")]

    def delete_ns_instance(self, id: str) -> bool:
        """Refused (``ConflictError``) while VNF records belong to it: delete those first."""
        with self.transaction():
            self._refuse_if_used(id, "ns_instance", "vnf_instance", "ns_id")
            return self._delete("ns_instance", id)

    # --- vnf_instance -----------------------------------------------------------------------

    def put_vnf_instance(self, id: str, vnfd_id: str, state: str, *, ns_id: str | None = None,
                         compute_node: str | None = None, switch: str | None = None,
                         ip: str | None = None, mac: str | None = None,
                         data: dict | None = None) -> dict:
        """Create or replace a VNF record (``created`` kept, ``updated`` now)."""
        with self.transaction():
            return self._put_timed("vnf_instance", {
                "id": id, "ns_id": ns_id, "vnfd_id": vnfd_id, "state": state,
                "compute_node": compute_node, "switch": switch, "ip": ip, "mac": mac,
                "data": data or {}}, refs=[("vnfd", vnfd_id), ("ns_instance", ns_id)])

    def set_vnf_state(self, id: str, state: str) -> dict:
        return self._set_state("vnf_instance", id, state)

    def get_vnf_instance(self, id: str) -> dict:
        return self._must("vnf_instance", id)

    def list_vnf_instances(self, *, ns_id: str | None = None, vnfd_id: str | None = None,
                           state: str | Collection[str] | None = None,
                           compute_node: str | None = None) -> list[dict]:
        """VNF instance records (in creation order) matching every filter given; ``state``
        may be one state or several (filtered in SQL: the records of terminated instances,
        which an NS accumulates, are not decoded)."""
        return self._list("vnf_instance", {"ns_id": ns_id, "vnfd_id": vnfd_id, "state": state,
                                           "compute_node": compute_node})

    def delete_vnf_instance(self, id: str) -> bool:
        with self.transaction():
            return self._delete("vnf_instance", id)

    # --- op_occ -----------------------------------------------------------------------------

    def put_op_occ(self, row: dict) -> dict:
        """Create or replace an operation occurrence; ``row`` has every column (see
        ``mano.opocc.OpOcc``). ``mano.opocc.OpOccManager`` is the normal writer."""
        with self.transaction():
            self.write_op_occ(row)
            return self.get_op_occ(row["id"])

    def write_op_occ(self, row: dict) -> None:
        """``put_op_occ`` without reading the row back (the ``OpOccManager`` holds it)."""
        cols = _TABLES["op_occ"]["cols"]
        missing = [c for c in cols if c not in row]
        if missing:
            raise ValueError(f"op_occ row lacks {', '.join(missing)}")
        with self.transaction():
            self._put("op_occ", row, back=False)

    def update_op_occ(self, id: str, values: dict[str, Any], *,
                      states: Sequence[str] | None = None) -> dict | None:
        """Change only the given columns of an occurrence (e.g. ``state`` and ``updated``
        on a transition; the others, ``params`` among them, are not written again) if it
        is in one of ``states`` (None: any). Returns the row as updated, or None when no
        occurrence ``id`` is in those states. ``ValueError`` for an unknown column."""
        spec = _TABLES["op_occ"]
        bad = [c for c in values if c not in spec["cols"] or c == spec["key"]]
        if bad or not values:
            raise ValueError(f"op_occ update of {', '.join(bad) or 'no column'}; columns: "
                             f"{', '.join(c for c in spec['cols'] if c != spec['key'])}")
        args = [json.dumps(v, sort_keys=True) if c in spec["json"] else v
                for c, v in values.items()]
        return self._update_op_occ(", ".join(f"{c}=?" for c in values), args, id, states)

    def append_op_step(self, id: str, step: str, updated: float, *,
                       states: Sequence[str] | None = None) -> bool:
        """Append ``step`` to an occurrence's ``steps_done`` (and set ``updated``) if it
        is in one of ``states`` (None: any), without reading it first or back (its steps
        grow with every one recorded). Returns whether it was appended (False when no
        occurrence ``id`` is in those states)."""
        sql = "UPDATE op_occ SET steps_done=json_insert(steps_done, '$[#]', ?), updated=? " \
              "WHERE id=?"
        args = [step, updated, id]
        if states is not None:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            args += [str(s) for s in states]
        with self.transaction():
            return self._conn.execute(sql, args).rowcount > 0

    def _update_op_occ(self, sets: str, args: list, id: str,
                       states: Sequence[str] | None) -> dict | None:
        sql = f"UPDATE op_occ SET {sets} WHERE id=?"
        args = [*args, id]
        if states is not None:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            args += [str(s) for s in states]
        with self.transaction():
            row = self._conn.execute(sql + " RETURNING *", args).fetchone()
        return None if row is None else self._decode("op_occ", row)

    def get_op_occ(self, id: str) -> dict:
        return self._must("op_occ", id)

    def list_op_occs(self, *, level: str | None = None, subject_id: str | None = None,
                     states: Sequence[str] | None = None,
                     parent: str | None = None) -> list[dict]:
        """Oldest first (by ``started``)."""
        return self._list("op_occ", {"level": level, "subject_id": subject_id,
                                     "state": states, "parent": parent},
                          order="started, rowid")

    def delete_op_occ(self, id: str) -> bool:
        """Also deletes its grants."""
        with self.transaction():
            return self._delete("op_occ", id)

    # --- grant ------------------------------------------------------------------------------

    def put_grant(self, id: str, op_id: str, data: dict | None = None) -> dict:
        with self.transaction():
            return self._put("grant", {"id": id, "op_id": op_id, "data": data or {},
                                       "created": self.clock()},
                             keep=("created",), refs=[("op_occ", op_id)])

    def get_grant(self, id: str) -> dict:
        return self._must("grant", id)

    def list_grants(self, *, op_id: str | None = None) -> list[dict]:
        return self._list("grant", {"op_id": op_id}, order="created, rowid")

    def delete_grant(self, id: str) -> bool:
        with self.transaction():
            return self._delete("grant", id)

    # --- allocation -------------------------------------------------------------------------

    def put_allocation(self, instance_id: str, node: str, vcpu: float, memory_mb: int,
                       disk_gb: int, *, vnf_id: str | None = None) -> dict:
        with self.transaction():
            return self._put("allocation", {"instance_id": instance_id, "vnf_id": vnf_id,
                                            "node": node, "vcpu": vcpu,
                                            "memory_mb": memory_mb, "disk_gb": disk_gb})

    def get_allocation(self, instance_id: str) -> dict:
        return self._must("allocation", instance_id)

    def list_allocations(self, *, node: str | None = None,
                         vnf_id: str | None = None) -> list[dict]:
        return self._list("allocation", {"node": node, "vnf_id": vnf_id})

    def delete_allocation(self, instance_id: str) -> bool:
        with self.transaction():
            return self._delete("allocation", instance_id)

    # --- generic ----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.readonly:
            raise MANOError(f"store {self.path} is open read-only; only the NFVO writes it")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _query_one(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    @staticmethod
    def _decode(table: str, row: sqlite3.Row) -> dict:
        spec = _TABLES[table]
        out = dict(zip(row.keys(), row))
        for c in spec["json"]:
            out[c] = json.loads(out[c])
        for c in spec["bool"]:
            out[c] = bool(out[c])
        return out

    def _get(self, table: str, key: str) -> dict | None:
        spec = _TABLES[table]
        row = self._query_one(f'SELECT * FROM "{table}" WHERE {spec["key"]}=?', (key,))
        return None if row is None else self._decode(table, row)

    def _must(self, table: str, key: str) -> dict:
        row = self._get(table, key)
        if row is None:
            raise NotFoundError(f"{table} {key!r} not found in store {self.path}")
        return row

    def _need(self, table: str, key: str, who: str) -> None:
        if self._get(table, key) is None:
            raise NotFoundError(f"{who} refers to {table} {key!r}, which is not in the store")

    def _list(self, table: str, filters: dict[str, Any], order: str = "rowid") -> list[dict]:
        where, args = [], []
        for col, val in filters.items():
            if val is None:
                continue
            if isinstance(val, (list, tuple, set, frozenset)):
                vals = [str(v) for v in val]
                where.append(f"{col} IN ({', '.join('?' * len(vals))})" if vals else "0")
                args.extend(vals)
            else:
                where.append(f"{col}=?")
                args.append(val)
        sql = f'SELECT * FROM "{table}"'
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [self._decode(table, r) for r in self._query(sql + f" ORDER BY {order}", args)]

    def _put(self, table: str, row: dict, *, keep: tuple[str, ...] = (),
             refs: Sequence[tuple[str, str | None]] = (), back: bool = True) -> dict | None:
        """Insert or update ``row`` (every column); an existing row keeps its ``keep``
        columns. ``refs``: the (table, key) it names, checked only when SQLite's foreign
        keys refuse it, to say which is missing (``NotFoundError``). Returns the row as
        stored (``back``), read back by the same statement."""
        spec = _TABLES[table]
        vals = []
        for c in spec["cols"]:
            v = row[c]
            if c in spec["json"]:
                v = json.dumps(v, sort_keys=True)
            elif c in spec["bool"]:
                v = int(bool(v))
            vals.append(v)
        try:
            cur = self._conn.execute(_upsert_sql(table, keep, back), vals)
        except sqlite3.IntegrityError as e:
            who = f"{table} {row[spec['key']]!r}"
            for ref_table, ref_key in refs:
                if ref_key is not None:
                    self._need(ref_table, ref_key, who)
            raise ConflictError(f"{who}: {e}") from e
        return self._decode(table, cur.fetchone()) if back else None

    def _put_timed(self, table: str, row: dict, *,
                   refs: Sequence[tuple[str, str | None]] = ()) -> dict:
        now = self.clock()
        return self._put(table, {**row, "created": now, "updated": now}, keep=("created",),
                         refs=refs)

    def _set_state(self, table: str, id: str, state: str) -> dict:
        with self.transaction():
            self._must(table, id)
            self._conn.execute(f"UPDATE {table} SET state=?, updated=? WHERE id=?",
                               (state, self.clock(), id))
            return self._must(table, id)

    def _delete(self, table: str, key: str) -> bool:
        spec = _TABLES[table]
        cur = self._conn.execute(f'DELETE FROM "{table}" WHERE {spec["key"]}=?', (key,))
        return cur.rowcount > 0

    def _refuse_if_used(self, key: str, table: str, user: str, col: str) -> None:
        rows = self._query(f"SELECT id FROM {user} WHERE {col}=? ORDER BY id", (key,))
        if rows:
            names = ", ".join(r[0] for r in rows)
            raise ConflictError(f"{table} {key!r} is in use by {user} {names}; "
                                f"delete those first")


class _Transaction:
    """``Store.transaction()``'s block (a class, not a generator: it is entered a hundred
    times per NS operation)."""

    __slots__ = ("outer", "pending", "store", "told")

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> None:
        st = self.store
        st._check_writable()
        st._lock.acquire()
        if st._depth:
            st._depth += 1
            self.outer = False
            return
        self.outer = True
        self.pending = st._conn.in_transaction   # earlier blocks of a batch, uncommitted
        self.told = len(st._told())
        try:
            st._conn.execute("SAVEPOINT block" if self.pending else "BEGIN IMMEDIATE")
        except BaseException:
            st._lock.release()
            raise
        st._depth = 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        st = self.store
        if not self.outer:
            st._depth -= 1
            st._lock.release()
            return False
        try:
            conn = st._conn
            if exc_type is not None:
                if self.pending:        # undo this block only, not the batch's others
                    conn.execute("ROLLBACK TO block")
                    conn.execute("RELEASE block")
                else:
                    conn.execute("ROLLBACK")
                del st._told()[self.told:]
                return False
            if self.pending:
                conn.execute("RELEASE block")
            if not st._batched():
                st._commit()
        finally:
            st._depth = 0
            st._lock.release()
        if not st._batched():
            st._run_told()
        return False
