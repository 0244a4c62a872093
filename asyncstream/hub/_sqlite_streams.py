"""The SQLite store's two connections and its input streams.

Every write goes through the writer connection under an ``asyncio.Lock``
(statements of concurrent requests would otherwise interleave in one
transaction); reads go through a second connection that WAL lets run beside the
writer and that never sees an uncommitted write. The results side is
:class:`~._sqlite.SqliteStore`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from os import PathLike
from typing import Any, TypeVar

import aiosqlite

from .._paths import PathObject
from ._sql_rows import path_objects
from ._sqlite_bulk import (
    PreparedPaths,
    has_json_each,
    insert_stream_paths,
    prepare_paths,
)
from ._sqlite_rows import Transaction, in_transaction, migrate, on_connection_thread
from ._store import NotFoundError, StreamClosedError, StreamInfo, utc_now
from ._store_rules import append_decision, repeated_append

T = TypeVar("T")


class SqliteStreams:
    """The connections and the streams of :class:`~._sqlite.SqliteStore`."""

    def __init__(self, path: str | PathLike[str], *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self._synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        # Whether bare paths go in bulk (see _sqlite_bulk): known once open.
        self._bulk = False

    def __repr__(self) -> str:
        state = "open" if self._writer is not None else "closed"
        return f"<SqliteStore {self.path!r} {state}>"

    async def open(self) -> None:
        if self._writer is not None:
            return
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per operation.
        writer = await aiosqlite.connect(self.path, isolation_level=None)
        await writer.execute("PRAGMA journal_mode=WAL")
        await writer.execute(f"PRAGMA synchronous={self._synchronous}")
        try:
            await migrate(writer, self.path)
        except BaseException:
            await writer.close()
            raise
        self._bulk = await on_connection_thread(writer, has_json_each)
        self._writer = writer
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)

    def watch_streams(self, on_change: Callable[[str], None]) -> None:
        """Nothing to watch: only this process changes this store."""

    async def close(self) -> None:
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        for conn in (reader, writer):
            if conn is not None:
                await conn.close()

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._writer

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._reader

    async def _fetchone(self, sql: str, args: tuple[Any, ...]) -> Any:
        async with self._r.execute(sql, args) as cursor:
            return await cursor.fetchone()

    # -- streams -------------------------------------------------------------

    async def create_stream(self, paths: list[PathObject]) -> StreamInfo:
        stream_id = uuid.uuid4().hex
        prepared = prepare_paths(paths, self._bulk)

        def create(conn: sqlite3.Connection) -> StreamInfo:
            conn.execute(
                "INSERT INTO streams (id, count, closed, created) VALUES (?, 0, 0, ?)",
                (stream_id, utc_now()),
            )
            info = StreamInfo(stream_id, 0, False)
            return _append(conn, info, prepared, len(paths))

        async with self._write_lock:
            return await self._in_writer(create)

    async def append_stream(
        self, stream_id: str, paths: list[PathObject], offset: int | None = None
    ) -> StreamInfo:
        prepared = prepare_paths(paths, self._bulk)

        def append(conn: sqlite3.Connection) -> StreamInfo:
            info = _stream_info(conn, stream_id)
            if append_decision(info, offset, len(paths)) == "compare":
                assert offset is not None
                stored = _path_rows(conn, stream_id, offset, len(paths))
                return repeated_append(info, offset, path_objects(stored), paths)
            if info.closed:
                raise StreamClosedError(f"stream {stream_id!r} is closed")
            return _append(conn, info, prepared, len(paths))

        async with self._write_lock:
            return await self._in_writer(append)

    async def close_stream(self, stream_id: str) -> StreamInfo:
        def close(conn: sqlite3.Connection) -> StreamInfo:
            info = _stream_info(conn, stream_id)
            conn.execute("UPDATE streams SET closed = 1 WHERE id = ?", (stream_id,))
            return StreamInfo(stream_id, info.count, True)

        async with self._write_lock:
            return await self._in_writer(close)

    async def read_stream(
        self, stream_id: str, offset: int, limit: int
    ) -> tuple[list[PathObject], StreamInfo]:
        def read(conn: sqlite3.Connection) -> tuple[list[Any], StreamInfo]:
            # Read the state first: paths appended after it are simply left for
            # the next page, so `count` never claims paths the page could not
            # contain.
            info = _stream_info(conn, stream_id)
            size = min(limit, max(0, info.count - offset))
            return _path_rows(conn, stream_id, offset, size), info

        rows, info = await on_connection_thread(self._r, read)
        # Built here, not on the reader's thread: that thread would hold the
        # interpreter while the event loop has requests to serve.
        return path_objects(rows), info

    async def _in_writer(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one transaction, in one trip to the writer's thread."""
        return await on_connection_thread(
            self._w, lambda conn: in_transaction(conn, lambda: work(conn))
        )

    def _transaction(self) -> Transaction:
        return Transaction(self._w)


# The statements of the stream operations, run on a connection's own thread
# (see on_connection_thread): one trip per operation, not one per statement.


def _stream_info(conn: sqlite3.Connection, stream_id: str) -> StreamInfo:
    row = conn.execute(
        "SELECT count, closed FROM streams WHERE id = ?", (stream_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no stream {stream_id!r}")
    return StreamInfo(stream_id, row[0], bool(row[1]))


def _append(
    conn: sqlite3.Connection, info: StreamInfo, paths: PreparedPaths, n: int
) -> StreamInfo:
    insert_stream_paths(conn, info.id, info.count, paths)
    count = info.count + n
    conn.execute("UPDATE streams SET count = ? WHERE id = ?", (count, info.id))
    return StreamInfo(info.id, count, info.closed)


def _path_rows(
    conn: sqlite3.Connection, stream_id: str, offset: int, limit: int
) -> list[Any]:
    """The ``(path, extra)`` rows of ``limit`` paths from ``offset``."""
    return conn.execute(
        "SELECT path, extra FROM stream_paths WHERE stream = ? AND pos >= ?"
        " AND pos < ? ORDER BY pos",
        (stream_id, offset, offset + limit),
    ).fetchall()
