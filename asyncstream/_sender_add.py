"""The adding half of :class:`~._sender.BatchSender`: results into the buffer.

A result is taken when it is buffered, and nothing awaits after that: an
``add`` that raises took nothing. The results in the buffer count against the
send budget as they are (:meth:`SenderAdds._has_room`); the budget itself is
charged, and the task's summary counted, once per batch when it is cut
(:mod:`._sender_sends`), so that the per-result path only buffers.
``add_nowait``/``add_path_nowait`` take a result when that needs no waiting (the
common case, once per result, so kept to a few attribute reads); ``add`` waits
for room, cuts by bytes and yields to the sends; ``add_many`` takes runs of a
list at once; ``add_pending`` takes a sync caller's whole batch. Cutting and
sending are :mod:`._sender_sends`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import anyio
import anyio.lowlevel

from ._batch_body import PLAIN_PATH_ITEM as _PATH_ITEM
from ._batch_body import Result
from ._exceptions import BackpressureTimeout
from ._paths import PathObject, State
from ._result_buffer import PendingResults, ResultBuffer
from ._sender_sends import SenderSends
from ._sender_stats import SenderState

__all__ = ["SenderAdds"]

# An enum member read through its class costs a lookup in the enum's metaclass;
# the per-result checks compare with this instead.
_OPEN = SenderState.OPEN


class SenderAdds(SenderSends):
    """Take results into the buffer and the budget; wait while it is full."""

    # How many items the latest add_many() took: read after it raised (a
    # cancellation, a failed delivery), what it had not taken is the caller's.
    many_taken = 0

    async def add(self, state: State, obj: Result) -> None:
        """Queue one validated result, waiting while the budget is full.

        ``obj`` is a path object, or a plain path (a printable ASCII string, see
        :mod:`._batch_body`). If it raises (a timeout, a cancellation, a hub
        error, a result too large for any batch) the result was not taken:
        nothing awaits after it is buffered.
        """
        # This runs once per result: _yield_to_sends() and _check_usable() are
        # inlined to their cheap common case.
        buffer = self._buffer
        size = (
            _PATH_ITEM + 2 * len(obj) if isinstance(obj, str) else buffer.measure(obj)
        )
        if self._cut_since_yield:
            await self._yield_to_sends()
        if self._state is not _OPEN:
            self._check_usable()
        if not self._has_room(1, size):
            await self._wait_for_room(1, size)
        if not buffer.fits(size):
            self._cut()  # by bytes: this result would take the body past the limit
        was_empty = not buffer.pending
        buffer.add(state, obj, size)
        if buffer.pending >= buffer.batch_size:
            self._cut()
        elif was_empty:
            self._notify()  # wake the linger timer for the new first item

    def add_nowait(self, state: State, obj: PathObject) -> bool:
        """Queue one validated result now if that needs no waiting; else False.

        False (nothing taken) when :meth:`add` would have to await: a batch was
        just cut (the sends get their turn first), the sender is not open, the
        budget is full or the batch being filled is full by bytes. The caller
        then awaits :meth:`add`, which handles each of those. A result too large
        for any batch raises, as in :meth:`add`.
        """
        size = self._buffer.measure(obj)
        if self._cut_since_yield or self._state is not _OPEN:
            return False
        return self._take_one(state, obj, size)

    def add_path_nowait(self, key: str, path: str) -> bool:
        """:meth:`add_nowait` for a path string alone, validated and sized here.

        Only a non-empty printable ASCII path in one of the five states is taken
        this way (the string :func:`~._paths.to_path_object` passes as is), and
        held as a plain path; for anything else, and whenever :meth:`add_nowait`
        would say False, it says False and the caller goes the long way (where
        a bad state raises).
        """
        # This runs once per result, and a call costs about as much as its
        # work: _take_one(), _has_room(), ResultBuffer.add() and the state's
        # check (the buffer's lists per state hold the five states) are
        # inlined here. Only the buffer's two counters change per result.
        buffer = self._buffer
        objs = buffer.by_state.get(key)  # type: ignore[call-overload]
        if (
            objs is None
            or self._cut_since_yield
            or self._state is not _OPEN
            or not (path and path.isascii() and path.isprintable())
        ):
            return False
        budget, pending = self._budget, buffer.pending
        nbytes = buffer.nbytes + _PATH_ITEM + 2 * len(path)
        items = budget.items + pending
        if nbytes > buffer.room or (
            items
            and (items >= budget.max_items or budget.bytes + nbytes > budget.max_bytes)
        ):
            return False
        objs.append(path)
        buffer.nbytes = nbytes
        buffer.pending = pending = pending + 1
        if pending >= buffer.batch_size:
            self._cut()
        elif pending == 1:
            buffer.started()
            self._notify()  # wake the linger timer for the new first item
        return True

    def _take_one(self, state: State, obj: PathObject, size: int) -> bool:
        buffer = self._buffer
        # Whether it fits the batch is asked first: a result that does not is
        # left to add(), which cuts by bytes, and is not counted here.
        if buffer.nbytes + size > buffer.room or not self._has_room(1, size):
            return False
        pending = buffer.add(state, obj, size)
        if pending >= buffer.batch_size:
            self._cut()
        elif pending == 1:
            self._notify()  # wake the linger timer for the new first item
        return True

    async def add_many(self, state: State, items: Iterable[object]) -> None:
        """Validate and queue results of one state, as :meth:`add` each would.

        Faster per result: validation, measuring and buffering run in one loop,
        the budget is asked once per run of results that fit the batch being
        filled. On an item that is not valid, or too large, it raises naming its
        index: the items before it are taken, it and those after are not.
        """
        budget, buffer = self._budget, self._buffer
        source, index = iter(items), 0
        self.many_taken = 0
        held: list[object] = []  # read from source, not taken yet (a carry's rest)
        while True:
            if self._cut_since_yield:
                await self._yield_to_sends()
            if self._state is not _OPEN:
                self._check_usable()
            if not self._has_room(1, 0):
                await self._wait_for_room(1, 0)
            # A run: what fits the batch being filled and the budget.
            want = max(1, buffer.batch_size - buffer.pending)
            outstanding = budget.items + buffer.pending
            if outstanding:
                want = min(want, budget.max_items - outstanding)
            room = min(buffer.room, budget.max_bytes - budget.bytes) - buffer.nbytes
            run = buffer.read_run(source, want, room, held)
            if run.objs:
                index += len(run.objs)
                self.many_taken = index
                was_empty = not buffer.pending
                buffer.extend(state, run.objs, run.nbytes)
                if buffer.pending >= buffer.batch_size:
                    self._cut()
                elif was_empty:
                    self._notify()
            if run.error is not None:
                raise type(run.error)(f"items[{index}]: {run.error}") from None
            if run.carry is not None:
                await self.add(state, run.carry[0])  # cuts by bytes, waits for room
                index += 1
                self.many_taken = index
            elif run.exhausted:
                return

    async def add_pending(self, pending: PendingResults, *, wait: bool = True) -> None:
        """Queue results taken out of a buffer as a batch of their own.

        The sync shim hands over a whole batch at once this way. ``wait=False``
        takes the results even over budget (used at exit, bounded by one batch).
        Like :meth:`add`, it either takes the whole batch (and marks it
        ``taken``) or raises; results already taken are not taken again.
        """
        if pending.taken:
            return  # an interrupted hand-over that had in fact gone through
        if wait:
            await self._yield_to_sends()
        self._check_usable()
        if pending.count <= 0:
            pending.taken = True
            return
        if wait and not self._has_room(pending.count, pending.nbytes):
            await self._wait_for_room(pending.count, pending.nbytes)
            # Taken while this call waited (it had been posted too); mypy
            # keeps the narrowing of the check above across the await.
            if pending.taken:
                return  # type: ignore[unreachable]
        self._take_pending(pending)

    def add_pending_now(self, pending: PendingResults) -> None:
        """:meth:`add_pending` for a batch posted from a sync caller's thread
        that found room for it (:meth:`room_beside`): taken now, no waiting.

        Run on the loop thread with no caller waiting, so it does not raise for
        a failed sender: if it stopped meanwhile (a batch failed), the results
        are kept to be spooled with the rest, and the caller hears of the
        failure at its next hand-over or ``dump()``.
        """
        if pending.taken:
            return
        if self._state is not _OPEN:
            self.keep_for_spool(pending)
            return
        self._take_pending(pending)

    def _take_pending(self, pending: PendingResults) -> None:
        # Nothing here awaits: taken means counted and queued. The batch is cut
        # first: if that raises, nothing was taken and the caller still holds
        # the results (to spool them). Then the budget is charged, before the
        # results are marked taken, so that a thread that adds what it posted
        # and has not seen taken (room_beside) may count them twice for a
        # moment, but never not at all.
        self._cut()  # whatever async add()s left pending goes first
        batch = self._policy.cut_pending(pending)
        self._budget.take(pending.count, len(batch.body))
        self._ledger.take(pending)
        try:
            self._enqueue(batch)
        except BaseException:
            # Taken: it must reach the hub or the spool, which takes every
            # batch left unacknowledged.
            if batch.seq not in self._ledger.unacked:
                self._ledger.keep(batch)
            raise

    def room_beside(self, posted: int, posted_bytes: int, n: int, nbytes: int) -> bool:
        """True if the sender is open and ``n`` results of ``nbytes`` fit its
        budget besides ``posted`` results of ``posted_bytes`` that it does not
        count yet: asked from a sync caller's thread, about the batch it is
        about to post and those it posted and has not seen taken.

        Only reads, and only what the loop thread writes. That thread may go on
        meanwhile: to free room (an acknowledgement), to take a posted batch
        (charged before it is marked taken) or to cut its own buffer (charged
        before the buffer is emptied). The buffer is read before the budget,
        so results that move from one to the other are counted twice for a
        moment, never not at all: the answer errs on the side of no room.
        """
        if self._state is not _OPEN:
            return False
        buffer, budget = self._buffer, self._budget
        buffered, buffered_bytes = buffer.pending, buffer.nbytes
        items = buffered + budget.items + posted
        return (
            items + n <= budget.max_items
            and buffered_bytes + budget.bytes + posted_bytes + nbytes
            <= budget.max_bytes
        ) or not items

    def add_pending_nowait(self, pending: PendingResults) -> None:
        """:meth:`add_pending` with ``wait=False``, for a caller that may not
        await (it is being cancelled): the results are taken over budget, or the
        sender's failure (or closing) is raised and nothing is taken."""
        if pending.taken:
            return
        self._check_usable()
        self._take_pending(pending)

    def keep_for_spool(self, pending: PendingResults) -> None:
        """Take results the failed sender could not send, so they are spooled too."""
        if pending.taken:
            return
        self._ledger.take(pending)
        self._cut_pending_for_spool()
        self._ledger.keep(self._policy.cut_pending(pending))

    def thread_buffer(self) -> ResultBuffer:
        """A buffer with this sender's batch settings, for a sync caller's thread."""
        return self._buffer.sibling()

    @property
    def summary(self) -> dict[State, int]:
        """How many results were taken per state (sent, queued or spooled)."""
        summary = dict(self._ledger.taken)
        for state, n in self._buffer.counts().items():
            summary[state] += n
        return summary

    def _has_room(self, n: int, nbytes: int) -> bool:
        """True if ``n`` more results of ``nbytes`` fit the budget, the results
        in the buffer counted with the batches it was charged for (anything
        fits when nothing is outstanding: one batch at most)."""
        budget, buffer = self._budget, self._buffer
        items = budget.items + buffer.pending
        return (
            items + n <= budget.max_items
            and budget.bytes + buffer.nbytes + nbytes <= budget.max_bytes
        ) or not items

    async def _yield_to_sends(self) -> None:
        # A producer that never awaits would starve the sends it just started;
        # yield once after each cut, before taking anything (cancel-safe).
        if self._cut_since_yield:
            self._cut_since_yield = False
            await anyio.lowlevel.checkpoint()

    async def _wait_for_room(self, n: int, nbytes: int) -> None:
        timeout = math.inf if self.add_timeout is None else self.add_timeout
        self._adds_waiting += 1
        try:
            with anyio.fail_after(timeout):
                while not self._has_room(n, nbytes):
                    self._check_usable()
                    # Blocked: send what is pending now rather than after linger.
                    self._cut()
                    await self._wait_changed()
        except TimeoutError:
            b, buf = self._budget, self._buffer
            raise BackpressureTimeout(
                f"add() waited {self.add_timeout}s for room in the send budget"
                f" ({b.items + buf.pending}/{b.max_items} results,"
                f" {b.bytes + buf.nbytes}/{b.max_bytes} bytes"
                " queued or in flight): the hub is not keeping up"
            ) from None
        finally:
            self._adds_waiting -= 1
        self._check_usable()
