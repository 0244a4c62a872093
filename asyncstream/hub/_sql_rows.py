"""Path objects and task summaries as rows of the SQL stores' tables.

Shared by the SQLite and PostgreSQL stores, whose tables have one shape (see
:mod:`._migrations`). Path objects are stored as their ``path`` plus, only when
there are other keys, a JSON text of the rest: the common bare ``{"path": ...}``
costs no serialisation.

A path that is not UTF-8 (surrogate escapes of its bytes, see
:func:`asyncstream._paths.is_wire_text`) fits no text column of either database:
its ``path`` column holds a readable stand-in (each such byte as U+FFFD) and the
exact path goes into ``extra`` as ASCII JSON (``\\udcXX``), whose ``"path"``
key wins when the object is read back. ``extra`` never has a ``"path"`` key
otherwise, so rows written before this need no migration.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from .._batch_body import encode_value
from .._paths import PathObject, State, is_unicode
from ._store import (
    JobSummary,
    ResultBatch,
    TaskFilter,
    TaskState,
    TaskSummary,
    empty_summary,
)

# Tasks with their counts, one row per task and state (one statement, so the
# counts and ``batches`` come from one snapshot); read by tasks_from_rows().
TASK_QUERY = (
    "SELECT t.id, t.jobid, t.task, t.queue, t.batches, t.started, t.finished,"
    " t.payload, c.state, c.count FROM tasks t"
    " LEFT JOIN task_counts c ON c.taskid = t.id"
)


# The standard library's compact encoder, built once: ``json.dumps`` with
# ``separators`` builds a new encoder at every call, per stored result.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def split_path_object(obj: PathObject) -> tuple[str, str | None]:
    """The ``path`` and ``extra`` columns of a path object."""
    path: str = obj["path"]
    if isinstance(path, str) and not is_unicode(path):
        # ensure_ascii (the default) writes the surrogate escapes as \udcXX.
        stand_in = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return stand_in, _COMPACT_JSON.encode(obj)
    if len(obj) == 1:
        return path, None
    rest = {k: v for k, v in obj.items() if k != "path"}
    # orjson, or the standard library for what it refuses: reads back the same.
    return path, encode_value(rest).decode()


def join_path_object(path: str, extra: str | None) -> PathObject:
    """The path object stored as ``path`` and ``extra`` (whose ``path`` wins)."""
    return {"path": path} if extra is None else {"path": path, **json.loads(extra)}


def path_objects(rows: Iterable[Sequence[Any]]) -> list[PathObject]:
    """The path objects stored as ``(path, extra)`` rows, in order."""
    # Inlined for the bare path (the common row): a call per row is a
    # noticeable share of reading a page of thousands.
    return [
        {"path": path} if extra is None else join_path_object(path, extra)
        for path, extra in rows
    ]


def bare_path(obj: PathObject) -> str | None:
    """The ``path`` of an object that is only an ASCII path (stored as is,
    without ``extra``), else None."""
    if len(obj) == 1:
        path = obj["path"]
        if type(path) is str and path.isascii():
            return path
    return None


_PATH = operator.itemgetter("path")


def bare_paths(objs: list[PathObject]) -> list[str] | None:
    """Every object's :func:`bare_path` if each has one, else None; at C speed,
    for a batch of plain results (95 against 178 us for 2000 objects)."""
    try:
        # Validated path objects all hold a "path"; one key apiece means
        # nothing else, and isascii() raises TypeError for a non-string.
        paths = list(map(_PATH, objs))
        if sum(map(len, objs)) == len(objs) and all(map(str.isascii, paths)):
            return paths
    except (KeyError, TypeError):
        pass
    return None


def result_rows(batch: ResultBatch) -> list[tuple[Any, ...]]:
    """The ``results`` rows of a batch, numbered in the order received."""
    taskid, seq = batch.taskid, batch.seq
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    index = 0
    for state, objs in batch.items.items():
        for obj in objs:
            path = bare_path(obj)
            if path is not None:
                append((taskid, seq, index, state, path, None))
            else:
                append((taskid, seq, index, state, *split_path_object(obj)))
            index += 1
    return rows


def count_rows(batch: ResultBatch) -> list[tuple[str, str, int]]:
    """The ``task_counts`` increments of a batch: (taskid, state, n) per state."""
    return [(batch.taskid, s, len(objs)) for s, objs in batch.items.items() if objs]


def jobid_columns(jobid: int | str | None) -> tuple[str | None, str | None]:
    """The ``jobid`` (JSON, keeps int or str) and ``job_key`` (lookup) columns."""
    return (None, None) if jobid is None else (json.dumps(jobid), str(jobid))


def tasks_from_rows(rows: Iterable[Sequence[Any]]) -> list[TaskSummary]:
    """Task summaries from rows of :data:`TASK_QUERY`, in the rows' order.

    Every known state is present, zero if it has no count; a state stored by a
    newer hub is shown as it is rather than dropped.
    """
    tasks: dict[str, TaskSummary] = {}
    for row in rows:
        taskid, jobid, task, queue, batches, started, finished, payload = row[:8]
        summary = tasks.get(taskid)
        if summary is None:
            summary = tasks[taskid] = TaskSummary(
                taskid,
                None if jobid is None else json.loads(jobid),
                task,
                queue,
                empty_summary(),
                int(batches),
                started,
                finished,
                None if payload is None else json.loads(payload),
            )
        state, count = row[8:10]
        if state is not None:
            summary.summary[state] = int(count)
    return list(tasks.values())


def stored_batch(
    batch: ResultBatch,
    digest: str,
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
) -> ResultBatch:
    """The batch stored under ``batch``'s key, from its task's ``(jobid, task,
    queue)`` columns and its ``(state, path, extra)`` result rows in order."""
    items: dict[State, list[PathObject]] = {}
    for state, path, extra in rows:
        items.setdefault(state, []).append(join_path_object(path, extra))
    jobid, task, queue = header
    return ResultBatch(
        batch.taskid,
        batch.seq,
        None if jobid is None else json.loads(jobid),
        task,
        queue,
        items,
        digest,
        sum(map(len, items.values())),
    )


def task_filter_sql(where: TaskFilter, mark: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause over ``tasks`` for ``where`` (``mark`` is the
    dialect's placeholder), and its arguments; the SQL twin of
    :meth:`TaskFilter.matches`."""
    clauses, args = ["TRUE"], []
    if where.jobid is not None:
        clauses.append(f"job_key = {mark}")
        args.append(where.jobid)
    if where.task is not None:
        clauses.append(f"task = {mark}")
        args.append(where.task)
    if where.state is not None:
        finished = "IS NULL" if where.state == "running" else "IS NOT NULL"
        clauses.append(f"finished {finished}")
    return " WHERE " + " AND ".join(clauses), args


