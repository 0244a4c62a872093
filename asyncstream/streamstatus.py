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
buffers results in the calling thread, where each batch is encoded too; only
whole batches cross to the process's event-loop thread, which numbers and sends
them. A batch that fits the send budget is posted there and this thread goes on
at once; when it does not fit, the hand-over blocks until it does (or raises
``BackpressureTimeout``). The buffer is handed over when it holds
``batch_size`` results or its oldest result is ``linger`` seconds old, checked
at the next ``add()`` or ``dump()``.
``apply_paths(...).run()`` is the exception: its whole run happens on the
event-loop thread, which adds the outcomes to the async core while this thread
waits (what this thread buffered is handed over first).

One instance belongs to one thread. Call ``dump()`` (or use ``with``) before the
task returns: results are flushed then, never at interpreter exit.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, Self, Unpack

from . import _portal
from ._batch_body import PLAIN_PATH_ITEM as _PATH_ITEM
from ._batch_body import Result
from ._exceptions import DeliveryError, HubError, UsageError
from ._paths import PathObject, State, check_state, to_path_object
from ._result_buffer import PendingResults
from ._sender_stats import SenderStatistics
from ._stream_parts import StreamOptions as StreamOptions  # re-exported
from ._stream_results import AsyncStreamTaskResults, DeliveryReport

__all__ = ["AsyncStreamTaskResults", "DeliveryReport", "StreamTaskResults"]

