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

The class is assembled from two halves along the budget: :mod:`._sender_add`
takes results in (and waits for room), :mod:`._sender_sends` cuts, sends and
keeps the books; this module holds the settings, the lifecycle and the
statistics.
"""

from __future__ import annotations

import math
import time
from contextlib import AsyncExitStack
from typing import Self

import anyio
import anyio.abc

from ._batch_ledger import BatchLedger
from ._batch_sizer import BatchSizer
from ._batch_split import RefusedItem
from ._batching import BatchPolicy
from ._exceptions import HubUnavailableError, InvalidInputError, UsageError
from ._hub_client import HubClient
from ._identity import TaskIdentity
from ._result_buffer import DEFAULT_MAX_BATCH_BYTES
from ._retry import Clock, Sleep
from ._send_budget import DEFAULT_MAX_PENDING_BYTES, SendBudget
from ._sender_add import SenderAdds
from ._sender_stats import SenderState, SenderStatistics

# The defaults of a stream's sender, shared by every face that builds one.
# A batch of 2000: the hub's fixed cost per request (routing, a transaction, an
# fsync) and the client's (a request through httpx, a loop hand-off) shared by 4
# times the results of 500, which left half of a file handler's loop-thread time
# in posting. 4 in flight plus one filling still fit the 10,000 pending results.
DEFAULT_BATCH_SIZE = 2000
DEFAULT_LINGER = 1.0
DEFAULT_MAX_PENDING_ITEMS = 10_000
DEFAULT_MAX_INFLIGHT_BATCHES = 4
DEFAULT_DELIVERY_TIMEOUT = 300.0


class BatchSender(SenderAdds, anyio.abc.AsyncResource):
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
        self._ledger = BatchLedger()
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

    @property
    def batch_size(self) -> int:
        """Results in the next full batch (adapted to the hub's answers with
        ``adaptive_batch_size``)."""
        return self._buffer.batch_size

    @property
    def batches_cut(self) -> int:
        """How many batches (seqs ``0..n-1``) were cut so far."""
        return self._policy.batches_cut

    def statistics(self) -> SenderStatistics:
        """A snapshot of the counters and the bounded buffers."""
        ledger, pending = self._ledger, self._buffer.pending
        return SenderStatistics(
            state=self._state.value,
            items_added=ledger.items_taken + pending,
            items_acked=ledger.items_acked,
            items_pending=pending,
            items_outstanding=self._budget.items + pending,
            max_pending_items=self._budget.max_items,
            bytes_outstanding=self._budget.bytes + self._buffer.nbytes,
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
        b, ledger, pending = self._budget, self._ledger, self._buffer.pending
        return (
            f"<BatchSender task={self._taskid!r} {self._state.value}"
            f" acked={ledger.items_acked}/{ledger.items_taken + pending}"
            f" outstanding={b.items + pending}/{b.max_items}"
            f" in_flight={b.batches_in_flight}/{b.max_batches}"
            f" retries={ledger.retries}>"
        )
