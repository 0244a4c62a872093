"""The embedded default store: one SQLite file in WAL mode, through aiosqlite.

Two connections (:mod:`._sqlite_streams`, with the input streams): one writer
under a lock, and a reader that never sees an uncommitted batch. This module
holds the results side. ``synchronous=FULL`` makes
each commit durable before ``add_batch`` returns, so a 200 survives a power cut and
not only a killed process.

The tables are versioned (:mod:`._migrations`): opening an older database
migrates it first. Rows are converted in :mod:`._sql_rows`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .._paths import State
from ._retention import (
    check_deletable,
    delete_streams_sql,
    delete_tasks_sql,
    referenced_streams,
)
from ._sql_rows import (
    TASK_QUERY,
    count_rows,
    job_listing_sql,
    jobid_columns,
    jobs_from_rows,
    join_path_object,
    stored_batch,
    task_listing_sql,
    tasks_from_rows,
)
from ._sqlite_bulk import PreparedResults, insert_results, prepare_results
from ._sqlite_rows import in_transaction, on_connection_thread
from ._sqlite_streams import SqliteStreams
from ._store import (
    BatchOutcome,
    JobSummary,
    NotFoundError,
    PruneReport,
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


class SqliteStore(SqliteStreams):
    """The durable store: a SQLite database file (created if missing)."""

    async def _repeated(self, batch: ResultBatch, digest: str) -> BatchOutcome:
        """A duplicate if the batch stored under ``batch``'s key is the same."""
        if digest == batch.digest:
            return BatchOutcome(0, True)
        args = (batch.taskid, batch.seq)
        async with self._w.execute(
            "SELECT jobid, task, queue FROM tasks WHERE id = ?", args[:1]
        ) as cursor:
            header = await cursor.fetchone()
        assert header is not None  # the batch row came with its task's
        async with self._w.execute(
            "SELECT state, path, extra FROM results WHERE taskid = ? AND seq = ?"
            " ORDER BY idx",
            args,
        ) as cursor:
            rows = await cursor.fetchall()
        return repeated_batch(stored_batch(batch, digest, header, rows), batch)

    async def add_batch(self, batch: ResultBatch) -> BatchOutcome:
        # The rows are prepared here, outside the lock and off the writer's
        # thread (see _sqlite_bulk.PreparedPaths).
        prepared = prepare_results(batch, self._bulk)
        async with self._write_lock:
            # The lookup and the whole transaction in one trip to the writer's
            # thread (see on_connection_thread): each statement awaited apart
            # cost the hub a trip, eight per batch.
            stored_digest = await on_connection_thread(
                self._w, lambda conn: _insert_batch(conn, batch, prepared)
            )
            if stored_digest is not None:
                return await self._repeated(batch, stored_digest)
        return BatchOutcome(batch.count, False)

    async def complete_task(
        self, taskid: str, batches: int, payload: Any, header: TaskHeader | None
    ) -> TaskSummary:
        w = self._w
        async with self._write_lock:
            async with w.execute(
                "SELECT seq FROM batches WHERE taskid = ?", (taskid,)
            ) as cursor:
                present = {row[0] async for row in cursor}
            error = missing_batches_error(taskid, batches, present)
            if error is not None:
                raise error
            async with w.execute(
                "SELECT 1 FROM tasks WHERE id = ?", (taskid,)
            ) as cursor:
                known = await cursor.fetchone() is not None
            if not known and header is None:
                raise unknown_task_error(taskid)
            async with self._transaction():
                now = utc_now()
                if not known:
                    assert header is not None
                    await w.execute(
                        "INSERT INTO tasks (id, jobid, job_key, task, queue, started)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            taskid,
                            *jobid_columns(header.jobid),
                            header.task,
                            header.queue,
                            now,
                        ),
                    )
                await w.execute(
                    "UPDATE tasks SET finished = ?, payload = ?"
                    " WHERE id = ? AND finished IS NULL",
                    (now, json.dumps(payload), taskid),
                )
        return await self.get_task(taskid)

    async def reset_task(self, taskid: str) -> int:
        w = self._w
        async with self._write_lock, self._transaction():
            async with w.execute(
                "SELECT finished, batches FROM tasks WHERE id = ?", (taskid,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return 0
            if row[0] is not None:
                raise TaskCompletedError(
                    f"task {taskid!r} is completed; cannot reset it"
                )
            await w.execute("DELETE FROM results WHERE taskid = ?", (taskid,))
            await w.execute("DELETE FROM batches WHERE taskid = ?", (taskid,))
            await w.execute("DELETE FROM task_counts WHERE taskid = ?", (taskid,))
            await w.execute("DELETE FROM tasks WHERE id = ?", (taskid,))
            return int(row[1])

    async def get_task(self, taskid: str) -> TaskSummary:
        async with self._r.execute(f"{TASK_QUERY} WHERE t.id = ?", (taskid,)) as cursor:
            tasks = tasks_from_rows(await cursor.fetchall())
        if not tasks:
            raise NotFoundError(f"no task {taskid!r}")
        return tasks[0]

    async def get_job(self, jobid: str) -> list[TaskSummary]:
        async with self._r.execute(
            f"{TASK_QUERY} WHERE t.job_key = ? ORDER BY t.started, t.id", (jobid,)
        ) as cursor:
            return tasks_from_rows(await cursor.fetchall())

    async def list_tasks(
        self, where: TaskFilter, offset: int, limit: int
    ) -> tuple[int, list[TaskSummary]]:
        count_sql, page_sql, args = task_listing_sql(where, "?")
        # Two statements, not one transaction on the shared reader: other
        # requests' reads would run inside it and miss writes committed since.
        # A task stored between them may be counted and not yet on the page.
        total = (await self._fetchone(count_sql, tuple(args)))[0]
        async with self._r.execute(page_sql, (*args, limit, offset)) as cursor:
            return int(total), tasks_from_rows(await cursor.fetchall())

    async def list_jobs(
        self, state: TaskState | None, offset: int, limit: int
    ) -> tuple[int, list[JobSummary]]:
        count_sql, page_sql = job_listing_sql(state, "?")
        total = (await self._fetchone(count_sql, ()))[0]
        async with self._r.execute(page_sql, (limit, offset)) as cursor:
            return int(total), jobs_from_rows(await cursor.fetchall())

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
            "SELECT seq, idx, state, path, extra FROM results WHERE taskid = ?"
            " AND (seq > ? OR (seq = ? AND idx > ?))"
        )
        args: tuple[Any, ...] = (taskid, seq, seq, idx)
        if state is not None:
            sql += " AND state = ?"
            args += (state,)
        async with self._r.execute(
            sql + " ORDER BY seq, idx LIMIT ?", (*args, limit + 1)
        ) as cursor:
            rows = list(await cursor.fetchall())
        more = len(rows) > limit
        rows = rows[:limit]
        results = [result_json(s, join_path_object(p, e)) for _, _, s, p, e in rows]
        last = (rows[-1][0], rows[-1][1]) if more else None
        return ResultsPage(results, last)

    # -- retention (see ._retention) -----------------------------------------

    async def delete_job(self, jobid: str, *, force: bool = False) -> PruneReport:
        async with self._write_lock, self._transaction():
            async with self._w.execute(
                "SELECT id, finished, payload FROM tasks WHERE job_key = ?", (jobid,)
            ) as cursor:
                rows = list(await cursor.fetchall())
            check_deletable(jobid, [(r[0], r[1]) for r in rows], force=force)
            streams = referenced_streams(json.loads(r[2]) for r in rows if r[2])
            tasks = await self._delete(delete_tasks_sql("job_key = ?"), (jobid,))
            deleted = 0
            for stream_id in sorted(streams):
                deleted += await self._delete(
                    delete_streams_sql("id = ?"), (stream_id,)
                )
            return PruneReport(tasks, deleted)

    async def prune(self, before: str) -> PruneReport:
        async with self._write_lock, self._transaction():
            tasks = await self._delete(
                delete_tasks_sql("finished IS NOT NULL AND finished < ?"), (before,)
            )
            streams = await self._delete(
                delete_streams_sql("closed AND created < ?"), (before,)
            )
            return PruneReport(tasks, streams)

    async def _delete(self, statements: list[str], args: tuple[Any, ...]) -> int:
        """Run ``statements``; the row count of the last one."""
        count = 0
        for statement in statements:
            async with self._w.execute(statement, args) as cursor:
                count = cursor.rowcount
        return count


def _insert_batch(
    conn: sqlite3.Connection, batch: ResultBatch, prepared: PreparedResults
) -> str | None:
    """Store ``batch`` in one transaction, on the writer's thread.

    Returns the digest already stored under the batch's key (nothing written),
    or None once the batch is committed; a completed task raises.
    """
    row = conn.execute(
        "SELECT b.digest, t.finished FROM tasks t LEFT JOIN batches b"
        " ON b.taskid = t.id AND b.seq = ? WHERE t.id = ?",
        (batch.seq, batch.taskid),
    ).fetchone()
    if row is not None and row[0] is not None:
        return str(row[0])
    if row is not None and row[1] is not None:
        raise TaskCompletedError(
            f"task {batch.taskid!r} is completed; batch {batch.seq} is new"
        )

    def write() -> None:
        if row is None:
            conn.execute(
                "INSERT INTO tasks (id, jobid, job_key, task, queue, started)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    batch.taskid,
                    *jobid_columns(batch.jobid),
                    batch.task,
                    batch.queue,
                    utc_now(),
                ),
            )
        conn.execute(
            "INSERT INTO batches VALUES (?, ?, ?)",
            (batch.taskid, batch.seq, batch.digest),
        )
        insert_results(conn, batch.taskid, batch.seq, prepared)
        conn.executemany(
            "INSERT INTO task_counts VALUES (?, ?, ?) ON CONFLICT"
            " (taskid, state) DO UPDATE SET count = count + excluded.count",
            count_rows(batch),
        )
        conn.execute(
            "UPDATE tasks SET batches = batches + 1 WHERE id = ?", (batch.taskid,)
        )

    in_transaction(conn, write)
    return None
