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
from typing import Any

from .._paths import State
from ._postgres_streams import Conn, PostgresStreams, UnstorableValueError
from ._sql_rows import (
    TASK_QUERY,
    count_rows,
    jobid_columns,
    join_path_object,
    result_rows,
    stored_batch,
    tasks_from_rows,
)
from ._store import (
    BatchOutcome,
    NotFoundError,
    ResultBatch,
    ResultPosition,
    ResultsPage,
    TaskCompletedError,
    TaskSummary,
    missing_batches_error,
    repeated_batch,
    result_json,
    utc_now,
)

__all__ = ["PostgresStore", "UnstorableValueError"]


class _Duplicate(Exception):
    """Leaves a batch's transaction: the batch is stored already."""


class PostgresStore(PostgresStreams):
    """The store of a hub that may run as several processes: a PostgreSQL DSN."""

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
        """Nothing if the batch stored under this key is ``batch``, else 409."""
        args = (batch.taskid, batch.seq)
        cursor = await conn.execute(
            "SELECT b.digest, t.jobid, t.task, t.queue FROM batches b"
            " JOIN tasks t ON t.id = b.taskid WHERE b.taskid = %s AND b.seq = %s",
            args,
        )
        row = await cursor.fetchone()
        assert row is not None
        rows: list[Any] = []
        if row[0] != batch.digest:
            cursor = await conn.execute(
                "SELECT state, path, extra FROM results WHERE taskid = %s"
                " AND seq = %s ORDER BY idx",
                args,
            )
            rows = await cursor.fetchall()
        repeated_batch(stored_batch(batch, row[0], row[1:], rows), batch)

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
        async with self._connection() as conn:
            cursor = await conn.execute(f"{TASK_QUERY} WHERE t.id = %s", (taskid,))
            tasks = tasks_from_rows(await cursor.fetchall())
        if not tasks:
            raise NotFoundError(f"no task {taskid!r}")
        return tasks[0]

    async def get_job(self, jobid: str) -> list[TaskSummary]:
        async with self._connection() as conn:
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
        async with self._connection() as conn:
            cursor = await conn.execute(
                sql + " ORDER BY seq, idx LIMIT %s", (*args, limit + 1)
            )
            rows = await cursor.fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        results = [result_json(s, join_path_object(p, e)) for _, _, s, p, e in rows]
        return ResultsPage(results, (rows[-1][0], rows[-1][1]) if more else None)
