"""What the hub stores, and the small interface every store implements.

The HTTP layer validates and parses; a store only persists and answers. Each store
method is one atomic step: a batch is stored whole or not at all, and a stored batch
is durable by the time ``add_batch`` returns (for stores that persist at all).

Store errors (:class:`StoreError` and subclasses) carry what the HTTP layer needs
to name the problem; the app maps them to status codes. The decisions the stores
share (a repeated batch, a missing seq, an append's offset) are in
:mod:`._store_rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from .._paths import PathObject, State
from ._task_records import (
    JobSummary,
    TaskFilter,
    TaskHeader,
    TaskState,
    TaskSummary,
    empty_summary,
    newest_first,
    result_json,
    summarise_jobs,
)

__all__ = [
    "JobSummary",
    "TaskFilter",
    "TaskHeader",
    "TaskState",
    "TaskSummary",
    "empty_summary",
    "newest_first",
    "result_json",
    "summarise_jobs",
]

# A position in a task's stored results: (batch seq, index within the batch).
ResultPosition = tuple[int, int]


def utc_now() -> str:
    """The current time as timezone-aware ISO-8601, as the hub reports times."""
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class ResultBatch:
    """One validated batch of results, as posted for ``taskid`` with number ``seq``.

    ``items`` holds only the states that have items, each with its path objects in
    the order received. ``digest`` identifies the request body: equal digests mean
    equal batches; unequal digests are compared by content before calling it a
    conflict (a resend may serialise the same batch with keys in another order).
    """

    taskid: str
    seq: int
    jobid: int | str | None
    task: str
    queue: str | None
    items: dict[State, list[PathObject]]
    digest: str
    count: int

    def same_content(self, other: ResultBatch) -> bool:
        """True if ``other`` carries the same header and items as this batch."""
        return (
            self.jobid == other.jobid
            and self.task == other.task
            and self.queue == other.queue
            and self.items == other.items
        )


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What ``add_batch`` did: ``accepted`` items (0 for a duplicate)."""

    accepted: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """An input stream's state: how many paths were appended, and whether it ended."""

    id: str
    count: int
    closed: bool
    # True when an append named an offset whose chunk was already stored.
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ResultsPage:
    """A page of stored results; ``after`` is where the next page starts, or None."""

    results: list[dict[str, Any]]
    after: ResultPosition | None


@dataclass(frozen=True, slots=True)
class PruneReport:
    """How many tasks (with their results) and input streams were deleted."""

    tasks: int
    streams: int

    def to_json(self) -> dict[str, int]:
        return {"tasks": self.tasks, "streams": self.streams}


class StoreError(Exception):
    """A store refused an operation; ``code`` is the wire error code."""

    code = "store_error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFoundError(StoreError):
    code = "not_found"


class IdempotencyConflictError(StoreError):
    code = "idempotency_conflict"


class MissingBatchesError(StoreError):
    code = "missing_batches"


class StreamClosedError(StoreError):
    code = "stream_closed"


class StreamOffsetError(StoreError):
    code = "offset_conflict"


class TaskCompletedError(StoreError):
    code = "task_completed"


class UnknownTaskError(StoreError):
    code = "unknown_task"


class JobRunningError(StoreError):
    code = "job_running"


@runtime_checkable
class HubStore(Protocol):
    """Where the hub keeps input streams and task results."""

    async def open(self) -> None:
        """Prepare the store; calling it on an open store does nothing."""

    async def close(self) -> None:
        """Release the store; a second close does nothing."""

    def watch_streams(self, on_change: Callable[[str], None]) -> None:
        """Call ``on_change(stream_id)`` when another process changes a stream.

        Called before :meth:`open`. Long-polling readers are woken in their own
        process by the routes; a store shared by several hub processes must also
        tell this process of appends and closes committed by the others. A store
        of one process has nothing to tell and ignores it.
        """

    async def create_stream(self, paths: list[PathObject]) -> StreamInfo:
        """Create an open stream holding ``paths``."""

    async def append_stream(
        self, stream_id: str, paths: list[PathObject], offset: int | None = None
    ) -> StreamInfo:
        """Append ``paths`` to an open stream (:class:`StreamClosedError` if closed).

        With ``offset``, the chunk goes there or nowhere: a repeat of a stored
        chunk is a no-op answered with ``duplicate``, see :func:`append_decision`.
        """

    async def close_stream(self, stream_id: str) -> StreamInfo:
        """End a stream; closing a closed stream does nothing."""

    async def read_stream(
        self, stream_id: str, offset: int, limit: int
    ) -> tuple[list[PathObject], StreamInfo]:
        """Up to ``limit`` paths from position ``offset``, and the stream's state."""

    async def add_batch(self, batch: ResultBatch) -> BatchOutcome:
        """Store a batch atomically, or report it as a duplicate of a stored one."""

    async def complete_task(
        self, taskid: str, batches: int, payload: Any, header: TaskHeader | None
    ) -> TaskSummary:
        """Mark a task finished once batches ``0..batches-1`` are all stored.

        A task the hub has not seen (no batch) is created from ``header``; without
        one it is refused with :func:`unknown_task_error`. A known task keeps the
        identity its first batch gave it.
        """

    async def reset_task(self, taskid: str) -> int:
        """Drop an incomplete task's batches, results and summary in one step.

        Returns how many batches were dropped (0 for an unknown task); raises
        :class:`TaskCompletedError` if the task is complete. For a task that is
        run again from the start (a redelivered Celery message): its batch
        boundaries may differ, so its old ``<taskid>:<seq>`` keys must go.
        """

    async def get_task(self, taskid: str) -> TaskSummary:
        """The task's summary (:class:`NotFoundError` if unknown)."""

    async def get_job(self, jobid: str) -> list[TaskSummary]:
        """Every task of the job, oldest first (empty if none)."""

    async def read_results(
        self,
        taskid: str,
        state: State | None,
        after: ResultPosition | None,
        limit: int,
    ) -> ResultsPage:
        """Up to ``limit`` stored results of a task after position ``after``."""

    async def list_tasks(
        self, where: TaskFilter, offset: int, limit: int
    ) -> tuple[int, list[TaskSummary]]:
        """How many tasks match ``where``, and up to ``limit`` of them from
        ``offset`` in :func:`newest_first` order."""

    async def list_jobs(
        self, state: TaskState | None, offset: int, limit: int
    ) -> tuple[int, list[JobSummary]]:
        """How many jobs there are (running: some task is; completed: all are),
        and up to ``limit`` of them from ``offset`` in :func:`summarise_jobs`
        order."""

    async def delete_job(self, jobid: str, *, force: bool = False) -> PruneReport:
        """Delete every task of the job with its batches, results and counts, and
        the input streams their payloads name, in one step.

        :class:`NotFoundError` for a job without tasks; :class:`JobRunningError`
        if a task of it is running, unless ``force`` (see :mod:`._retention`).
        """

    async def prune(self, before: str) -> PruneReport:
        """Delete the completed tasks finished before ``before`` (ISO-8601, as
        :func:`utc_now` writes) with all they own, and the closed streams
        created before it."""
