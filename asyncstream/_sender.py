"""``BatchSender``: the async engine that streams result batches to the hub.

Results are accumulated by a :class:`~._batching.BatchPolicy`, cut into batches by
size (with ``adaptive_batch_size``, adapted to the hub's answers by a
:class:`~._batch_sizer.BatchSizer`), bytes or linger time, and posted
concurrently (at most ``max_inflight_batches`` at once) under the idempotency key
``<taskid>:<seq>`` (:mod:`._batch_keys`). A :class:`~._send_budget.SendBudget`
bounds the results and bytes queued or in flight: when it is full,
:meth:`BatchSender.add` waits — optionally up to ``add_timeout``, then
:class:`BackpressureTimeout` — so memory stays bounded and nothing is dropped.

A batch fails once the hub has acknowledged nothing of the task for
``delivery_timeout`` since the batch was cut (:mod:`._batch_post`); retries stop
at that deadline, which also cuts a backoff short. A batch that misses it, or
that the hub rejects, puts the sender in the *failed* state: the next
``add``/``drain`` raises that hub error, and :meth:`BatchSender.undelivered`
hands the caller every unacknowledged batch, body and all, to spool (the books
are a :class:`~._batch_ledger.BatchLedger`). Nothing
here writes files: that is the caller's decision.

Lifecycle: unopened → open (``async with``: a task group hosts the linger timer and
the sends) → closed. A second close does nothing; use after close is a UsageError.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Self

import anyio
import anyio.abc
import anyio.lowlevel

from ._batch_ledger import BatchLedger
from ._batch_post import post_batch
from ._batch_sizer import BatchSizer
from ._batch_split import RefusedItem
from ._batching import Batch, BatchPolicy
from ._exceptions import (
    BackpressureTimeout,
    HubError,
    HubProtocolError,
    HubUnavailableError,
    InvalidInputError,
    UsageError,
)
from ._hub_client import HubClient
from ._identity import TaskIdentity
from ._paths import PathObject, State
from ._result_buffer import DEFAULT_MAX_BATCH_BYTES, PendingResults, ResultBuffer
from ._retry import Clock, Sleep
from ._send_budget import DEFAULT_MAX_PENDING_BYTES, SendBudget
from ._sender_stats import SenderState, SenderStatistics

logger = logging.getLogger("asyncstream.sender")


# The defaults of a stream's sender, shared by every face that builds one.
DEFAULT_BATCH_SIZE = 500
DEFAULT_LINGER = 1.0
DEFAULT_MAX_PENDING_ITEMS = 10_000
DEFAULT_MAX_INFLIGHT_BATCHES = 4
DEFAULT_DELIVERY_TIMEOUT = 300.0


class BatchSender(anyio.abc.AsyncResource):
    """Stream result batches of one task to the hub, bounded and retried.

    ``client`` is an open :class:`HubClient` (not closed here). ``clock`` and
    ``sleep`` drive linger timing, deadlines and backoff; tests inject fakes.
    """

    def __init__(
        self,
        client: HubClient,
        identity: TaskIdentity,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        linger: float = DEFAULT_LINGER,
        max_pending_items: int = DEFAULT_MAX_PENDING_ITEMS,
        max_inflight_batches: int = DEFAULT_MAX_INFLIGHT_BATCHES,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        adaptive_batch_size: bool = False,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        add_timeout: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if max_pending_items < batch_size:
            raise InvalidInputError(
                f"max_pending_items ({max_pending_items}) must be at least"
                f" batch_size ({batch_size})"
            )
        if max_pending_bytes < max_batch_bytes:
            raise InvalidInputError(
                f"max_pending_bytes ({max_pending_bytes}) must be at least"
                f" max_batch_bytes ({max_batch_bytes})"
            )
        if not delivery_timeout > 0:
            raise InvalidInputError(
                f"delivery_timeout must be > 0, got {delivery_timeout!r}"
            )
        if add_timeout is not None and add_timeout < 0:
            raise InvalidInputError(
                f"add_timeout must not be negative, got {add_timeout!r}"
            )
        if not identity.taskid:
            raise InvalidInputError(f"a sender needs the task's id, got {identity!r}")
        self._client = client
        self._taskid = identity.taskid
        self._policy = BatchPolicy(
            identity,
            batch_size=batch_size,
            linger=linger,
            max_batch_bytes=max_batch_bytes,
            clock=clock,
        )
        self._buffer = self._policy.buffer
        self._sizer = BatchSizer(batch_size) if adaptive_batch_size else None
        self._budget = SendBudget(
            max_pending_items, max_inflight_batches, max_pending_bytes
        )
        self.delivery_timeout = delivery_timeout
        self.add_timeout = add_timeout
        self._clock = clock
        # When the hub last acknowledged a batch of this task (see _batch_post).
        self._progress_at = -math.inf
        self._sleep = sleep
        self._state = SenderState.UNOPENED
        self._stack = AsyncExitStack()
        self._tg: anyio.abc.TaskGroup | None = None
        self._changed: anyio.Event | None = None
        self._ledger = ledger = BatchLedger()
        self._taken = ledger.taken  # counted on the hot path of add()
        self._adds_waiting = 0
        self._cut_since_yield = False
        self._last_error: str | None = None
        self._refused: list[RefusedItem] = []

    # -- lifecycle ---------------------------------------------------------------

    @property
    def state(self) -> SenderState:
        """Unopened, open, failed (a batch was lost or rejected) or closed."""
        return self._state

    async def __aenter__(self) -> Self:
        if self._state is not SenderState.UNOPENED:
            raise UsageError(f"{self!r} can only be opened once")
        self._changed = anyio.Event()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._state = SenderState.OPEN
        self._tg.start_soon(self._linger_loop, name=f"linger {self._taskid}")
        return self

    async def aclose(self) -> None:
        """Stop the linger timer and cancel sends still running; idempotent.

        Batches not acknowledged by then stay available from :meth:`undelivered`.
        """
        if self._state in (SenderState.CLOSED, SenderState.UNOPENED):
            self._state = SenderState.CLOSED
            return
        self._state = SenderState.CLOSED
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._stack.aclose()

    def abort(self) -> None:
        """Stop sending now: cancel the sends under way, start no more.

        Unacknowledged batches stay available from :meth:`undelivered`; the hub
        deduplicates any of them that did reach it when they are re-sent.
        """
        if self._state in (SenderState.OPEN, SenderState.FAILED):
            if self._ledger.failure is None:
                self._ledger.failure = HubUnavailableError("sending was aborted")
            self._state = SenderState.FAILED
            assert self._tg is not None
            self._tg.cancel_scope.cancel()
            self._notify()

    def _check_usable(self) -> None:
        if self._state is SenderState.OPEN:
            return
        if self._state is SenderState.FAILED:
            assert self._ledger.failure is not None
            raise self._ledger.failure
        if self._state is SenderState.UNOPENED:
            raise UsageError(f"{self!r} is not open: use 'async with' first")
        raise UsageError(f"{self!r} is closed")

    # -- adding ------------------------------------------------------------------

    async def add(self, state: State, obj: PathObject) -> None:
        """Queue one validated result, waiting while the budget is full.

        If it raises (a timeout, a cancellation, a hub error, a result too large
        for any batch) the result was not taken: nothing awaits after the budget
        counts it.
        """
        # This runs once per result: _yield_to_sends() and _check_usable() are
        # inlined to their cheap common case.
        budget, buffer = self._budget, self._buffer
        size = buffer.measure(obj)
        if self._cut_since_yield:
            await self._yield_to_sends()
        if self._state is not SenderState.OPEN:
            self._check_usable()
        if not budget.has_room(1, size):
            await self._wait_for_room(1, size)
        if not buffer.fits(size):
            self._cut()  # by bytes: this result would take the body past the limit
        budget.take(1, size)
        self._taken[state] += 1
        was_empty = not buffer.pending
        buffer.add(state, obj, size)
        if buffer.pending >= buffer.batch_size:
            self._cut()
        elif was_empty:
            self._notify()  # wake the linger timer for the new first item

    async def add_many(self, state: State, items: Iterable[object]) -> None:
        """Validate and queue results of one state, as :meth:`add` each would.

        Faster per result: validation, measuring and buffering run in one loop,
        the budget is asked once per run of results that fit the batch being
        filled. On an item that is not valid, or too large, it raises naming its
        index: the items before it are taken, it and those after are not.
        """
        budget, buffer = self._budget, self._buffer
        source, index = iter(items), 0
        while True:
            if self._cut_since_yield:
                await self._yield_to_sends()
            if self._state is not SenderState.OPEN:
                self._check_usable()
            if not budget.has_room(1, 0):
                await self._wait_for_room(1, 0)
            # A run: what fits the batch being filled and the budget.
            want = max(1, buffer.batch_size - buffer.pending)
            if budget.items:
                want = min(want, budget.max_items - budget.items)
            room = min(buffer.room - buffer.nbytes, budget.max_bytes - budget.bytes)
            run = buffer.read_run(source, want, room)
            if run.objs:
                index += len(run.objs)
                budget.take(len(run.objs), run.nbytes)
                self._taken[state] += len(run.objs)
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
        if wait and not self._budget.has_room(pending.count, pending.nbytes):
            await self._wait_for_room(pending.count, pending.nbytes)
        # No await from here on: taken means counted and queued.
        self._budget.take(pending.count, pending.nbytes)
        self._ledger.take(pending)
        self._cut()  # whatever async add()s left pending goes first
        batch = self._policy.cut_pending(pending)
        self._budget.resize(len(batch.body) - pending.nbytes)
        self._enqueue(batch)

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
        return dict(self._taken)

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
                while not self._budget.has_room(n, nbytes):
                    self._check_usable()
                    # Blocked: send what is pending now rather than after linger.
                    self._cut()
                    await self._wait_changed()
        except TimeoutError:
            b = self._budget
            raise BackpressureTimeout(
                f"add() waited {self.add_timeout}s for room in the send budget"
                f" ({b.items}/{b.max_items} results, {b.bytes}/{b.max_bytes} bytes"
                " queued or in flight): the hub is not keeping up"
            ) from None
        finally:
            self._adds_waiting -= 1
        self._check_usable()

    # -- cutting and sending -----------------------------------------------------

    def _cut(self) -> None:
        nbytes = self._buffer.nbytes
        batch = self._policy.cut()
        if batch is not None:
            self._budget.resize(len(batch.body) - nbytes)
            self._enqueue(batch)

    def _enqueue(self, batch: Batch) -> None:
        self._cut_since_yield = True
        self._ledger.queue(batch)
        self._pump()

    def _pump(self) -> None:
        ready = self._ledger.ready
        while (
            ready and self._budget.can_start_batch and self._state is SenderState.OPEN
        ):
            batch = ready.popleft()
            self._budget.start_batch()
            assert self._tg is not None
            self._tg.start_soon(
                self._send, batch, name=f"send {batch.key(self._taskid)}"
            )

    async def _send(self, batch: Batch) -> None:
        started, retries = self._clock(), self._ledger.retries
        try:
            duplicate = await post_batch(
                self._client,
                self._taskid,
                batch,
                delivery_timeout=self.delivery_timeout,
                progress_at=self._progress_at,
                clock=self._clock,
                on_retry=self._count_retry,
                on_refused=self._refuse,
            )
        except HubError as exc:
            self._fail(batch, exc)
        except Exception as exc:  # a bug must not tear down the task group
            logger.exception("sending batch %s failed unexpectedly", batch.seq)
            self._fail(batch, HubProtocolError(f"batch {batch.seq}: {exc!r}"))
        else:
            self._progress_at = self._clock()
            self._ledger.acked(batch, duplicate=duplicate)
            self._budget.release(batch.count, len(batch.body))
            if self._sizer is not None:
                # The next batches' size follows how the hub answered this one.
                self._buffer.batch_size = self._sizer.acknowledged(
                    self._clock() - started, retried=self._ledger.retries > retries
                )
        finally:
            self._budget.finish_batch()
            self._pump()
            self._notify()

    def _count_retry(self, exc: HubUnavailableError, delay: float) -> None:
        self._ledger.retries += 1
        self.note_error(exc)

    def _refuse(self, refused: RefusedItem) -> None:
        logger.warning(
            "the hub refused a result of task %s (batch %s, %s): %s",
            self._taskid,
            refused.seq,
            refused.state,
            refused.reason,
        )
        self._refused.append(refused)

    def refused(self) -> list[RefusedItem]:
        """Results the hub refused for good, each with its reason."""
        return list(self._refused)

    def note_error(self, exc: BaseException) -> None:
        """Remember why a request failed, for the statistics and the report."""
        self._last_error = str(exc) or type(exc).__name__

    def _fail(self, batch: Batch, exc: HubError) -> None:
        self.note_error(exc)
        logger.warning(
            "batch %s of task %s not delivered: %s", batch.seq, self._taskid, exc
        )
        if self._ledger.failed(batch, exc) and self._state is SenderState.OPEN:
            self._state = SenderState.FAILED

    async def _linger_loop(self) -> None:
        while True:
            remaining = self._policy.linger_remaining(self._clock())
            if remaining is None:
                await self._wait_changed()
            elif remaining > 0:
                await self._sleep(remaining)
            else:
                self._cut()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    async def _wait_changed(self) -> None:
        assert self._changed is not None
        await self._changed.wait()

    # -- finishing ---------------------------------------------------------------

    async def drain(self) -> None:
        """Send what is pending and wait until every batch is acknowledged.

        Returns within the delivery deadline of the last batch; raises the hub
        error that failed the sender if a batch missed it or was rejected.
        """
        self._check_usable()
        self._cut()
        while self._ledger.unacked:
            self._check_usable()
            await self._wait_changed()
        self._check_usable()

    def undelivered(self) -> list[Batch]:
        """Every batch not acknowledged, pending results cut into a last one."""
        self._cut_pending_for_spool()
        return self._ledger.undelivered()

    def _cut_pending_for_spool(self) -> None:
        batch = self._policy.cut()
        if batch is not None:
            self._ledger.keep(batch)

    @property
    def batches_cut(self) -> int:
        """How many batches (seqs ``0..n-1``) were cut so far."""
        return self._policy.batches_cut

    def statistics(self) -> SenderStatistics:
        """A snapshot of the counters and the bounded buffers."""
        ledger = self._ledger
        return SenderStatistics(
            state=self._state.value,
            items_added=ledger.items_taken,
            items_acked=ledger.items_acked,
            items_pending=self._policy.pending,
            items_outstanding=self._budget.items,
            max_pending_items=self._budget.max_items,
            bytes_outstanding=self._budget.bytes,
            max_pending_bytes=self._budget.max_bytes,
            batch_size=self._buffer.batch_size,
            max_batch_bytes=self._buffer.max_batch_bytes,
            batches_cut=self._policy.batches_cut,
            batches_queued=len(ledger.ready),
            batches_in_flight=self._budget.batches_in_flight,
            max_inflight_batches=self._budget.max_batches,
            batches_acked=ledger.batches_acked,
            duplicates=ledger.duplicates,
            retries=ledger.retries,
            adds_waiting=self._adds_waiting,
            last_error=self._last_error,
            refused=tuple(self._refused),
        )

    def __repr__(self) -> str:
        b, ledger = self._budget, self._ledger
        return (
            f"<BatchSender task={self._taskid!r} {self._state.value}"
            f" acked={ledger.items_acked}/{ledger.items_taken}"
            f" outstanding={b.items}/{b.max_items}"
            f" in_flight={b.batches_in_flight}/{b.max_batches}"
            f" retries={ledger.retries}>"
        )
