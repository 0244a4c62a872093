"""Bare paths inserted through json_each: the same rows as one by one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from asyncstream.hub import SqliteStore
from asyncstream.hub._sql_rows import result_rows, split_path_object
from asyncstream.hub._sqlite_bulk import (
    has_json_each,
    insert_results,
    insert_stream_paths,
    prepare_paths,
    prepare_results,
    split_bare,
)
from asyncstream.hub._store import ResultBatch

# Every kind of object: the bare ASCII paths go in bulk, the rest row by row.
OBJECTS: list[dict[str, object]] = [
    {"path": "/plain"},
    {"path": '/quote"and\\backslash'},
    {"path": "/caf\u00e9"},
    {"path": "/with", "from": "/src"},
    {"path": "/tab\there"},
    {"path": "/raw\udc80"},
    {"path": "/m", "message": ["why"]},
    {"path": "/last"},
]


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    connection.execute(
        "CREATE TABLE results (taskid TEXT, seq INTEGER, idx INTEGER,"
        " state TEXT, path TEXT, extra TEXT, PRIMARY KEY (taskid, seq, idx))"
    )
    connection.execute(
        "CREATE TABLE stream_paths (stream TEXT, pos INTEGER, path TEXT,"
        " extra TEXT, PRIMARY KEY (stream, pos))"
    )
    assert has_json_each(connection)
    return connection


def batch_of(items: dict[str, list[dict[str, object]]]) -> ResultBatch:
    count = sum(len(objs) for objs in items.values())
    return ResultBatch("t1", 4, None, "task", None, items, "d", count)  # type: ignore[arg-type]


@pytest.mark.parametrize("bulk", [True, False])
def test_result_rows_are_those_of_the_row_by_row_insert(
    conn: sqlite3.Connection, bulk: bool
) -> None:
    batch = batch_of({"processed": OBJECTS[:5], "failures": OBJECTS[5:]})
    insert_results(conn, "t1", 4, prepare_results(batch, bulk))
    stored = conn.execute("SELECT * FROM results ORDER BY idx").fetchall()
    assert stored == list(result_rows(batch))


@pytest.mark.parametrize("bulk", [True, False])
def test_stream_rows_continue_at_the_stream_count(
    conn: sqlite3.Connection, bulk: bool
) -> None:
    insert_stream_paths(conn, "s1", 7, prepare_paths(OBJECTS, bulk))
    stored = conn.execute("SELECT * FROM stream_paths ORDER BY pos").fetchall()
    assert stored == [
        ("s1", 7 + i, *split_path_object(obj)) for i, obj in enumerate(OBJECTS)
    ]


def test_only_bare_ascii_paths_go_in_bulk() -> None:
    encoded, others = split_bare(OBJECTS, True)
    assert encoded is not None
    assert others == [2, 3, 5, 6]


def test_a_nul_in_a_path_sends_the_whole_list_row_by_row(
    conn: sqlite3.Connection,
) -> None:
    # SQLite's JSON text would end at the NUL and store "/nul" instead.
    objs: list[dict[str, object]] = [{"path": "/a"}, {"path": "/nul\x00x"}]
    assert split_bare(objs, True) == (None, [0, 1])
    insert_stream_paths(conn, "s1", 0, prepare_paths(objs, True))
    stored = conn.execute("SELECT path FROM stream_paths ORDER BY pos").fetchall()
    assert stored == [("/a",), ("/nul\x00x",)]


async def test_the_store_reads_back_every_kind_of_object(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.db")
    await store.open()
    try:
        await store.add_batch(batch_of({"processed": OBJECTS}))
        page = await store.read_results("t1", None, None, 100)
        assert page.results == [{"state": "processed", **obj} for obj in OBJECTS]
        stream = await store.create_stream(OBJECTS[:3])
        await store.append_stream(stream.id, OBJECTS[3:], offset=3)
        paths, info = await store.read_stream(stream.id, 0, 100)
        assert (paths, info.count) == (OBJECTS, len(OBJECTS))
    finally:
        await store.close()


def test_objects_that_are_all_bare_go_in_bulk_whole() -> None:
    objs: list[dict[str, object]] = [{"path": "/a"}, {"path": '/q"'}]
    assert split_bare(objs, True) == (b'["/a","/q\\""]', [])
    assert split_bare([], True) == (None, [])
