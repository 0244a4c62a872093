"""``StreamTaskResults``: send a task's results to the hub in background batches.

The seed's ``arcapix.dynamo.server.streamstatus`` becomes ``asyncstream.streamstatus``.
:class:`StreamTaskResults` has the interface of
:class:`~asyncstream.status.FileActionStatus` for plain (sync) task code;
:class:`AsyncStreamTaskResults` is the async core for ``async def`` tasks::

    status = StreamTaskResults(taskname, paths, jobid, queue_name, self.request.id)
    for item in expand_paths(paths):
        status.add("processed", item)
    return status.dump()

A sync ``add()`` validates at once (a bad state or path raises right there) and
buffers results in the calling thread; only whole batches cross to the process's
event-loop thread, and that hand-over blocks while the send budget is full. The
buffer is handed over when it holds ``batch_size`` results or its oldest result is
``linger`` seconds old, checked at the next ``add()`` or ``dump()``.

One instance belongs to one thread. Call ``dump()`` (or use ``with``) before the
task returns: results are flushed then, never at interpreter exit.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import httpx

from . import _portal
from ._exceptions import UsageError
from ._paths import PathObject, State, check_state, to_path_object
from ._retry import Clock, RetryPolicy, Sleep
from ._sender import SenderStatistics
from ._stream_results import AsyncStreamTaskResults, DeliveryReport

__all__ = ["AsyncStreamTaskResults", "DeliveryReport", "StreamTaskResults"]

logger = logging.getLogger("asyncstream.streamstatus")


class StreamOptions(TypedDict, total=False):
    """The keyword-only knobs both stream classes take (see the async core)."""

    hub_url: str | None
    api_key: str | None
    verify_tls: bool | None
    client: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | None
    batch_size: int
    linger: float
    max_pending_items: int
    max_inflight_batches: int
    delivery_timeout: float
    add_timeout: float | None
    request_timeout: float
    spool_dir: str | None
    retry_policy: RetryPolicy | None
    started: datetime | None
    clock: Clock
    sleep: Sleep


class StreamTaskResults:
    """Sync face of :class:`AsyncStreamTaskResults`, with the seed's signature.

    ``StreamTaskResults(taskname, input_paths, jobid, queue_name, taskid)``; hub
    location and key come from the arguments or the configuration
    (``ASYNCSTREAM_HUB_URL``, ``ASYNCSTREAM_API_KEY``).
    """

    def __init__(
        self,
        taskname: str,
        input_paths: list[Any],
        jobid: Any,
        queue_name: str | None,
        taskid: str,
        **options: Unpack[StreamOptions],
    ) -> None:
        self._core = AsyncStreamTaskResults(
            taskname, input_paths, jobid, queue_name, taskid, **options
        )
        self._clock = options.get("clock") or time.monotonic
        self._batch_size = self._core.batch_size
        self._linger = self._core.linger
        self._buffer: dict[State, list[PathObject]] = {}
        self._buffered = 0
        self._first_at = 0.0
        # Each hand-over has a number so that one interrupted mid-way (a time
        # limit while blocked) and repeated is taken exactly once.
        self._handover = 0
        self._payload: dict[str, Any] | None = None
        self._closed = False

    @property
    def taskid(self) -> str:
        """The hub's id of this task."""
        return self._core.taskid

    @property
    def dumped(self) -> bool:
        """True once ``dump()`` has returned the payload."""
        return self._payload is not None

    def add(self, key: str, path: str | PathObject, *, message: Any = None) -> None:
        """Record that ``path`` ended in state ``key`` (see ``FileActionStatus``).

        Blocks while the send budget is full; raises ``BackpressureTimeout`` after
        ``add_timeout`` and ``DeliveryError`` once delivery failed. When it raises,
        this result was not recorded.
        """
        if self._closed:  # also after dump()
            raise UsageError(
                f"add({key!r}, {path!r}) after dump() or close(): {self!r} is finished"
            )
        state = check_state(key)
        obj = to_path_object(path, message=message)
        if self._buffered and (
            self._buffered >= self._batch_size
            or self._clock() - self._first_at >= self._linger
        ):
            self._hand_over()
        if self._core.error is not None:
            raise self._core.error
        if not self._buffered:
            self._first_at = self._clock()
        items = self._buffer.get(state)
        if items is None:
            self._buffer[state] = [obj]
        else:
            items.append(obj)
        self._buffered += 1

    def _take_buffer(self) -> tuple[dict[State, list[PathObject]], int]:
        items, count = self._buffer, self._buffered
        self._buffer, self._buffered = {}, 0
        return items, count

    def _hand_over(self, *, wait: bool = True) -> None:
        # The buffer stays ours until the core has taken it: if the call raises
        # (a timeout, a time limit) the next attempt repeats it under the same
        # number, and the core ignores a repeat of one that did go through. The
        # core may also take a batch and then fail its delivery: the results are
        # then the core's (counted, spooled), and must leave our buffer.
        try:
            _portal.call(
                self._core._add_batch,
                self._buffer,
                self._buffered,
                self._handover,
                wait,
            )
        finally:
            if self._core._last_handover >= self._handover:
                self._buffer, self._buffered = {}, 0
                self._handover += 1

    def dump(self) -> dict[str, Any]:
        """Flush, wait for every acknowledgement, complete the task, return payload.

        See :meth:`AsyncStreamTaskResults.dump`; a second call returns an equal
        payload.
        """
        if self._payload is not None:
            return copy.deepcopy(self._payload)
        if self._closed:
            raise UsageError(f"dump() after close(): {self!r} is finished")
        if self._buffered:
            self._hand_over()
        self._payload = _portal.call(self._core.dump)
        self._closed = True
        return copy.deepcopy(self._payload)

    def close(self) -> None:
        """Finish without completing: deliver what was added, spool what cannot be.

        For a task that failed; see :meth:`AsyncStreamTaskResults.aclose`.
        """
        if self._closed:
            return
        self._closed = True
        if self._buffered and self._core.error is None:
            self._hand_over(wait=False)
        _portal.call(self._core.aclose)

    def abort(self) -> None:
        """Stop at once and spool everything not acknowledged (a task out of time)."""
        self._closed = True
        items, count = self._take_buffer()
        _portal.call(self._core.aabort, items, count)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._closed:
            return
        if exc is None:
            logger.warning(
                "%r left its block without dump(): dumping now; return"
                " status.dump() from the task to keep the payload",
                self,
            )
            self.dump()
        else:
            self.close()

    @property
    def summary(self) -> dict[State, int]:
        """How many results were recorded per state so far."""
        summary = self._core.summary
        for state, items in self._buffer.items():
            summary[state] += len(items)
        return summary

    @property
    def report(self) -> DeliveryReport:
        """Items, batches and retries so far (final once ``dump()`` returned)."""
        return self._core.report

    def statistics(self) -> SenderStatistics:
        """The sender's snapshot; ``items_pending`` includes this thread's buffer."""
        stats = self._core.statistics()
        return replace(stats, items_pending=stats.items_pending + self._buffered)

    def __repr__(self) -> str:
        return f"<StreamTaskResults buffered={self._buffered} {self._core!r}>"
