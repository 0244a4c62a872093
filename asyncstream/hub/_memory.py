"""Stores that keep nothing on disk: :class:`MemoryStore` and :class:`DiscardStore`."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

from .._paths import PathObject, State
from ._memory_tables import MemoryTables, StreamRecord, TaskRecord
from ._store import (
    BatchOutcome,
    JobSummary,
    NotFoundError,
    ResultBatch,
    ResultPosition,
    ResultsPage,
    StreamClosedError,
    StreamInfo,
    TaskCompletedError,
    TaskFilter,
    TaskHeader,
    TaskState,
    TaskSummary,
    empty_summary,
    newest_first,
    result_json,
    summarise_jobs,
    utc_now,
)
from ._store_rules import (
    append_decision,
    missing_batches_error,
    repeated_append,
    repeated_batch,
    unknown_task_error,
)


class MemoryStore(MemoryTables):
    """Everything in dicts: fast, and gone when the process ends. For tests."""

    def __repr__(self) -> str:
        return f"<MemoryStore streams={len(self._streams)} tasks={len(self._tasks)}>"

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def watch_streams(self, on_change: Callable[[str], None]) -> None:
        """Nothing to watch: only this process changes this store."""

    def _stream(self, stream_id: str) -> StreamRecord:
        try:
            return self._streams[stream_id]
        except KeyError:
            raise NotFoundError(f"no stream {stream_id!r}") from None

    @staticmethod
    def _info(stream_id: str, stream: StreamRecord) -> StreamInfo:
        return StreamInfo(stream_id, len(stream.paths), stream.closed)

    async def create_stream(self, paths: list[PathObject]) -> StreamInfo:
        stream_id = uuid.uuid4().hex
        self._streams[stream_id] = stream = StreamRecord(list(paths))
        return self._info(stream_id, stream)

    async def append_stream(
        self, stream_id: str, paths: list[PathObject], offset: int | None = None
    ) -> StreamInfo:
        stream = self._stream(stream_id)
        info = self._info(stream_id, stream)
        if append_decision(info, offset, len(paths)) == "compare":
            assert offset is not None
            stored = stream.paths[offset : offset + len(paths)]
            return repeated_append(info, offset, stored, paths)
        if stream.closed:
            raise StreamClosedError(f"stream {stream_id!r} is closed")
        stream.paths.extend(paths)
        return self._info(stream_id, stream)

    async def close_stream(self, stream_id: str) -> StreamInfo:
        stream = self._stream(stream_id)
        stream.closed = True
        return self._info(stream_id, stream)

    async def read_stream(
        self, stream_id: str, offset: int, limit: int
    ) -> tuple[list[PathObject], StreamInfo]:
        stream = self._stream(stream_id)
        return stream.paths[offset : offset + limit], self._info(stream_id, stream)

    async def add_batch(self, batch: ResultBatch) -> BatchOutcome:
        task = self._tasks.get(batch.taskid)
        if task is not None:
            stored = task.batches.get(batch.seq)
            if stored is not None:
                return repeated_batch(stored, batch)
            if task.summary.finished is not None:
                raise TaskCompletedError(
                    f"task {batch.taskid!r} is completed; batch {batch.seq} is new"
                )
        else:
            summary = TaskSummary(
                batch.taskid,
                batch.jobid,
                batch.task,
                batch.queue,
                empty_summary(),
                0,
                utc_now(),
            )
            task = self._tasks[batch.taskid] = TaskRecord(summary)
        task.batches[batch.seq] = batch
        task.summary.batches += 1
        for state, objs in batch.items.items():
            task.summary.summary[state] += len(objs)
        return BatchOutcome(batch.count, False)

    def _task_for_completion(
        self, taskid: str, header: TaskHeader | None, batches: int
    ) -> TaskRecord:
        """The task a completion finishes, made from ``header`` if unknown."""
        task = self._tasks.get(taskid)
        if task is not None:
            return task
        if header is None:
            raise unknown_task_error(taskid)
        summary = TaskSummary(
            taskid,
            header.jobid,
            header.task,
            header.queue,
            empty_summary(),
            batches,
            utc_now(),
        )
        task = self._tasks[taskid] = TaskRecord(summary)
        return task

    async def complete_task(
        self, taskid: str, batches: int, payload: Any, header: TaskHeader | None
    ) -> TaskSummary:
        task = self._tasks.get(taskid)
        present = set(task.batches) if task else set()
        error = missing_batches_error(taskid, batches, present)
        if error is not None:
            raise error
        task = self._task_for_completion(taskid, header, 0)
        if task.summary.finished is None:
            task.summary.finished = utc_now()
            task.summary.payload = payload
        return task.summary

    async def reset_task(self, taskid: str) -> int:
        task = self._tasks.get(taskid)
        if task is None:
            return 0
        if task.summary.finished is not None:
            raise TaskCompletedError(f"task {taskid!r} is completed; cannot reset it")
        del self._tasks[taskid]
        return len(task.batches)

    async def get_task(self, taskid: str) -> TaskSummary:
        try:
            return self._tasks[taskid].summary
        except KeyError:
            raise NotFoundError(f"no task {taskid!r}") from None

    async def get_job(self, jobid: str) -> list[TaskSummary]:
        return [
            t.summary for t in self._tasks.values() if str(t.summary.jobid) == jobid
        ]

    async def list_tasks(
        self, where: TaskFilter, offset: int, limit: int
    ) -> tuple[int, list[TaskSummary]]:
        found = newest_first(
            [t.summary for t in self._tasks.values() if where.matches(t.summary)]
        )
        return len(found), found[offset : offset + limit]

    async def list_jobs(
        self, state: TaskState | None, offset: int, limit: int
    ) -> tuple[int, list[JobSummary]]:
        jobs = summarise_jobs([t.summary for t in self._tasks.values()])
        found = [j for j in jobs if state is None or j.state == state]
        return len(found), found[offset : offset + limit]

    async def read_results(
        self,
        taskid: str,
        state: State | None,
        after: ResultPosition | None,
        limit: int,
    ) -> ResultsPage:
        task = self._tasks.get(taskid)
        if task is None:
            raise NotFoundError(f"no task {taskid!r}")
        results: list[dict[str, Any]] = []
        last: ResultPosition = (-1, -1)
        for seq in sorted(task.batches):
            if after is not None and seq < after[0]:
                continue
            flat = itertools.chain.from_iterable(
                ((s, obj) for obj in objs)
                for s, objs in task.batches[seq].items.items()
            )
            for index, (s, obj) in enumerate(flat):
                if after is not None and (seq, index) <= after:
                    continue
                if state is not None and s != state:
                    continue
                if len(results) == limit:
                    return ResultsPage(results, last)
                results.append(result_json(s, obj))
                last = (seq, index)
        return ResultsPage(results, None)


class DiscardStore(MemoryStore):
    """Validates like the others and keeps no results: the ingest ceiling.

    Streams still work (they are small and a benchmark may read them); result
    batches are counted as accepted and forgotten. Only their seqs are kept, a few
    ints per task, so that a repeated seq answers as a duplicate (its content is
    not compared) and completing a task checks that every batch arrived.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seqs: dict[str, set[int]] = {}

    def __repr__(self) -> str:
        return "<DiscardStore>"

    async def add_batch(self, batch: ResultBatch) -> BatchOutcome:
        seqs = self._seqs.setdefault(batch.taskid, set())
        if batch.seq in seqs:
            return BatchOutcome(0, True)
        task = self._tasks.get(batch.taskid)
        if task is not None and task.summary.finished is not None:
            raise TaskCompletedError(
                f"task {batch.taskid!r} is completed; batch {batch.seq} is new"
            )
        seqs.add(batch.seq)
        return BatchOutcome(batch.count, False)

    async def complete_task(
        self, taskid: str, batches: int, payload: Any, header: TaskHeader | None
    ) -> TaskSummary:
        present = self._seqs.get(taskid, set())
        error = missing_batches_error(taskid, batches, present)
        if error is not None:
            raise error
        if header is None and present and taskid not in self._tasks:
            # Its batches announced it, but their headers were not kept.
            header = TaskHeader(None, "", None)
        task = self._task_for_completion(taskid, header, len(present))
        if task.summary.finished is None:
            task.summary.finished = utc_now()
            task.summary.payload = payload
        return task.summary

    async def reset_task(self, taskid: str) -> int:
        if taskid in self._tasks:
            return await super().reset_task(taskid)  # completed: refused
        return len(self._seqs.pop(taskid, ()))