def task_listing_sql(where: TaskFilter, mark: str) -> tuple[str, str, list[Any]]:
    """Two statements for a page of the task listing: the count of matches, and
    the page as :data:`TASK_QUERY` rows, taking ``args`` plus limit and offset.

    The page is chosen on ``tasks`` alone, through the ``(started, id)`` order
    of an index, before its counts are joined."""
    clause, args = task_filter_sql(where, mark)
    count = f"SELECT COUNT(*) FROM tasks{clause}"
    page = (
        f"{TASK_QUERY} WHERE t.id IN (SELECT id FROM tasks{clause}"
        f" ORDER BY started DESC, id DESC LIMIT {mark} OFFSET {mark})"
        " ORDER BY t.started DESC, t.id DESC"
    )
    return count, page, args


def job_listing_sql(state: TaskState | None, mark: str) -> tuple[str, str]:
    """The count of jobs in ``state`` and a page of them (limit and offset as
    arguments); rows of the page are read by :func:`jobs_from_rows`."""
    running = "SUM(CASE WHEN finished IS NULL THEN 1 ELSE 0 END)"
    having = {None: "", "running": f" HAVING {running} > 0"}.get(
        state, f" HAVING {running} = 0"
    )
    grouped = (
        f"SELECT job_key, COUNT(*) AS n, {running} AS running,"
        " MIN(started) AS started, MAX(finished) AS finished FROM tasks"
        f" WHERE job_key IS NOT NULL GROUP BY job_key{having}"
    )
    count = f"SELECT COUNT(*) FROM ({grouped}) AS jobs"
    page = (
        f"SELECT j.job_key, j.n, j.running, j.started, j.finished, c.state,"
        f" SUM(c.count) FROM ({grouped} ORDER BY started DESC, job_key DESC"
        f" LIMIT {mark} OFFSET {mark}) AS j"
        " LEFT JOIN tasks t ON t.job_key = j.job_key"
        " LEFT JOIN task_counts c ON c.taskid = t.id"
        " GROUP BY j.job_key, j.n, j.running, j.started, j.finished, c.state"
        " ORDER BY j.started DESC, j.job_key DESC"
    )
    return count, page


def jobs_from_rows(rows: Iterable[Sequence[Any]]) -> list[JobSummary]:
    """Job summaries from rows of :func:`job_listing_sql`, in the rows' order."""
    jobs: dict[str, JobSummary] = {}
    for job_key, n, running, started, finished, state, count in rows:
        job = jobs.get(job_key)
        if job is None:
            job = jobs[job_key] = JobSummary(
                job_key, int(n), int(running), empty_summary(), started, finished
            )
        if state is not None:
            job.summary[state] = int(count)
    return list(jobs.values())
