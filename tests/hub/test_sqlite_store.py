"""The SQLite store on its own: atomic batches, WAL, reopening."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from asyncstream.hub import SqliteStore
from asyncstream.hub._store import ResultBatch, StreamClosedError


def make_batch(seq: int, objs: list[dict[str, Any]], digest: str = "d") -> ResultBatch:
    return ResultBatch(
        "t1", seq, 7, "task", "q", {"processed": objs}, f"{digest}{seq}", len(objs)
    )


async def test_a_batch_that_fails_midway_stores_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        await store.add_batch(make_batch(0, [{"path": "/ok"}]))
        # The 3rd row cannot be bound: the insert fails after the batch row and
        # two result rows went in, and the whole transaction must roll back.
        broken = make_batch(
            1, [{"path": "/a"}, {"path": "/b"}, {"path": ["not", "text"]}]
        )
        with pytest.raises(sqlite3.Error):
            await store.add_batch(broken)
        task = await store.get_task("t1")
        assert task.batches == 1
        assert task.summary["processed"] == 1
        page = await store.read_results("t1", None, None, 100)
        assert [r["path"] for r in page.results] == ["/ok"]
        # The seq is still free: a correct resend is accepted, not a duplicate.
        outcome = await store.add_batch(make_batch(1, [{"path": "/a"}]))
        assert (outcome.accepted, outcome.duplicate) == (1, False)
    finally:
        await store.close()
        await store.close()  # a second close does nothing


async def test_database_is_in_wal_mode_and_reopens_with_its_data(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hub.db"
    store = SqliteStore(db)
    await store.open()
    await store.add_batch(make_batch(0, [{"path": "/a", "size": 1}]))
    stream = await store.create_stream([{"path": "/in"}])
    await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = SqliteStore(db)
    await reopened.open()
    try:
        page = await reopened.read_results("t1", None, None, 10)
        assert page.results == [{"state": "processed", "path": "/a", "size": 1}]
        paths, info = await reopened.read_stream(stream.id, 0, 10)
        assert paths == [{"path": "/in"}]
        assert info.count == 1
    finally:
        await reopened.close()


async def test_using_a_closed_store_is_a_clear_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    with pytest.raises(RuntimeError, match="is not open"):
        await store.create_stream([])


async def test_an_append_that_fails_midway_stores_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        stream = await store.create_stream([{"path": "/first"}])
        # The 2nd row cannot be bound: its transaction must roll back whole,
        # and leave the writer ready for the next operation.
        with pytest.raises(sqlite3.Error):
            await store.append_stream(
                stream.id, [{"path": "/a"}, {"path": ["not", "text"]}]
            )
        info = await store.append_stream(stream.id, [{"path": "/b"}], offset=1)
        assert (info.count, info.duplicate) == (2, False)
        paths, _ = await store.read_stream(stream.id, 0, 10)
        assert paths == [{"path": "/first"}, {"path": "/b"}]
    finally:
        await store.close()


async def test_a_store_error_raised_midway_leaves_no_open_transaction(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        stream = await store.create_stream([])
        await store.close_stream(stream.id)
        with pytest.raises(StreamClosedError):
            await store.append_stream(stream.id, [{"path": "/late"}])
        await store.add_batch(make_batch(0, [{"path": "/ok"}]))
    finally:
        await store.close()
    # Had the failed append left its transaction open, the batch would have
    # joined it and been lost with the connection.
    reopened = SqliteStore(tmp_path / "hub.db")
    await reopened.open()
    try:
        assert (await reopened.get_task("t1")).summary["processed"] == 1
        paths, info = await reopened.read_stream(stream.id, 0, 10)
        assert (paths, info.count, info.closed) == ([], 0, True)
    finally:
        await reopened.close()
