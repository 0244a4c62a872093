"""Retention: deleting a job's data, and completed tasks past an age.

Streams and tasks otherwise grow without bound (one busy client adds megabytes a
second). Two operations, the same in every store:

- :meth:`~._store.HubStore.delete_job`: every task of a job, with its batches,
  results and counts, and the input streams its tasks' payloads name. A job with
  a running task is refused unless forced: its next batch would start a new,
  partial record of the task.
- :meth:`~._store.HubStore.prune`: every completed task finished before a
  cutoff, and every closed stream created before it.

The decisions and the SQL (shared by both SQL stores) live here, without I/O;
:func:`keep_pruning` runs a prune periodically in a hub's lifespan.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio
from fastapi import FastAPI

from ._store import HubStore, JobRunningError, NotFoundError

logger = logging.getLogger("asyncstream.hub.retention")

# How often ``hub serve --retain-days`` prunes: often enough that the store
# stays near its bound, rarely enough that a prune's write lock is no burden.
DEFAULT_PRUNE_INTERVAL = 3600.0


def cutoff(days: float, now: datetime | None = None) -> str:
    """The ISO-8601 time ``days`` before ``now``, as the stores keep times."""
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    return ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat()


def check_deletable(
    jobid: str, tasks: Sequence[tuple[str, str | None]], *, force: bool
) -> None:
    """Raise unless the job whose ``(taskid, finished)`` are ``tasks`` may go."""
    if not tasks:
        raise NotFoundError(f"no job {jobid!r}")
    running = [taskid for taskid, finished in tasks if finished is None]
    if running and not force:
        raise JobRunningError(
            f"job {jobid!r} has {len(running)} running task(s), e.g."
            f" {running[0]!r}: wait for them, or force the deletion",
            running=running[:20],
        )


def referenced_streams(payloads: Iterable[Any]) -> set[str]:
    """The ids of the input streams that completion payloads name.

    A payload keeps the task's inputs in ``status.input_paths``, where a stream
    is ``{"stream": "/api/streams/<id>/paths/", ...}`` (or an absolute URL).
    """
    found: set[str] = set()
    for payload in payloads:
        status = payload.get("status") if isinstance(payload, dict) else None
        inputs = status.get("input_paths") if isinstance(status, dict) else None
        for item in inputs if isinstance(inputs, list) else ():
            url = item.get("stream") if isinstance(item, dict) else None
            if isinstance(url, str):
                parts = urlsplit(url).path.strip("/").split("/")
                if len(parts) >= 3 and parts[-3:-2] == ["streams"]:
                    found.add(parts[-2])
    return found


def delete_tasks_sql(where: str) -> list[str]:
    """Statements deleting the tasks matching ``where`` (over ``tasks``) and all
    they own, each taking the arguments of ``where``; the last one deletes the
    task rows, so its row count is the number of tasks."""
    chosen = f"SELECT id FROM tasks WHERE {where}"
    owned = [
        f"DELETE FROM {table} WHERE taskid IN ({chosen})"
        for table in ("results", "batches", "task_counts")
    ]
    return [*owned, f"DELETE FROM tasks WHERE {where}"]


def delete_streams_sql(where: str) -> list[str]:
    """Statements deleting the streams matching ``where`` and their paths; the
    last one's row count is the number of streams."""
    chosen = f"SELECT id FROM streams WHERE {where}"
    return [
        f"DELETE FROM stream_paths WHERE stream IN ({chosen})",
        f"DELETE FROM streams WHERE {where}",
    ]


async def prune_forever(
    store: HubStore,
    days: float,
    *,
    interval: float = DEFAULT_PRUNE_INTERVAL,
    sleep: Callable[[float], Any] = anyio.sleep,
) -> None:
    """Prune ``store`` of what is older than ``days``, now and every ``interval``.

    A failed prune is logged and tried again at the next interval: retention
    must not stop the hub.
    """
    while True:
        try:
            report = await store.prune(cutoff(days))
        except Exception:
            logger.exception("retention: pruning older than %s days failed", days)
        else:
            if report.tasks or report.streams:
                logger.info(
                    "retention: deleted %d tasks and %d streams older than %s days",
                    report.tasks,
                    report.streams,
                    days,
                )
        await sleep(interval)


def keep_pruning(
    app: FastAPI,
    store: HubStore,
    days: float,
    *,
    interval: float = DEFAULT_PRUNE_INTERVAL,
) -> FastAPI:
    """Run :func:`prune_forever` for as long as ``app`` runs (its lifespan)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state, anyio.create_task_group() as group:
            group.start_soon(lambda: prune_forever(store, days, interval=interval))
            try:
                yield state
            finally:
                group.cancel_scope.cancel()

    app.router.lifespan_context = lifespan
    return app
