"""The PostgreSQL store's retention: deleting a job, pruning by age.

The statements are those of every SQL store (:mod:`._retention`). A job's task
rows are locked first (``FOR UPDATE``), so a batch of one of its tasks that
another hub process commits meanwhile waits, and the decision to delete holds.
"""

from __future__ import annotations

import json
from typing import Any

from ._postgres_streams import Conn, PostgresStreams
from ._retention import (
    check_deletable,
    delete_streams_sql,
    delete_tasks_sql,
    referenced_streams,
)
from ._store import PruneReport


class PostgresRetention(PostgresStreams):
    """:meth:`delete_job` and :meth:`prune` of :class:`~._postgres.PostgresStore`."""

    async def delete_job(self, jobid: str, *, force: bool = False) -> PruneReport:
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "SELECT id, finished, payload FROM tasks WHERE job_key = %s FOR UPDATE",
                (jobid,),
            )
            rows = await cursor.fetchall()
            check_deletable(jobid, [(r[0], r[1]) for r in rows], force=force)
            streams = referenced_streams(json.loads(r[2]) for r in rows if r[2])
            tasks = await _delete(conn, delete_tasks_sql("job_key = %s"), (jobid,))
            deleted = 0
            for stream_id in sorted(streams):
                sql = delete_streams_sql("id = %s")
                deleted += await _delete(conn, sql, (stream_id,))
            return PruneReport(tasks, deleted)

    async def prune(self, before: str) -> PruneReport:
        async with self._transaction() as conn:
            tasks = await _delete(
                conn,
                delete_tasks_sql("finished IS NOT NULL AND finished < %s"),
                (before,),
            )
            streams = await _delete(
                conn, delete_streams_sql("closed AND created < %s"), (before,)
            )
            return PruneReport(tasks, streams)


async def _delete(conn: Conn, statements: list[str], args: tuple[Any, ...]) -> int:
    """Run ``statements``; the row count of the last one."""
    count = 0
    for statement in statements:
        cursor = await conn.execute(statement, args)
        count = cursor.rowcount
    return count
