"""The PostgreSQL store on its own: atomic batches, migrations shared with SQLite
and safe when hubs start at once, and a DSN never shown with its password."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncstream.hub import SqliteStore
from asyncstream.hub._dsn import ENV_HUB_DB, redact_dsn
from asyncstream.hub._migrations import LATEST_VERSION
from asyncstream.hub._serve import free_port
from asyncstream.hub._store import ResultBatch


def make_batch(seq: int, objs: list[dict[str, Any]]) -> ResultBatch:
    return ResultBatch(
        "t1", seq, 7, "task", "q", {"processed": objs}, f"d{seq}", len(objs)
    )


async def test_a_batch_that_fails_midway_stores_nothing(postgres_dsn: str) -> None:
    from asyncstream.hub._postgres import PostgresStore, UnstorableValueError

    store = PostgresStore(postgres_dsn)
    await store.open()
    try:
        await store.add_batch(make_batch(0, [{"path": "/ok"}]))
        # PostgreSQL text cannot hold NUL: the COPY fails on the 3rd row, after
        # the task, the batch key and two rows went in; all must roll back.
        broken = make_batch(1, [{"path": "/a"}, {"path": "/b"}, {"path": "/c\x00"}])
        with pytest.raises(UnstorableValueError, match="cannot store"):
            await store.add_batch(broken)
        task = await store.get_task("t1")
        assert (task.batches, task.summary["processed"]) == (1, 1)
        page = await store.read_results("t1", None, None, 100)
        assert [r["path"] for r in page.results] == ["/ok"]
        outcome = await store.add_batch(make_batch(1, [{"path": "/a"}]))
        assert (outcome.accepted, outcome.duplicate) == (1, False)
    finally:
        await store.close()
        await store.close()  # a second close does nothing


async def test_hubs_starting_at_once_migrate_the_schema_once(postgres_dsn: str) -> None:
    import psycopg

    from asyncstream.hub._postgres import PostgresStore

    stores = [PostgresStore(postgres_dsn, min_size=1) for _ in range(4)]
    try:
        # Every open runs to its end before any close, failed or not.
        opened = await asyncio.gather(
            *(s.open() for s in stores), return_exceptions=True
        )
        assert opened == [None] * len(stores)
        await stores[0].add_batch(make_batch(0, [{"path": "/a"}]))
        assert (await stores[3].get_task("t1")).summary["processed"] == 1
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    async with await psycopg.AsyncConnection.connect(postgres_dsn) as conn:
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        versions = sorted(row[0] for row in await cursor.fetchall())
    assert versions == list(range(1, LATEST_VERSION + 1))


async def test_both_stores_migrate_to_the_same_tables_and_columns(
    postgres_dsn: str, tmp_path: Path
) -> None:
    import psycopg

    from asyncstream.hub._postgres import PostgresStore

    sqlite_store, pg_store = (
        SqliteStore(tmp_path / "hub.db"),
        PostgresStore(postgres_dsn),
    )
    for store in (sqlite_store, pg_store):
        await store.open()
        await store.close()
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        in_sqlite = {
            t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables
        }
    async with await psycopg.AsyncConnection.connect(postgres_dsn) as conn:
        cursor = await conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY ordinal_position"
        )
        in_postgres: dict[str, list[str]] = {}
        for table, column in await cursor.fetchall():
            in_postgres.setdefault(table, []).append(column)
    assert in_postgres == in_sqlite
    assert "task_counts" in in_postgres


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    from asyncstream.hub._postgres import PostgresStore
    from asyncstream.hub._postgres_setup import StoreUnavailableError

    # Port 1 on loopback: refused at once.
    store = PostgresStore("postgresql://hub:s3cret@127.0.0.1:1/hub")
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert "s3cret" not in str(caught.value)
    assert "postgresql://hub:***@127.0.0.1:1/hub" in str(caught.value)
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgres://u@h/db?password=pw&sslmode=require",
            "postgres://u@h/db?password=***&sslmode=require",
        ),
        (
            "host=h user=u password='p w' dbname=db",
            "host=h user=u password=*** dbname=db",
        ),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_a_dsn_is_shown_without_its_password(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_serve_prints_the_database_without_its_password() -> None:
    # The DSN comes by environment (not in the process list); the server
    # cannot reach it, and neither its banner nor its error shows the secret.
    env = {**os.environ, ENV_HUB_DB: "postgresql://hub:s3cret@127.0.0.1:1/hub"}
    command = [sys.executable, "-m", "asyncstream", "hub", "serve"]
    done = subprocess.run(
        [*command, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    # No "listening" banner from a hub that did not start; its error says where.
    assert "listening" not in output
    assert "postgres store postgresql://hub:***@127.0.0.1:1/hub" in output
    assert (
        "cannot connect to PostgreSQL at postgresql://hub:***@127.0.0.1:1/hub" in output
    )
    assert "s3cret" not in output
