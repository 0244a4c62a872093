"""The PostgreSQL store's pool of connections and its input streams.

A stream's row is locked by its appends, so an ``offset`` is checked against the
count committed by any hub process; every append and close sends a ``NOTIFY``
on commit, which wakes long-polling readers in every process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from .._paths import PathObject
from ._dsn import redact_dsn
from ._postgres_setup import STREAMS_CHANNEL, StreamListener, connect, migrate
from ._sql_rows import join_path_object, split_path_object
from ._store import NotFoundError, StoreError, StreamClosedError, StreamInfo, utc_now
from ._store_rules import append_decision, repeated_append

Conn = psycopg.AsyncConnection[TupleRow]


class UnstorableValueError(StoreError):
    """A value PostgreSQL cannot hold (text with a NUL character)."""

    code = "invalid_value"


class PostgresStreams:
    """The pool and the streams of :class:`~._postgres.PostgresStore`."""

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 16) -> None:
        self.dsn = dsn
        self._sizes = (min_size, max_size)
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._on_change: Callable[[str], None] | None = None
        self._listener: StreamListener | None = None

    def __repr__(self) -> str:
        state = "open" if self._pool is not None else "closed"
        return f"<PostgresStore {redact_dsn(self.dsn)} {state}>"

    def watch_streams(self, on_change: Callable[[str], None]) -> None:
        """Call ``on_change(stream_id)`` whenever any hub process on this database
        appends to or closes a stream (this one included). Before :meth:`open`."""
        self._on_change = on_change

    async def open(self) -> None:
        if self._pool is not None:
            return
        async with await connect(self.dsn) as conn:
            await migrate(conn, redact_dsn(self.dsn))
        min_size, max_size = self._sizes
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            open=False,
            name="asyncstream-hub",
        )
        try:
            await pool.open(wait=True, timeout=30)
            if self._on_change is not None:
                listener = StreamListener(self.dsn, self._on_change)
                await listener.start()
                self._listener = listener
        except BaseException:
            await pool.close()  # its workers would otherwise outlive the error
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, listener = self._pool, self._listener
        self._pool = self._listener = None
        if listener is not None:
            await listener.stop()
        if pool is not None:
            await pool.close()

    @property
    def _p(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection; a value PostgreSQL cannot take is a 400."""
        async with self._p.connection() as conn:
            try:
                yield conn
            except psycopg.DataError as exc:
                raise UnstorableValueError(
                    f"PostgreSQL cannot store this request: {exc}"
                ) from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection in a transaction, committed when the block ends."""
        async with self._connection() as conn, conn.transaction():
            yield conn

    # -- streams -------------------------------------------------------------

    @staticmethod
    async def _copy_paths(
        conn: Conn, info: StreamInfo, paths: list[PathObject]
    ) -> None:
        async with conn.cursor().copy(
            "COPY stream_paths (stream, pos, path, extra) FROM STDIN"
        ) as copy:
            for i, obj in enumerate(paths):
                await copy.write_row((info.id, info.count + i, *split_path_object(obj)))

    async def create_stream(self, paths: list[PathObject]) -> StreamInfo:
        info = StreamInfo(uuid.uuid4().hex, 0, False)
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO streams (id, count, closed, created)"
                " VALUES (%s, %s, false, %s)",
                (info.id, len(paths), utc_now()),
            )
            await self._copy_paths(conn, info, paths)
        return StreamInfo(info.id, len(paths), False)

    async def append_stream(
        self, stream_id: str, paths: list[PathObject], offset: int | None = None
    ) -> StreamInfo:
        async with self._transaction() as conn:
            info = await self._stream_info(conn, stream_id, " FOR UPDATE")
            if append_decision(info, offset, len(paths)) == "compare":
                assert offset is not None
                stored = await self._paths(conn, stream_id, offset, len(paths))
                return repeated_append(info, offset, stored, paths)
            if info.closed:
                raise StreamClosedError(f"stream {stream_id!r} is closed")
            await self._copy_paths(conn, info, paths)
            count = info.count + len(paths)
            await conn.execute(
                "UPDATE streams SET count = %s WHERE id = %s", (count, stream_id)
            )
            await self._notify(conn, stream_id)
        return StreamInfo(stream_id, count, info.closed)

    async def close_stream(self, stream_id: str) -> StreamInfo:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "UPDATE streams SET closed = true WHERE id = %s RETURNING count",
                (stream_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                raise NotFoundError(f"no stream {stream_id!r}")
            await self._notify(conn, stream_id)
        return StreamInfo(stream_id, row[0], True)

    @staticmethod
    async def _notify(conn: Conn, stream_id: str) -> None:
        # Sent when the transaction commits, and only if it does.
        await conn.execute("SELECT pg_notify(%s, %s)", (STREAMS_CHANNEL, stream_id))

    async def read_stream(
        self, stream_id: str, offset: int, limit: int
    ) -> tuple[list[PathObject], StreamInfo]:
        async with self._connection() as conn:
            # The count first: paths appended after it wait for the next page.
            info = await self._stream_info(conn, stream_id)
            limit = min(limit, max(0, info.count - offset))
            return await self._paths(conn, stream_id, offset, limit), info

    @staticmethod
    async def _stream_info(conn: Conn, stream_id: str, lock: str = "") -> StreamInfo:
        cursor = await conn.execute(
            "SELECT count, closed FROM streams WHERE id = %s" + lock, (stream_id,)
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFoundError(f"no stream {stream_id!r}")
        return StreamInfo(stream_id, row[0], row[1])

    @staticmethod
    async def _paths(
        conn: Conn, stream_id: str, offset: int, limit: int
    ) -> list[PathObject]:
        if limit <= 0:
            return []
        cursor = await conn.execute(
            "SELECT path, extra FROM stream_paths WHERE stream = %s AND pos >= %s"
            " AND pos < %s ORDER BY pos",
            (stream_id, offset, offset + limit),
        )
        return [join_path_object(p, e) for p, e in await cursor.fetchall()]
