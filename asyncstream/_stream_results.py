"""``AsyncStreamTaskResults``: the async core behind ``StreamTaskResults``.

It validates and counts results, hands them to a :class:`~._sender.BatchSender`,
and at ``dump()`` waits for every acknowledgement, completes the task at the hub
and returns the contract payload. When delivery fails it spools what the hub did
not acknowledge (:mod:`._spool`) and raises, so nothing is ever discarded.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, NoReturn, Self, Unpack

from ._deadline import Deadline
from ._delivery import DeliveryReport, reraise
from ._detached import OpenedOnce
from ._exceptions import (
    AsyncStreamError,
    HubError,
    HubUnavailableError,
    UsageError,
)
from ._paths import PathObject, State, check_state, to_path_object
from ._payload import TaskHeader, build_payload
from ._result_buffer import PendingResults, ResultBuffer
from ._sender_stats import SenderStatistics
from ._stream_parts import StreamOptions, build_parts

__all__ = ["AsyncStreamTaskResults", "DeliveryReport"]

logger = logging.getLogger("asyncstream.streamstatus")


class AsyncStreamTaskResults:
    """Stream a task's per-path results to the hub in bounded, retried batches.

    Use it as ``async with AsyncStreamTaskResults(...) as status:`` then
    ``await status.add(state, path)`` per path and ``return await status.dump()``.

    Leaving the block without ``dump()`` after an error still delivers what was
    added (results of a failed task are facts about files), without completing
    the task; whatever cannot be delivered is spooled. Leaving it normally without
    ``dump()`` dumps with a logged warning, since the payload is then lost to the
    caller.
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
        parts = build_parts(taskname, input_paths, jobid, queue_name, taskid, **options)
        self._header, self._identity = parts.header, parts.identity
        self._client = parts.client
        self._sender, self._delivery = parts.sender, parts.delivery
        self.batch_size, self.linger = parts.batch_size, parts.linger
        self.delivery_timeout, self._clock = parts.delivery_timeout, parts.clock
        self._dumping = False
        self._payload: dict[str, Any] | None = None
        # Opened by 'async with' or, used without, by a host task.
        self._life = OpenedOnce(self._resources, lambda: repr(self))

    @property
    def taskid(self) -> str:
        """The hub's id of this task; batches are keyed ``<taskid>:<seq>``."""
        assert self._identity.taskid is not None
        return self._identity.taskid

    @property
    def header(self) -> TaskHeader:
        """What the task was called with."""
        return self._header

    @property
    def error(self) -> AsyncStreamError | None:
        """The delivery error that ended this object, if one did."""
        return self._delivery.error

    @property
    def _unfinished(self) -> bool:
        # Open, and neither dumped nor failed: results may still be undelivered.
        life, failed = self._life.state, self._delivery.error is not None
        return life == "open" and self._payload is None and not failed

    # -- lifecycle ---------------------------------------------------------------

    @property
    def dumped(self) -> bool:
        """True once ``dump()`` has returned the payload."""
        return self._payload is not None

    async def __aenter__(self) -> Self:
        await self._life.enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._unfinished:
                if exc is None:
                    logger.warning(
                        "%r left its block without dump(): dumping now; return"
                        " 'await status.dump()' from the task to keep the payload",
                        self,
                    )
                    await self.dump()
                else:
                    await self._delivery.drain_after_error(self)
        finally:
            await self._life.exit()

    async def aclose(self) -> None:
        """Finish without completing the task: deliver what was added, then close.

        For a task that failed: its results are still facts about files. What
        cannot be delivered in time is spooled. After ``dump()`` it only closes.
        """
        if self._unfinished:
            await self._delivery.drain_after_error(self)
        await self._shutdown()

    async def aabort(self, leftover: PendingResults | None = None) -> None:
        """Stop sending at once and spool every unacknowledged result; no waiting.

        For a task out of time (a Celery soft time limit). ``leftover`` are
        results a sync shim had not handed over yet; they are spooled too.
        """
        if self._payload is None and self._delivery.error is None:
            self._sender.abort()
            if leftover is not None:
                self._sender.keep_for_spool(leftover)
            if self._sender.undelivered():
                self._delivery.failed(HubUnavailableError("the task was aborted"))
        await self._shutdown()

    @asynccontextmanager
    async def _resources(self) -> AsyncIterator[None]:
        async with self._client, self._sender:
            yield

    async def _shutdown(self) -> None:
        await self._life.shutdown()

    async def _ensure_open(self, what: str) -> None:
        if self.error is not None:
            raise self.error
        if self._payload is not None or self._dumping:
            raise UsageError(f"{what} after dump(): {self!r} is already complete")
        if self._life.state == "unopened":
            await self._open_detached()
        if self._life.state != "open":
            raise UsageError(f"{what} on {self!r}: it is closed")

    async def _open_detached(self) -> None:
        # Without 'async with' (the seed's style) a host task holds the sender.
        await self._life.open_detached()

    # -- adding ------------------------------------------------------------------

    async def add(
        self, key: str, path: str | PathObject, *, message: Any = None
    ) -> None:
        """Record that ``path`` ended in state ``key``; wait while the budget is full.

        Raises :class:`BackpressureTimeout` (nothing recorded) when ``add_timeout``
        passes first, and :class:`DeliveryError` once delivery has failed.
        """
        if self._life.state != "open" or self._dumping or self._delivery.error:
            await self._ensure_open(f"add({key!r}, {path!r})")
        sender = self._sender
        # The common case, a plain path with room for it, takes no await at all
        # (and the sender checks the state there).
        if (
            type(path) is str
            and message is None
            and type(key) is str
            and sender.add_path_nowait(key, path)
        ):
            return
        state = check_state(key)
        if type(path) is str and message is None:
            obj = to_path_object(path)
        else:
            obj = to_path_object(path, message=message)
            if sender.add_nowait(state, obj):
                return
        try:
            await sender.add(state, obj)
        except HubError as exc:
            await self._fail(exc)

    async def add_many(self, key: str, items: Iterable[str | PathObject]) -> None:
        """Record that every path of ``items`` ended in state ``key``.

        For a task that holds its results as a list: like ``add(key, item)`` for
        each item, validated the same way, at a fraction of the cost per result.
        An item that is not valid (or too large for any batch) raises
        :class:`InvalidPathError` naming its index: the items before it are
        recorded, it and those after are not. Waits while the budget is full.
        Items are read a batch at a time: from a one-shot iterator, up to a
        batch of items past the bad one may have been read, so pass a sequence
        to go on from the index.
        """
        self._sender.many_taken = 0  # read by a caller after this raised
        if self._life.state != "open" or self._dumping or self._delivery.error:
            await self._ensure_open(f"add_many({key!r}, ...)")
        state = check_state(key)
        try:
            await self._sender.add_many(state, items)
        except HubError as exc:
            await self._fail(exc)

    @property
    def add_many_taken(self) -> int:
        """How many items the latest :meth:`add_many` recorded: after it raised
        (cancelled, delivery failed), the items from there on were not."""
        return self._sender.many_taken

    def keep_unrecorded(
        self, results: Iterable[tuple[State, str | PathObject, Any]]
    ) -> None:
        """Take ``(state, path, message)`` results now, without awaiting: work
        done before a run stopped (cancelled, delivery failed), never recorded.

        An open sender takes them over budget, to be delivered (or spooled) by
        the status's close; once delivery has failed they are spooled at once,
        in a spool file of their own. Never raises: it runs while the run's own
        error propagates; what cannot be kept is logged.
        """
        try:
            pendings = self._as_batches(results)
            late = []
            for pending in pendings:
                if self._delivery.error is None and self._life.state == "open":
                    try:
                        self._sender.add_pending_nowait(pending)
                        continue
                    except AsyncStreamError:
                        pass
                late.append(pending)
            if late:
                self._spool_late(late)
        except Exception:
            logger.exception("%r: results of work done could not be kept", self)

    def _as_batches(
        self, results: Iterable[tuple[State, str | PathObject, Any]]
    ) -> list[PendingResults]:
        buffer, pendings = self._sender.thread_buffer(), []
        for state, path, message in results:
            try:
                obj = to_path_object(path, message=message)
                size = buffer.measure(obj)
            except AsyncStreamError as exc:
                logger.error("%r: result of %r not kept: %s", self, path, exc)
                continue
            if buffer.pending >= buffer.batch_size or not buffer.fits(size):
                pendings.append(buffer.take())
            buffer.add(check_state(state), obj, size)
        last = buffer.take()
        return [p for p in (*pendings, last) if p is not None]

    def _spool_late(self, pendings: list[PendingResults]) -> None:
        sender = self._sender
        spooled = {b.seq for b in sender.undelivered()}
        for pending in pendings:
            sender.keep_for_spool(pending)
        if self._delivery.error is None and self._life.state == "open":
            return  # with the unacknowledged batches: the close spools them
        late = [b for b in sender.undelivered() if b.seq not in spooled]
        self._delivery.spool_late(late)

    async def _fail(self, exc: HubError) -> NoReturn:
        err = self._delivery.failed(exc)
        await self._shutdown()
        reraise(err, exc)

    @property
    def next_batch_size(self) -> int:
        """Results in the next full batch: ``batch_size``, or what the adaptive
        sizer made of it from the hub's answers."""
        return self._sender.batch_size

    def thread_buffer(self) -> ResultBuffer:
        """A buffer with this status's batch settings, for a sync caller's thread;
        hand what it holds over with :meth:`add_pending`, a batch at a time."""
        return self._sender.thread_buffer()

    async def add_pending(self, pending: PendingResults, wait: bool = True) -> None:
        """Take results a sync caller buffered, as a batch; each one exactly once.

        Once they are taken ``pending.taken`` is true, and a repeat of the call
        (one that was interrupted after it had in fact gone through) does
        nothing. ``wait=False`` takes them even over budget (used at exit). When
        delivery has failed they are still taken, to be spooled, and the
        delivery error is raised.
        """
        if pending.taken:
            return
        if wait:
            await self._ensure_open("add()")
        elif self._life.state == "unopened":
            await self._open_detached()
        try:
            await self._sender.add_pending(pending, wait=wait)
        except HubError as exc:
            self._sender.keep_for_spool(pending)
            await self._fail(exc)

    def room_beside(self, posted: int, posted_bytes: int, n: int, nbytes: int) -> bool:
        """Asked from a sync caller's thread: True if a batch of ``n`` results,
        ``nbytes`` bytes, may be posted with :meth:`add_pending_now`: this status
        is open, not dumping, not failed, and the batch fits the send budget
        besides the ``posted`` results (``posted_bytes``) posted before it and
        not taken yet. Only reads; errs on the side of no room."""
        return (
            self._life.state == "open"
            and not self._dumping
            and self._delivery.error is None
            and self._sender.room_beside(posted, posted_bytes, n, nbytes)
        )

    def add_pending_now(self, pending: PendingResults) -> None:
        """On the loop thread: take a batch a sync caller posted once
        :meth:`room_beside` said it fits; no waiting, nothing raised.

        The results are taken whatever happens: queued to be sent or, if
        delivery failed since the caller asked, kept to be spooled (the caller
        hears of the failure at its next hand-over or ``dump()``).
        """
        try:
            self._sender.add_pending_now(pending)
        except Exception as exc:  # a bug: fail loudly rather than lose them
            logger.exception("%r: taking a posted batch failed", self)
            # As when the hub refuses a batch: sending stops, these results and
            # those posted after them are kept, and the caller's next hand-over
            # or dump() spools everything unacknowledged and raises (a
            # DeliveryError saying where they were spooled, caused by this).
            # Not abort(): that would also end the task hosting the sender
            # (the sync caller's), closing this status with nothing spooled.
            self._sender.stop_taking(
                HubUnavailableError(
                    "sending stopped: a batch handed over from the task's thread"
                    f" could not be taken for sending (an internal error: {exc!r})"
                )
            )
            self._sender.keep_for_spool(pending)

    # -- finishing ---------------------------------------------------------------

    async def dump(self) -> dict[str, Any]:
        """Flush, wait for every acknowledgement, complete the task, return payload.

        ``summary`` is complete; ``details`` and ``paths`` are empty (the results
        are at the hub); ``status["streamed"]`` reports items, batches and retries.
        A second call returns an equal payload.
        """
        if self._payload is not None:
            return copy.deepcopy(self._payload)
        await self._ensure_open("dump()")
        self._dumping = True
        try:
            payload = await self._deliver_and_complete()
        except BaseException:
            if self._delivery.error is None:
                self._dumping = False  # interrupted, not failed: may be retried
            else:
                await self._shutdown()
            raise
        self._payload = payload
        logger.info("%r: delivered and completed", self)
        await self._shutdown()
        return copy.deepcopy(payload)

    async def _deliver_and_complete(self) -> dict[str, Any]:
        deadline = Deadline.after(self.delivery_timeout, clock=self._clock)
        try:
            await self._sender.drain()
        except HubError as exc:
            reraise(self._delivery.failed(exc, payload=self._build_payload()), exc)
        payload = self._build_payload()
        await self._delivery.complete(self._client, payload, deadline)
        return payload

    def _build_payload(self) -> dict[str, Any]:
        return build_payload(
            self._header,
            summary=self._sender.summary,
            details={},
            paths=[],
            extra_status={"streamed": self.report.as_status()},
        )

    # -- inspection --------------------------------------------------------------

    @property
    def summary(self) -> dict[State, int]:
        """How many results were accepted per state so far."""
        return self._sender.summary

    @property
    def report(self) -> DeliveryReport:
        """Items, batches and retries so far (final once ``dump()`` returned)."""
        return DeliveryReport.of(self._sender.statistics())

    def statistics(self) -> SenderStatistics:
        """A snapshot of the sender's counters and bounded buffers."""
        return self._sender.statistics()

    def __repr__(self) -> str:
        state: str = "dumped" if self._payload is not None else self._life.state
        if self._delivery.error is not None:
            state = "failed"
        return (
            f"<{type(self).__name__} task={self._header.taskname!r}"
            f" taskid={self.taskid!r} {state} {self._sender!r}>"
        )
