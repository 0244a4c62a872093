"""The SQLite store's tables, and path objects and task summaries as rows of them.

Path objects are stored as their ``path`` plus, only when there are other keys, a
JSON text of the rest: the common bare ``{"path": ...}`` costs no serialisation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import aiosqlite

from .._paths import STATES, PathObject
from ._store import ResultBatch, TaskSummary

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY, count INTEGER NOT NULL, closed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_paths (
    stream TEXT NOT NULL, pos INTEGER NOT NULL, path TEXT NOT NULL, extra TEXT,
    PRIMARY KEY (stream, pos)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, jobid TEXT, job_key TEXT, task TEXT NOT NULL, queue TEXT,
    batches INTEGER NOT NULL DEFAULT 0,
    {", ".join(f"{s} INTEGER NOT NULL DEFAULT 0" for s in STATES)},
    started TEXT NOT NULL, finished TEXT, payload TEXT
);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks (job_key);
CREATE TABLE IF NOT EXISTS batches (
    taskid TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (taskid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
    taskid TEXT NOT NULL, seq INTEGER NOT NULL, idx INTEGER NOT NULL,
    state TEXT NOT NULL, path TEXT NOT NULL, extra TEXT,
    PRIMARY KEY (taskid, seq, idx)
) WITHOUT ROWID;
"""

# The columns task_from_row() reads, in its order.
TASK_COLUMNS = (
    "id, jobid, task, queue, batches, "
    + ", ".join(STATES)
    + ", started, finished, payload"
)


def split_path_object(obj: PathObject) -> tuple[str, str | None]:
    """The ``path`` and ``extra`` columns of a path object."""
    if len(obj) == 1:
        return obj["path"], None
    rest = {k: v for k, v in obj.items() if k != "path"}
    return obj["path"], json.dumps(rest, separators=(",", ":"))


def join_path_object(path: str, extra: str | None) -> PathObject:
    """The path object stored as ``path`` and ``extra``."""
    return {"path": path} if extra is None else {"path": path, **json.loads(extra)}


def result_rows(batch: ResultBatch) -> Iterator[tuple[Any, ...]]:
    """The ``results`` rows of a batch, numbered in the order received."""
    index = 0
    for state, objs in batch.items.items():
        for obj in objs:
            yield (batch.taskid, batch.seq, index, state, *split_path_object(obj))
            index += 1


def task_from_row(row: Iterable[Any]) -> TaskSummary:
    """A task summary from a row of :data:`TASK_COLUMNS`."""
    values = list(row)
    taskid, jobid, task, queue, batches = values[:5]
    counts = values[5 : 5 + len(STATES)]
    started, finished, payload = values[5 + len(STATES) :]
    return TaskSummary(
        taskid,
        None if jobid is None else json.loads(jobid),
        task,
        queue,
        dict(zip(STATES, counts, strict=True)),
        batches,
        started,
        finished,
        None if payload is None else json.loads(payload),
    )


class Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK if the block raises."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        await self._conn.execute("BEGIN IMMEDIATE")

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self._conn.execute("COMMIT")
        else:
            await self._conn.execute("ROLLBACK")
