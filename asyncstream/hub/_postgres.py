"""The PostgreSQL store: one database shared by any number of hub processes.

Through psycopg 3 and a pool of connections per process. Each operation is one
transaction, committed before it returns (a 200 means committed); result rows go
in with ``COPY``. What the protocol promises across processes rests on the
database, not on a lock in one process: a batch's key is the primary key of
``batches`` (``INSERT ... ON CONFLICT DO NOTHING`` decides which of two racing
requests stores it, the other compares digests); a task's row is locked by
every batch, completion and reset of that task, so a completion never misses a
batch committed before it, nor a batch lands in a completed task; a stream's row
is locked by its appends, so offsets are checked against the committed count.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from .._paths import PathObject, State
from ._dsn import redact_dsn
from ._postgres_setup import STREAMS_CHANNEL, StreamListener, connect, migrate
from ._sql_rows import (
    TASK_QUERY,
    count_rows,
    jobid_columns,
    join_path_object,
    result_rows,
    split_path_object,
    tasks_from_rows,
)
from ._store import (
    BatchOutcome,
    IdempotencyConflictError,
    NotFoundError,
    ResultBatch,
    ResultPosition,
    ResultsPage,
    StoreError,
    StreamClosedError,
    StreamInfo,
    TaskCompletedError,
    TaskSummary,
    append_decision,
    missing_batches_error,
    repeated_append,
    result_json,
    utc_now,
)

Conn = psycopg.AsyncConnection[TupleRow]


class _Duplicate(Exception):
    """Leaves a batch's transaction: the batch is stored already."""


class UnstorableValueError(StoreError):
    """A value PostgreSQL cannot hold (text with a NUL character)."""

    code = "invalid_value"


