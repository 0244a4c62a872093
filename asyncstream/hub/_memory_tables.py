"""The memory store's tables, and the retention that deletes from them.

:class:`~._memory.MemoryStore` answers the protocol over these dicts; deleting
a job or pruning by age (see :mod:`._retention`) only needs the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._paths import PathObject
from ._retention import check_deletable, referenced_streams
from ._store import PruneReport, ResultBatch, TaskSummary, utc_now


@dataclass(slots=True)
class StreamRecord:
    paths: list[PathObject] = field(default_factory=list)
    closed: bool = False
    created: str = field(default_factory=utc_now)


@dataclass(slots=True)
class TaskRecord:
    summary: TaskSummary
    batches: dict[int, ResultBatch] = field(default_factory=dict)


class MemoryTables:
    """Input streams and tasks by id, in dicts."""

    def __init__(self) -> None:
        self._streams: dict[str, StreamRecord] = {}
        self._tasks: dict[str, TaskRecord] = {}

    async def delete_job(self, jobid: str, *, force: bool = False) -> PruneReport:
        tasks = [
            t.summary
            for t in self._tasks.values()
            if t.summary.jobid is not None and str(t.summary.jobid) == jobid
        ]
        check_deletable(jobid, [(t.id, t.finished) for t in tasks], force=force)
        streams = referenced_streams(t.payload for t in tasks)
        for task in tasks:
            del self._tasks[task.id]
        gone = [s for s in streams if self._streams.pop(s, None) is not None]
        return PruneReport(len(tasks), len(gone))

    async def prune(self, before: str) -> PruneReport:
        old = [
            taskid
            for taskid, task in self._tasks.items()
            if task.summary.finished is not None and task.summary.finished < before
        ]
        for taskid in old:
            del self._tasks[taskid]
        closed = [
            stream_id
            for stream_id, stream in self._streams.items()
            if stream.closed and stream.created < before
        ]
        for stream_id in closed:
            del self._streams[stream_id]
        return PruneReport(len(old), len(closed))