logger = logging.getLogger("asyncstream.streamstatus")


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
        # Filled in this thread; only whole batches cross to the loop thread.
        self._buffer = self._core.thread_buffer()
        self._clock = options.get("clock") or time.monotonic
        # Taken out of the buffer, not yet taken by the core: an interrupted
        # hand-over is repeated with this same object, which the core takes once.
        self._handing: PendingResults | None = None
        # Posted to the loop thread without waiting, not seen taken yet, each
        # with the size of its body at most: they count against the send
        # budget until the core counts them itself.
        self._posted: deque[tuple[PendingResults, int]] = deque()
        self._payload: dict[str, Any] | None = None
        self._closed = False
        # How many items the latest add_many() took: read after it raised.
        self.add_many_taken = 0

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
        # This runs once per result: the state's check (the buffer's lists per
        # state hold the five states), ResultBuffer.fits() and add() are
        # inlined here.
        buffer = self._buffer
        state: State = (
            key if type(key) is str and key in buffer.by_state else check_state(key)
        )
        obj: Result
        if (
            type(path) is str
            and message is None
            and path
            and path.isascii()
            and path.isprintable()
        ):
            # The common case: held as a plain path, no path object made.
            obj, size = path, _PATH_ITEM + 2 * len(path)
        else:
            obj = to_path_object(path, message=message)
            size = buffer.measure(obj)
        pending = buffer.pending
        if self._handing is not None or (
            pending
            and (
                pending >= buffer.batch_size
                or buffer.nbytes + size > buffer.room
                or self._clock() - buffer.first_at >= buffer.linger
            )
        ):
            self._hand_over()
            pending = buffer.pending
        if self._core.error is not None:
            raise self._core.error
        if not pending:
            buffer.started()
        buffer.by_state[state].append(obj)
        buffer.pending = pending + 1
        buffer.nbytes += size

    def add_many(self, key: str, items: Iterable[str | PathObject]) -> None:
        """Record that every path of ``items`` ended in state ``key``.

        Like ``add(key, item)`` for each item, at a fraction of the cost; see
        :meth:`AsyncStreamTaskResults.add_many`. An invalid item raises naming
        its index: the items before it are recorded, it and those after are not
        (from a one-shot iterator, up to a batch past it may have been read).
        """
        if self._closed:
            raise UsageError(
                f"add_many({key!r}, ...) after dump() or close(): {self!r}"
            )
        state = check_state(key)
        buffer = self._buffer
        source, index = iter(items), 0
        self.add_many_taken = 0
        held: list[object] = []  # read from source, not taken yet (a carry's rest)
        while True:
            if self._handing is not None or buffer.pending >= buffer.batch_size:
                self._hand_over()
            if self._core.error is not None:
                raise self._core.error
            want = buffer.batch_size - buffer.pending
            run = buffer.read_run(source, want, buffer.room - buffer.nbytes, held)
            index += len(run.objs)
            buffer.extend(state, run.objs, run.nbytes)
            self.add_many_taken = index
            if run.error is not None:
                raise type(run.error)(f"items[{index}]: {run.error}") from None
            if run.carry is not None:
                self._hand_over()  # by bytes
                buffer.add(state, *run.carry)
                index += 1
                self.add_many_taken = index
            elif run.exhausted:
                break
        if buffer.pending and self._clock() - buffer.first_at >= buffer.linger:
            self._hand_over()

    def keep_unrecorded(
        self, results: Iterable[tuple[State, str | PathObject, Any]]
    ) -> None:
        """Take results of work done before a run stopped, never recorded: the
        core keeps them (see :meth:`AsyncStreamTaskResults.keep_unrecorded`),
        delivered by :meth:`close` or spooled. Never raises."""
        try:
            _portal.call(_keep_unrecorded, self._core, list(results))
        except Exception:
            logger.exception("%r: results of work done could not be kept", self)

    def _hand_over(self, *, wait: bool = True) -> None:
        # A batch that fits the budget is posted: the core takes it on the loop
        # thread whatever happens (sent, or spooled if delivery failed since),
        # and this thread does not wait for that. Otherwise the results stay
        # ours until the core has taken them: if the call raises (a timeout, a
        # time limit) the next attempt repeats it with the same object, and the
        # core ignores a repeat of one that did go through. The core may also
        # take them and then fail their delivery: they are then the core's
        # (counted, spooled).
        if self._handing is None:
            # Encoded here, so that the loop thread only numbers and sends it.
            self._handing = self._buffer.take_encoded()
        pending = self._handing
        if pending is None:
            return
        posted = False
        try:
            posted = wait and self._post(pending)
            if not posted:
                _portal.call(self._core.add_pending, pending, wait)
        finally:
            # Posted even if interrupted before it could say so: the core
            # takes it, so it is no longer this thread's to hand over again.
            if posted or pending.taken or self._was_posted(pending):
                self._handing = None
        # The core adapts the batch size to the hub's answers; follow it.
        self._buffer.batch_size = self._core.next_batch_size

    def _post(self, pending: PendingResults) -> bool:
        """Post ``pending`` to the core if it fits the budget besides what was
        posted before and not taken yet; False (nothing posted) if not."""
        posted = self._posted
        self._forget_taken()
        # Read the posted batches (whether taken) before the core's budget,
        # which is charged before a batch is marked taken: see room_beside.
        # Each counts at the size of its body, as the core charges it: the
        # items and the envelope around them.
        items = nbytes = 0
        for earlier, size in posted:
            if not earlier.taken:
                items += earlier.count
                nbytes += size
        assert pending.fragment is not None  # encoded by take_encoded()
        size = self._buffer.envelope.wrapping + len(pending.fragment)
        if not self._core.room_beside(items, nbytes, pending.count, size):
            return False
        # Appended first: a hand-over interrupted right after the post still
        # knows it was posted (_was_posted).
        posted.append((pending, size))
        if not _portal.post(self._core.add_pending_now, pending):
            posted.pop()
            return False
        return True

    def _was_posted(self, pending: PendingResults) -> bool:
        return any(earlier is pending for earlier, _ in self._posted)

    def _forget_taken(self) -> None:
        # Taken batches are the core's: not held here once seen taken.
        posted = self._posted
        while posted and posted[0][0].taken:
            posted.popleft()

    def _settle(self) -> None:
        """Wait until the core has taken every batch posted to it, so that its
        counts include them (the loop thread runs what was posted in order, so
        the last one taken means all were; read-only, as an inspection may
        come from another thread). On the loop thread itself there is nothing
        to wait for that could run meanwhile."""
        try:
            last, _ = self._posted[-1]
        except IndexError:
            return
        if not last.taken and not _portal.in_loop_thread():
            _portal.call(_nothing)
            self._forget_taken()

    def _on_loop_thread(self) -> AsyncStreamTaskResults:
        """What ``apply_paths(...).run()`` adds to on the event-loop thread while
        this one waits: the async core, as an ``async def`` task's would (asked
        only when this class's own ``add`` and ``add_many`` are the ones called).
        What this thread buffered is handed over first, so results keep their
        order."""
        if self._closed:
            raise UsageError(f"apply_paths after dump() or close(): {self!r}")
        self._flush()
        return self._core

    def _flush(self, *, wait: bool = True) -> None:
        # A hand-over interrupted earlier goes first, then what is buffered.
        while self._buffered:
            self._hand_over(wait=wait)

    @property
    def _buffered(self) -> int:
        handing = self._unhanded
        return self._buffer.pending + (handing.count if handing is not None else 0)

    @property
    def _unhanded(self) -> PendingResults | None:
        # A hand-over interrupted after the core took it (a post it did not
        # see return) is the core's: counted there, not here.
        handing = self._handing
        return None if handing is None or handing.taken else handing

    def dump(self) -> dict[str, Any]:
        """Flush, wait for every acknowledgement, complete the task, return payload.

        See :meth:`AsyncStreamTaskResults.dump`; a second call returns an equal
        payload.
        """
        if self._payload is not None:
            return copy.deepcopy(self._payload)
        if self._closed:
            raise UsageError(f"dump() after close(): {self!r} is finished")
        self._flush()
        self._payload = _portal.call(self._core.dump)
        self._closed = True
        self._forget_taken()  # all of them: the core ran them before dump()
        return copy.deepcopy(self._payload)

    def close(self) -> None:
        """Finish without completing: deliver what was added, spool what cannot be.

        For a task that failed; see :meth:`AsyncStreamTaskResults.aclose`.
        """
        if self._closed:
            return
        self._closed = True
        if self._core.error is None:
            # A refusal nobody had heard of yet surfaces here, with these
            # results taken and spooled: close() spools, as aclose() does, and
            # leaves the task's own error the one that propagates.
            with contextlib.suppress(HubError, DeliveryError):
                self._flush(wait=False)
        _portal.call(self._core.aclose)

    def abort(self) -> None:
        """Stop at once and spool everything not acknowledged (a task out of time)."""
        self._closed = True
        _portal.call(self._core.aabort, self._leftover())

    def _leftover(self) -> PendingResults | None:
        """Everything this thread holds that the core has not taken."""
        handing, self._handing = self._handing, None
        rest = self._buffer.take()
        if handing is None or handing.taken or self._was_posted(handing):
            return rest  # a posted batch is the core's, taken whatever happens
        if rest is not None:
            handing.merge(rest)
        return handing

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
        """How many results were recorded per state so far.

        Read from another thread, it waits until the core has taken what this
        status posted to it. Read from a coroutine on the event-loop thread
        (which cannot wait for that), it may miss a batch posted a moment ago
        and not taken yet.
        """
        self._settle()
        summary = self._core.summary
        for pending in (self._unhanded, self._buffer):
            if pending is not None:
                for state, n in pending.counts().items():
                    summary[state] += n
        return summary

    @property
    def report(self) -> DeliveryReport:
        """Items, batches and retries so far (final once ``dump()`` returned)."""
        self._settle()
        return self._core.report

    def statistics(self) -> SenderStatistics:
        """The sender's snapshot; ``items_pending`` includes this thread's buffer."""
        self._settle()
        stats = self._core.statistics()
        return replace(stats, items_pending=stats.items_pending + self._buffered)

    def __repr__(self) -> str:
        return f"<StreamTaskResults buffered={self._buffered} {self._core!r}>"


async def _keep_unrecorded(
    core: AsyncStreamTaskResults, results: list[tuple[State, str | PathObject, Any]]
) -> None:
    core.keep_unrecorded(results)  # on the loop thread, where the core lives


async def _nothing() -> None:
    """A crossing to the loop thread that returns once what was posted ran."""