class PostgresStore:
    """The store of a hub that may run as several processes: a PostgreSQL DSN."""

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
        await pool.open(wait=True, timeout=30)
        if self._on_change is not None:
            self._listener = StreamListener(self.dsn, self._on_change)
            try:
                await self._listener.start()
            except BaseException:
                await pool.close()
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
    async def _transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection in a transaction, committed when the block ends."""
        async with self._p.connection() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except psycopg.DataError as exc:
                raise UnstorableValueError(
                    f"PostgreSQL cannot store this request: {exc}"
                ) from exc

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
                "INSERT INTO streams VALUES (%s, %s, false)", (info.id, len(paths))
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
        async with self._p.connection() as conn:
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

    # -- results -------------------------------------------------------------

    async def add_batch(self, batch: ResultBatch) -> BatchOutcome:
        try:
            async with self._transaction() as conn:
                await self._store_batch(conn, batch)
        except _Duplicate:
            return BatchOutcome(0, True)
        return BatchOutcome(batch.count, False)

    async def _store_batch(self, conn: Conn, batch: ResultBatch) -> None:
        # Creates the task or counts the batch in it, and locks its row until
        # commit: completion and reset of the task wait for this batch.
        cursor = await conn.execute(
            "INSERT INTO tasks (id, jobid, job_key, task, queue, started, batches)"
            " VALUES (%s, %s, %s, %s, %s, %s, 1) ON CONFLICT (id)"
            " DO UPDATE SET batches = tasks.batches + 1 RETURNING finished",
            (
                batch.taskid,
                *jobid_columns(batch.jobid),
                batch.task,
                batch.queue,
                utc_now(),
            ),
        )
        task_row = await cursor.fetchone()
        assert task_row is not None
        cursor = await conn.execute(
            "INSERT INTO batches VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
            " RETURNING digest",
            (batch.taskid, batch.seq, batch.digest),
        )
        if await cursor.fetchone() is None:
            await self._check_repeat(conn, batch)
            raise _Duplicate
        if task_row[0] is not None:
            raise TaskCompletedError(
                f"task {batch.taskid!r} is completed; batch {batch.seq} is new"
            )
        async with conn.cursor().copy(
            "COPY results (taskid, seq, idx, state, path, extra) FROM STDIN"
        ) as copy:
            for row in result_rows(batch):
                await copy.write_row(row)
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO task_counts VALUES (%s, %s, %s) ON CONFLICT"
                " (taskid, state) DO UPDATE SET count = task_counts.count"
                " + excluded.count",
                count_rows(batch),
            )

    async def _check_repeat(self, conn: Conn, batch: ResultBatch) -> None:
        """Nothing if the stored batch of this key is ``batch``, else 409."""
        cursor = await conn.execute(
            "SELECT b.digest, t.jobid, t.task, t.queue FROM batches b"
            " JOIN tasks t ON t.id = b.taskid WHERE b.taskid = %s AND b.seq = %s",
            (batch.taskid, batch.seq),
        )
        row = await cursor.fetchone()
        assert row is not None
        if row[0] == batch.digest:
            return
        cursor = await conn.execute(
            "SELECT state, path, extra FROM results WHERE taskid = %s AND seq = %s"
            " ORDER BY idx",
            (batch.taskid, batch.seq),
        )
        items: dict[State, list[PathObject]] = {}
        for state, path, extra in await cursor.fetchall():
            items.setdefault(state, []).append(join_path_object(path, extra))
        stored = ResultBatch(
            batch.taskid,
            batch.seq,
            None if row[1] is None else json.loads(row[1]),
            row[2],
            row[3],
            items,
            row[0],
            sum(map(len, items.values())),
        )
        if not stored.same_content(batch):
            raise IdempotencyConflictError(
                f"Idempotency-Key {batch.taskid}:{batch.seq} was used with another body"
            )

    async def complete_task(
        self, taskid: str, batches: int, payload: Any
    ) -> TaskSummary:
        async with self._transaction() as conn:
            # Lock the task (made for a task that sent no batch): batches of it
            # in flight commit before the count below, later ones see it done.
            now = utc_now()
            await conn.execute(
                "INSERT INTO tasks (id, task, started) VALUES (%s, '', %s)"
                " ON CONFLICT (id) DO UPDATE SET batches = tasks.batches",
                (taskid, now),
            )
            cursor = await conn.execute(
                "SELECT seq FROM batches WHERE taskid = %s", (taskid,)
            )
            present = {row[0] for row in await cursor.fetchall()}
            error = missing_batches_error(taskid, batches, present)
            if error is not None:
                raise error
            await conn.execute(
                "UPDATE tasks SET finished = %s, payload = %s"
                " WHERE id = %s AND finished IS NULL",
                (now, json.dumps(payload), taskid),
            )
        return await self.get_task(taskid)

    async def reset_task(self, taskid: str) -> int:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "SELECT finished, batches FROM tasks WHERE id = %s FOR UPDATE",
                (taskid,),
            )
            row = await cursor.fetchone()
            if row is None:
                return 0
            if row[0] is not None:
                raise TaskCompletedError(
                    f"task {taskid!r} is completed; cannot reset it"
                )
            for table, column in (
                ("results", "taskid"),
                ("batches", "taskid"),
                ("task_counts", "taskid"),
                ("tasks", "id"),
            ):
                await conn.execute(
                    f"DELETE FROM {table} WHERE {column} = %s", (taskid,)
                )
            return int(row[1])

    async def get_task(self, taskid: str) -> TaskSummary:
        async with self._p.connection() as conn:
            cursor = await conn.execute(f"{TASK_QUERY} WHERE t.id = %s", (taskid,))
            tasks = tasks_from_rows(await cursor.fetchall())
        if not tasks:
            raise NotFoundError(f"no task {taskid!r}")
        return tasks[0]

    async def get_job(self, jobid: str) -> list[TaskSummary]:
        async with self._p.connection() as conn:
            cursor = await conn.execute(
                f"{TASK_QUERY} WHERE t.job_key = %s ORDER BY t.started, t.id",
                (jobid,),
            )
            return tasks_from_rows(await cursor.fetchall())

    async def read_results(
        self,
        taskid: str,
        state: State | None,
        after: ResultPosition | None,
        limit: int,
    ) -> ResultsPage:
        await self.get_task(taskid)
        seq, idx = after if after is not None else (-1, -1)
        sql = (
            "SELECT seq, idx, state, path, extra FROM results WHERE taskid = %s"
            " AND (seq, idx) > (%s, %s)"
        )
        args: tuple[Any, ...] = (taskid, seq, idx)
        if state is not None:
            sql += " AND state = %s"
            args += (state,)
        async with self._p.connection() as conn:
            cursor = await conn.execute(
                sql + " ORDER BY seq, idx LIMIT %s", (*args, limit + 1)
            )
            rows = await cursor.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        results = [result_json(s, join_path_object(p, e)) for _, _, s, p, e in rows]
        return ResultsPage(results, (rows[-1][0], rows[-1][1]) if more else None)
