"""The NFVO's SQLite store: schema, WAL, round-trips, references, read-only access, and
durability across a SIGKILL."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from mano.errors import ConflictError, MANOError, NotFoundError
from mano.store import SCHEMA_VERSION, Store

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "nfvo.db", clock=Clock())
    yield s
    s.close()


def op_row(id="op1", subject="fw1", state="STARTING", **kw):
    row = {"id": id, "level": "vnf", "subject_id": subject, "operation": "INSTANTIATE",
           "state": state, "params": {"flavour": "small"}, "started": 1.0, "updated": 1.0,
           "error": None, "steps_done": [], "parent": None, "grant_id": None}
    row.update(kw)
    return row


def test_tables_and_schema_version_created(store):
    """A new file gets every table and records the schema version."""
    assert set(store.tables()) >= {"schema_version", "nsd", "vnfd", "ns_instance",
                                   "vnf_instance", "op_occ", "grant", "allocation"}
    assert store._query_one("SELECT version FROM schema_version")[0] == SCHEMA_VERSION
    assert store._query_one("PRAGMA foreign_keys")[0] == 1


def test_wal_mode_is_on_and_persists(tmp_path):
    """journal_mode is WAL, also for a connection opened later by anyone."""
    with Store(tmp_path / "a.db") as s:
        assert s.journal_mode() == "wal"
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_reopen_keeps_schema_and_refuses_unknown_version(tmp_path):
    """Opening an existing store again works; one written by a newer schema is refused."""
    Store(tmp_path / "a.db").close()
    Store(tmp_path / "a.db").close()
    conn = sqlite3.connect(tmp_path / "a.db")
    with conn:
        conn.execute("UPDATE schema_version SET version=99")
    conn.close()
    with pytest.raises(MANOError, match="schema version 99"):
        Store(tmp_path / "a.db")


def test_nsd_round_trip_enable_and_replace_keeps_onboarded(store):
    """An NSD comes back as stored; enable/disable and re-onboarding keep its onboarding time."""
    data = {"vnfs": ["fw", "nat"], "sla": {"max_latency_ms": 5}}
    row = store.put_nsd("web", data, version="2.1")
    assert row == {"id": "web", "version": "2.1", "data": data, "enabled": True,
                   "onboarded": 1000.0}
    store.clock.t = 2000.0
    assert store.set_nsd_enabled("web", False)["enabled"] is False
    assert store.list_nsds(enabled=True) == []
    assert [r["id"] for r in store.list_nsds(enabled=False)] == ["web"]
    again = store.put_nsd("web", {"vnfs": ["fw"]})
    assert again["onboarded"] == 1000.0 and again["data"] == {"vnfs": ["fw"]}


def test_instances_round_trip_with_timestamps_and_filters(store):
    """NS and VNF records round-trip; created is kept, updated moves; lists filter."""
    store.put_nsd("web", {})
    store.put_vnfd("fw", {"vdu": {"vcpu": 1}})
    ns = store.put_ns_instance("ns1", "web", "NOT_INSTANTIATED", {"name": "shop"})
    assert ns == {"id": "ns1", "nsd_id": "web", "state": "NOT_INSTANTIATED",
                  "data": {"name": "shop"}, "created": 1000.0, "updated": 1000.0}
    store.clock.t = 1005.0
    vnf = store.put_vnf_instance("fw1", "fw", "INSTANTIATED", ns_id="ns1", compute_node="c1",
                                 switch="s3", ip="10.0.0.5", mac="00:00:00:00:00:05",
                                 data={"program": "firewall"})
    assert vnf["compute_node"] == "c1" and vnf["mac"] == "00:00:00:00:00:05"
    assert vnf["data"] == {"program": "firewall"} and vnf["created"] == 1005.0
    store.put_vnf_instance("fw2", "fw", "NOT_INSTANTIATED")
    store.clock.t = 1010.0
    ns = store.set_ns_state("ns1", "INSTANTIATED")
    assert (ns["state"], ns["created"], ns["updated"]) == ("INSTANTIATED", 1000.0, 1010.0)
    assert [v["id"] for v in store.list_vnf_instances(ns_id="ns1")] == ["fw1"]
    assert [v["id"] for v in store.list_vnf_instances(state="NOT_INSTANTIATED")] == ["fw2"]
    assert [v["id"] for v in store.list_vnf_instances(compute_node="c1")] == ["fw1"]
    assert len(store.list_vnf_instances(vnfd_id="fw")) == 2
    assert store.set_vnf_state("fw2", "INSTANTIATED")["updated"] == 1010.0
    assert store.list_ns_instances(nsd_id="web", state="INSTANTIATED")[0]["id"] == "ns1"


def test_op_occ_grant_and_allocation_round_trip(store):
    """Operation occurrences, grants and allocations round-trip, with their filters."""
    store.put_op_occ(op_row())
    store.put_op_occ(op_row("op2", "fw2", "PROCESSING", steps_done=["a", "b"], parent="op1"))
    assert store.get_op_occ("op2")["steps_done"] == ["a", "b"]
    assert store.get_op_occ("op1")["params"] == {"flavour": "small"}
    assert [r["id"] for r in store.list_op_occs(states=["PROCESSING"])] == ["op2"]
    assert [r["id"] for r in store.list_op_occs(subject_id="fw1")] == ["op1"]
    assert [r["id"] for r in store.list_op_occs(parent="op1")] == ["op2"]
    assert store.list_op_occs(states=[]) == []
    g = store.put_grant("g1", "op1", {"zones": ["c1"]})
    assert g == {"id": "g1", "op_id": "op1", "data": {"zones": ["c1"]}, "created": 1000.0}
    # Updating the occurrence keeps its grant (an upsert, not a delete + insert).
    store.put_op_occ(op_row(state="PROCESSING", grant_id="g1"))
    assert [x["id"] for x in store.list_grants(op_id="op1")] == ["g1"]
    a = store.put_allocation("fw1-0", "c1", 1.5, 512, 2, vnf_id="fw1")
    assert a == {"instance_id": "fw1-0", "vnf_id": "fw1", "node": "c1", "vcpu": 1.5,
                 "memory_mb": 512, "disk_gb": 2}
    store.put_allocation("nat1-0", "c2", 1, 256, 1)
    assert [x["instance_id"] for x in store.list_allocations(node="c1")] == ["fw1-0"]
    assert [x["instance_id"] for x in store.list_allocations(vnf_id="fw1")] == ["fw1-0"]
    with pytest.raises(ValueError, match="lacks"):
        store.put_op_occ({"id": "x"})


def test_get_unknown_and_delete(store):
    """get of an unknown id raises NotFoundError; delete reports whether a row went."""
    with pytest.raises(NotFoundError, match="vnfd 'nope' not found"):
        store.get_vnfd("nope")
    store.put_vnfd("fw", {})
    store.put_allocation("i1", "c1", 1, 1, 1)
    store.put_op_occ(op_row())
    store.put_grant("g1", "op1")
    assert store.delete_allocation("i1") is True
    assert store.delete_allocation("i1") is False
    assert store.delete_vnfd("fw") is True
    assert store.list_vnfds() == []
    assert store.delete_op_occ("op1") is True
    assert store.list_grants() == []  # a grant goes with its occurrence
    with pytest.raises(NotFoundError):
        store.get_grant("g1")


def test_references_checked_and_deletes_in_use_refused(store):
    """Records naming unknown descriptors are refused; an NSD in use, a VNFD in use and an NS
    with VNF records cannot be deleted."""
    with pytest.raises(NotFoundError, match="ns_instance 'ns1' refers to nsd 'web'"):
        store.put_ns_instance("ns1", "web", "NOT_INSTANTIATED")
    store.put_nsd("web", {})
    store.put_vnfd("fw", {})
    store.put_ns_instance("ns1", "web", "INSTANTIATED")
    with pytest.raises(NotFoundError, match="refers to ns_instance 'nsX'"):
        store.put_vnf_instance("fw1", "fw", "INSTANTIATED", ns_id="nsX")
    with pytest.raises(NotFoundError, match="refers to op_occ 'opX'"):
        store.put_grant("g1", "opX")
    store.put_vnf_instance("fw1", "fw", "INSTANTIATED", ns_id="ns1")
    with pytest.raises(ConflictError, match="nsd 'web' is in use by ns_instance ns1"):
        store.delete_nsd("web")
    with pytest.raises(ConflictError, match="vnfd 'fw' is in use by vnf_instance fw1"):
        store.delete_vnfd("fw")
    with pytest.raises(ConflictError, match="ns_instance 'ns1' is in use by vnf_instance fw1"):
        store.delete_ns_instance("ns1")
    assert store.delete_vnf_instance("fw1") and store.delete_ns_instance("ns1")
    assert store.delete_nsd("web")


def test_transaction_commits_together_or_not_at_all(store):
    """Writes inside transaction() land together; an exception undoes all of them."""
    with pytest.raises(RuntimeError), store.transaction():
        store.put_vnfd("fw", {})
        store.put_allocation("i1", "c1", 1, 1, 1)
        raise RuntimeError("boom")
    assert store.list_vnfds() == [] and store.list_allocations() == []
    with store.transaction():
        store.put_vnfd("fw", {})
        with store.transaction():
            store.put_allocation("i1", "c1", 1, 1, 1)
    assert len(store.list_vnfds()) == 1 and len(store.list_allocations()) == 1


def test_a_batch_commits_its_blocks_at_commit_or_at_its_end(store, tmp_path):
    """Inside batch() a block's writes are seen by the store but not by another connection
    until commit(); the end of the batch commits the rest, also when an exception ends
    it; a block that fails inside the batch undoes only its own writes."""
    reader = Store(tmp_path / "nfvo.db", readonly=True)
    try:
        with pytest.raises(RuntimeError), store.batch():
            store.put_vnfd("fw", {})
            assert len(store.list_vnfds()) == 1 and reader.list_vnfds() == []
            store.commit()
            assert len(reader.list_vnfds()) == 1
            store.put_allocation("i1", "c1", 1, 1, 1)
            with pytest.raises(ConflictError), store.transaction():
                store.put_allocation("i2", "c1", 1, 1, 1)
                store.delete_vnfd("fw")
                raise ConflictError("this block fails")
            assert [a["instance_id"] for a in store.list_allocations()] == ["i1"]
            assert reader.list_allocations() == []
            raise RuntimeError("the operation fails")
        assert [a["instance_id"] for a in reader.list_allocations()] == ["i1"]
        assert len(reader.list_vnfds()) == 1
    finally:
        reader.close()


def test_after_commit_callbacks_run_once_the_writes_are_committed(store, tmp_path):
    """after_commit runs its callback at once when nothing is pending, at the batch's
    commit otherwise (when another connection sees the write), and never for a block that
    failed."""
    reader = Store(tmp_path / "nfvo.db", readonly=True)
    seen = []
    try:
        store.after_commit(lambda: seen.append("now"))
        with store.batch():
            store.put_vnfd("fw", {})
            store.after_commit(lambda: seen.append(len(reader.list_vnfds())))
            with pytest.raises(RuntimeError), store.transaction():
                store.put_vnfd("fwd", {})
                store.after_commit(lambda: seen.append("undone"))
                raise RuntimeError("boom")
            assert seen == ["now"]
        assert seen == ["now", 1]
    finally:
        reader.close()


def test_threads_share_one_store(store):
    """Writes from several threads all land (one connection, serialized by a lock)."""
    def work(t):
        for i in range(25):
            store.put_allocation(f"t{t}-{i}", f"c{t}", 1, 1, 1)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(store.list_allocations()) == 100


def test_readonly_reads_while_writer_open_and_refuses_writes(tmp_path):
    """A read-only store sees the writer's commits and refuses every write, also at SQLite level."""
    path = tmp_path / "nfvo.db"
    w = Store(path)
    w.put_vnfd("fw", {"x": 1})
    r = Store(path, readonly=True)
    assert r.get_vnfd("fw")["data"] == {"x": 1}
    w.put_vnfd("nat", {})
    assert [d["id"] for d in r.list_vnfds()] == ["fw", "nat"]
    with pytest.raises(MANOError, match="read-only"):
        r.put_vnfd("lb", {})
    with pytest.raises(MANOError, match="read-only"):
        r.delete_vnfd("fw")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        r._conn.execute("INSERT INTO vnfd VALUES ('lb', '{}')")
    r.close()
    w.close()
    with pytest.raises(NotFoundError, match="no such database"):
        Store(tmp_path / "missing.db", readonly=True)


def test_bad_synchronous_setting_refused(tmp_path):
    """An unknown synchronous level is refused with the valid ones."""
    with pytest.raises(ValueError, match="NORMAL"):
        Store(tmp_path / "a.db", synchronous="sometimes")


def test_commits_survive_sigkill(tmp_path):
    """A writer process killed with SIGKILL right after commits loses none of them."""
    path = tmp_path / "nfvo.db"
    child = textwrap.dedent(f"""
        import sys
        from mano.store import Store
        s = Store({str(path)!r})
        s.put_vnfd("fw", {{}})
        for i in range(100000):
            s.put_vnf_instance(f"fw{{i}}", "fw", "INSTANTIATED", data={{"i": i}})
            print(i, flush=True)  # printed only after the commit returned
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env,
                            text=True)
    assert proc.stdout is not None
    seen = -1
    for line in proc.stdout:
        seen = int(line)
        if seen >= 200:
            break
    proc.send_signal(signal.SIGKILL)  # while it keeps writing
    proc.wait(timeout=10)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert seen >= 200
    with Store(path) as s:
        ids = {v["id"] for v in s.list_vnf_instances()}
    assert {f"fw{i}" for i in range(seen + 1)} <= ids
