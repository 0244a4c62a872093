"""The versioned schema: a database written before versions existed still opens.

The fixture writes a SQLite file in the first layout the hub shipped (copied
below as it was, one count column per result state, no version table), then a
hub of today serves it: every stream, task, batch, result and payload must still
be there and readable through the protocol.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncstream.hub import SqliteStore, running_hub
from asyncstream.hub._migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    SchemaVersionError,
)

from .conftest import batch, key

# The hub's DDL before the schema had versions, as it was shipped.
V1_DDL = """
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY, count INTEGER NOT NULL, closed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_paths (
    stream TEXT NOT NULL, pos INTEGER NOT NULL, path TEXT NOT NULL, extra TEXT,
    PRIMARY KEY (stream, pos)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, jobid TEXT, job_key TEXT, task TEXT NOT NULL, queue TEXT,
    batches INTEGER NOT NULL DEFAULT 0,
    processed INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
    aborted INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    inprogress INTEGER NOT NULL DEFAULT 0,
    started TEXT NOT NULL, finished TEXT, payload TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_key);
CREATE TABLE IF NOT EXISTS batches (
    taskid TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (taskid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
    taskid TEXT NOT NULL, seq INTEGER NOT NULL, idx INTEGER NOT NULL,
    state TEXT NOT NULL, path TEXT NOT NULL, extra TEXT,
    PRIMARY KEY (taskid, seq, idx)
) WITHOUT ROWID;
"""

T1_BATCHES: list[list[tuple[str, str, dict[str, Any] | None]]] = [
    [("processed", "/fs/a", None), ("processed", "/fs/b", {"size": 3})],
    [("failures", "/fs/c", {"message": ["denied"]}), ("skipped", "/fs/d", None)],
]
T2_BATCH = [("inprogress", "/fs/e", None), ("aborted", "/fs/f", {"why": "stop"})]


def write_v1_database(path: Path) -> None:
    """A database as the unversioned hub left it: two tasks, two streams."""
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL)
        conn.execute(
            "INSERT INTO tasks (id, jobid, job_key, task, queue, batches, processed,"
            " skipped, failures, started, finished, payload)"
            " VALUES ('t1', '7', '7', 'plugin', 'q', 2, 2, 1, 1,"
            " '2026-01-01T00:00:00+00:00', '2026-01-01T00:01:00+00:00', ?)",
            (json.dumps({"total": 4}),),
        )
        conn.execute(
            "INSERT INTO tasks (id, jobid, job_key, task, queue, batches, aborted,"
            " inprogress, started) VALUES ('t2', '\"j-x\"', 'j-x', 'other', NULL,"
            " 1, 1, 1, '2026-01-01T00:02:00+00:00')"
        )
        stored = [("t1", seq, rows) for seq, rows in enumerate(T1_BATCHES)]
        for taskid, seq, rows in [*stored, ("t2", 0, T2_BATCH)]:
            conn.execute(
                "INSERT INTO batches VALUES (?, ?, ?)", (taskid, seq, f"digest{seq}")
            )
            conn.executemany(
                "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (taskid, seq, i, state, p, extra and json.dumps(extra))
                    for i, (state, p, extra) in enumerate(rows)
                ],
            )
        conn.execute("INSERT INTO streams VALUES ('open1', 2, 0)")
        conn.execute("INSERT INTO streams VALUES ('closed1', 1, 1)")
        conn.executemany(
            "INSERT INTO stream_paths VALUES (?, ?, ?, ?)",
            [
                ("open1", 0, "/in/a", None),
                ("open1", 1, "/in/b", '{"size":5}'),
                ("closed1", 0, "/in/c", None),
            ],
        )


def expected_results(rows: list[tuple[str, str, dict[str, Any] | None]]) -> list[Any]:
    return [{"state": s, "path": p, **(extra or {})} for s, p, extra in rows]


async def test_a_database_of_the_unversioned_layout_is_migrated_and_served(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.sqlite3"
    write_v1_database(db)
    async with (
        running_hub(store="sqlite", db_path=db) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client,
    ):
        t1 = (await client.get("/api/tasks/t1/")).json()
        assert t1["jobid"] == 7
        assert (t1["task"], t1["queue"], t1["batches"]) == ("plugin", "q", 2)
        assert t1["summary"] == {
            "processed": 2,
            "skipped": 1,
            "aborted": 0,
            "failures": 1,
            "inprogress": 0,
        }
        assert (t1["state"], t1["payload"]) == ("completed", {"total": 4})
        page = (await client.get("/api/tasks/t1/results/")).json()
        assert page["results"] == expected_results(T1_BATCHES[0] + T1_BATCHES[1])
        job = (await client.get("/api/jobs/j-x/")).json()
        assert [t["id"] for t in job["tasks"]] == ["t2"]
        assert job["tasks"][0]["jobid"] == "j-x"
        assert job["summary"]["aborted"] == job["summary"]["inprogress"] == 1
        failures = await client.get("/api/tasks/t1/results/?state=failures")
        assert failures.json()["results"] == expected_results(T1_BATCHES[1][:1])

        opened = (await client.get("/api/streams/open1/paths/")).json()
        assert opened["results"] == [{"path": "/in/a"}, {"path": "/in/b", "size": 5}]
        assert (opened["count"], opened["closed"]) == (2, False)
        closed = (await client.get("/api/streams/closed1/paths/")).json()
        assert (closed["results"], closed["next"]) == ([{"path": "/in/c"}], None)

        # The migrated tables take new writes where the old ones left off.
        appended = await client.post(
            "/api/streams/open1/paths/", json={"paths": ["/in/z"], "offset": 2}
        )
        assert appended.json()["count"] == 3
        items = {"processed": [{"path": "/fs/g"}], "aborted": [{"path": "/fs/h"}]}
        body = batch(1, items, jobid="j-x", task="other", queue=None)
        sent = await client.post(
            "/api/tasks/t2/results/", json=body, headers=key("t2", 1)
        )
        assert sent.json() == {"accepted": 2, "duplicate": False}
        # A retry of a batch stored by the old hub is still a duplicate.
        old_items: dict[str, list[Any]] = {}
        for state, path, extra in T2_BATCH:
            old_items.setdefault(state, []).append({"path": path, **(extra or {})})
        old = batch(0, old_items, jobid="j-x", task="other", queue=None)
        again = await client.post(
            "/api/tasks/t2/results/", json=old, headers=key("t2", 0)
        )
        assert again.json() == {"accepted": 0, "duplicate": True}
        done = await client.post("/api/tasks/t2/complete", json={"batches": 2})
        assert done.status_code == 200
        assert done.json()["summary"]["aborted"] == 2
        assert done.json()["summary"]["processed"] == 1

    with sqlite3.connect(db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        columns = {r[1] for r in conn.execute("PRAGMA table_info(tasks)")}
    assert versions == [m.version for m in MIGRATIONS]
    assert not columns & {"processed", "failures"}, "states are rows, not columns"


async def test_reopening_a_current_database_applies_nothing(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    for _ in range(2):
        store = SqliteStore(db)
        await store.open()
        await store.close()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, LATEST_VERSION + 1))


async def test_a_database_of_a_newer_hub_is_refused_by_name(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    store = SqliteStore(db)
    await store.open()
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'later')")
    newer = SqliteStore(db)
    with pytest.raises(SchemaVersionError, match=r"schema version 99, newer"):
        await newer.open()
    with pytest.raises(RuntimeError, match="is not open"):
        await newer.get_task("t1")


def test_migrations_are_numbered_one_by_one_for_every_dialect() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    for migration in MIGRATIONS:
        assert migration.sqlite
        assert len(migration.sqlite) == len(migration.postgres), migration.summary
