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
from ._postgres_retention import PostgresRetention
from ._postgres_streams import Conn, UnstorableValueError
from ._sql_rows import (
    TASK_QUERY,
    count_rows,
    job_listing_sql,
    jobid_columns,
    jobs_from_rows,
    join_path_object,
    result_rows,
    stored_batch,
    task_listing_sql,
    tasks_from_rows,
)
from ._store import (
    BatchOutcome,
    JobSummary,
    NotFoundError,
    ResultBatch,
    ResultPosition,
    ResultsPage,
    TaskCompletedError,
    TaskFilter,
    TaskHeader,
    TaskState,
    TaskSummary,
    result_json,
    utc_now,
)
from ._store_rules import (
    missing_batches_error,
    repeated_batch,
    unknown_task_error,
)

__all__ = ["PostgresStore", "UnstorableValueError"]

# One round trip for a batch's bookkeeping: create the task or count the batch
# in it, locking the task's row until commit (completion and reset of the task
# wait for this batch); claim the batch's key, the primary key deciding between
# racing requests; add its counts per state if the key was free and the task
# open (else the caller rolls back anyway). The result rows follow by COPY.
_STORE_BATCH = """
WITH task AS (
    INSERT INTO tasks (id, jobid, job_key, task, queue, started, batches)
    VALUES (%(taskid)s, %(jobid)s, %(job_key)s, %(task)s, %(queue)s, %(started)s, 1)
    ON CONFLICT (id) DO UPDATE SET batches = tasks.batches + 1
    RETURNING finished
), batch AS (
    INSERT INTO batches VALUES (%(taskid)s, %(seq)s, %(digest)s)
    ON CONFLICT DO NOTHING RETURNING seq
), counts AS (
    INSERT INTO task_counts (taskid, state, count)
    SELECT %(taskid)s, s, n
    FROM unnest(%(states)s::text[], %(counts)s::bigint[]) AS c(s, n)
    WHERE EXISTS (SELECT FROM batch) AND (SELECT finished FROM task) IS NULL
    ON CONFLICT (taskid, state) DO UPDATE SET count = task_counts.count + excluded.count
)
SELECT (SELECT finished FROM task), EXISTS (SELECT FROM batch)
"""


class _Duplicate(Exception):
    """Leaves a batch's transaction: the batch is stored already."""


class PostgresStore(PostgresRetention):
    """The store of a hub that may run as several processes: a PostgreSQL DSN."""

    async def add_batch(self, batch: ResultBatch) -> BatchOutcome:
        try:
            async with self._transaction() as conn:
                await self._store_batch(conn, batch)
        except _Duplicate:
            return BatchOutcome(0, True)
        return BatchOutcome(batch.count, False)

    async def _store_batch(self, conn: Conn, batch: ResultBatch) -> None:
        jobid, job_key = jobid_columns(batch.jobid)
        counts = count_rows(batch)
        cursor = await conn.execute(
            _STORE_BATCH,
            {
                "taskid": batch.taskid,
                "jobid": jobid,
                "job_key": job_key,
                "task": batch.task,
                "queue": batch.queue,
                "started": utc_now(),
                "seq": batch.seq,
                "digest": batch.digest,
                "states": [state for _, state, _ in counts],
                "counts": [n for _, _, n in counts],
            },
        )
        row = await cursor.fetchone()
        assert row is not None
        finished, new = row
        if not new:
            await self._check_repeat(conn, batch)
            raise _Duplicate
        if finished is not None:
            raise TaskCompletedError(
                f"task {batch.taskid!r} is completed; batch {batch.seq} is new"
            )
        async with conn.cursor().copy(
            "COPY results (taskid, seq, idx, state, path, extra) FROM STDIN"
        ) as copy:
            for result in result_rows(batch):
                await copy.write_row(result)

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
        self, taskid: str, batches: int, payload: Any, header: TaskHeader | None
    ) -> TaskSummary:
        async with self._transaction() as conn:
            # Lock the task (made from the header for a task that sent no batch):
            # batches of it in flight commit before the count below, later ones
            # see it done. Without a header an unknown task stays unknown.
            now = utc_now()
            if header is None:
                cursor = await conn.execute(
                    "SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (taskid,)
                )
                known = await cursor.fetchone() is not None
            else:
                jobid, job_key = jobid_columns(header.jobid)
                await conn.execute(
                    "INSERT INTO tasks (id, jobid, job_key, task, queue, started)"
                    " VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET batches = tasks.batches",
                    (taskid, jobid, job_key, header.task, header.queue, now),
                )
                known = True
            cursor = await conn.execute(
                "SELECT seq FROM batches WHERE taskid = %s", (taskid,)
            )
            present = {row[0] for row in await cursor.fetchall()}
            error = missing_batches_error(taskid, batches, present)
            if error is not None:
                raise error  # rolls back a task the header just made
            if not known:
                raise unknown_task_error(taskid)
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

    async def list_tasks(
        self, where: TaskFilter, offset: int, limit: int
    ) -> tuple[int, list[TaskSummary]]:
        count_sql, page_sql, args = task_listing_sql(where, "%s")
        # One REPEATABLE READ transaction: the count and the page see one snapshot.
        async with self._transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor = await conn.execute(count_sql, args)
            total = await cursor.fetchone()
            cursor = await conn.execute(page_sql, (*args, limit, offset))
            page = tasks_from_rows(await cursor.fetchall())
        assert total is not None
        return int(total[0]), page

    async def list_jobs(
        self, state: TaskState | None, offset: int, limit: int
    ) -> tuple[int, list[JobSummary]]:
        count_sql, page_sql = job_listing_sql(state, "%s")
        async with self._transaction() as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor = await conn.execute(count_sql)
            total = await cursor.fetchone()
            cursor = await conn.execute(page_sql, (limit, offset))
            page = jobs_from_rows(await cursor.fetchall())
        assert total is not None
        return int(total[0]), page

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
