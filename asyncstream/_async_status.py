"""The async face of ``FileActionStatus``, and the seed's choice of status class.

The seed tells task authors to write::

    if stream_results:
        status = StreamTaskResults(taskname, input_paths, jobid, queue_name, taskid)
    else:
        status = FileActionStatus(taskname, input_paths, jobid, queue_name)

:func:`status_for_task` does that choice (and :func:`async_status_for_task` its
async twin), so a task body is the same whichever way the hub calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Unpack

from anyio.abc import AsyncResource

from ._exceptions import InvalidInputError
from ._paths import PathObject, State
from ._payload import TaskHeader
from .status import FileActionStatus
from .streamstatus import AsyncStreamTaskResults, StreamOptions, StreamTaskResults

__all__ = ["AsyncFileActionStatus", "async_status_for_task", "status_for_task"]


class AsyncFileActionStatus(AsyncResource):
    """:class:`FileActionStatus` with the async interface of the stream classes.

    Results stay in memory, so nothing here waits; the methods are coroutines so
    that a task body awaits ``add``/``dump`` whichever status it was given.
    """

    def __init__(
        self,
        taskname: str,
        input_paths: list[Any],
        jobid: Any,
        queue_name: str | None,
        *,
        started: datetime | None = None,
    ) -> None:
        self._status = FileActionStatus(
            taskname, input_paths, jobid, queue_name, started=started
        )

    @property
    def header(self) -> TaskHeader:
        """What the task was called with."""
        return self._status.header

    @property
    def summary(self) -> dict[State, int]:
        """How many paths were added per state so far."""
        return self._status.summary

    @property
    def dumped(self) -> bool:
        """True once ``dump()`` has been called."""
        return self._status.dumped

    async def add(
        self, key: str, path: str | PathObject, *, message: Any = None
    ) -> None:
        """Record that ``path`` ended in state ``key``."""
        self._status.add(key, path, message=message)

    async def add_many(self, key: str, items: Iterable[str | PathObject]) -> None:
        """Record that every path of ``items`` ended in state ``key``."""
        self._status.add_many(key, items)

    async def dump(self) -> dict[str, Any]:
        """Return the contract payload. Later calls return an equal payload."""
        return self._status.dump()

    async def aclose(self) -> None:
        """Nothing to deliver: results live in memory (interface parity)."""

    async def aabort(self) -> None:
        """Nothing to stop: results live in memory (interface parity)."""

    def __repr__(self) -> str:
        return f"<AsyncFileActionStatus {self._status!r}>"


def _require_taskid(taskid: object) -> str:
    if not isinstance(taskid, str) or not taskid:
        raise InvalidInputError(
            "stream_results=True needs the task's id (taskid=self.request.id in a"
            f" task defined with bind=True), got {taskid!r}"
        )
    return taskid


def status_for_task(
    stream_results: bool,
    taskname: str,
    input_paths: list[Any],
    jobid: Any,
    queue_name: str | None,
    *,
    taskid: str | None = None,
    **options: Unpack[StreamOptions],
) -> FileActionStatus | StreamTaskResults:
    """The seed's choice: :class:`StreamTaskResults` if the hub asked for streamed
    results (``stream_results=True``), else :class:`FileActionStatus`.

    ``options`` (hub location, batching knobs) only apply to the stream class.
    """
    if stream_results:
        return StreamTaskResults(
            taskname, input_paths, jobid, queue_name, _require_taskid(taskid), **options
        )
    return FileActionStatus(
        taskname, input_paths, jobid, queue_name, started=options.get("started")
    )


def async_status_for_task(
    stream_results: bool,
    taskname: str,
    input_paths: list[Any],
    jobid: Any,
    queue_name: str | None,
    *,
    taskid: str | None = None,
    **options: Unpack[StreamOptions],
) -> AsyncFileActionStatus | AsyncStreamTaskResults:
    """Async twin of :func:`status_for_task`: the ``Async*`` classes."""
    if stream_results:
        return AsyncStreamTaskResults(
            taskname, input_paths, jobid, queue_name, _require_taskid(taskid), **options
        )
    return AsyncFileActionStatus(
        taskname, input_paths, jobid, queue_name, started=options.get("started")
    )
