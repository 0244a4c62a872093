"""The sending half of :class:`~._sender.BatchSender`: cut, post, keep the books.

A cut batch is queued in the :class:`~._batch_ledger.BatchLedger` and started
as soon as the :class:`~._send_budget.SendBudget` has a slot for it; each send
posts it within its delivery deadline (:mod:`._batch_post`), and its end frees
the slot and the budget and wakes whoever waits (an ``add`` for room, ``drain``
for the last acknowledgement, the linger timer). The adding half is
:mod:`._sender_add`; the lifecycle and the statistics are :mod:`._sender`'s.
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc
import anyio.lowlevel

from ._batch_ledger import BatchLedger
from ._batch_post import post_batch
from ._batch_sizer import BatchSizer
from ._batch_split import RefusedItem
from ._batching import Batch, BatchPolicy
from ._exceptions import HubError, HubProtocolError, HubUnavailableError, UsageError
from ._hub_client import HubClient
from ._result_buffer import ResultBuffer
from ._retry import Clock, Sleep
from ._send_budget import SendBudget
from ._sender_stats import SenderState

__all__ = ["SenderSends"]

logger = logging.getLogger("asyncstream.sender")


class SenderSends:
    """Cut batches, send them within the budget, keep the books; no adding."""

    # Set by BatchSender.__init__.
    _client: HubClient
    _taskid: str
    _policy: BatchPolicy
    _buffer: ResultBuffer
    _sizer: BatchSizer | None
    _budget: SendBudget
    delivery_timeout: float
    add_timeout: float | None
    _clock: Clock
    _sleep: Sleep
    # When the hub last acknowledged a batch of this task (see _batch_post).
    _progress_at: float
    _state: SenderState
    _tg: anyio.abc.TaskGroup | None
    _changed: anyio.Event | None
    _ledger: BatchLedger
    _adds_waiting: int
    _cut_since_yield: bool
    _last_error: str | None
    _refused: list[RefusedItem]

    def _check_usable(self) -> None:
        if self._state is SenderState.OPEN:
            return
        if self._state is SenderState.FAILED:
            assert self._ledger.failure is not None
            raise self._ledger.failure
        if self._state is SenderState.UNOPENED:
            raise UsageError(f"{self!r} is not open: use 'async with' first")
        raise UsageError(f"{self!r} is closed")

    # -- cutting and sending -----------------------------------------------------

    def _cut(self) -> None:
        buffer = self._buffer
        count, nbytes = buffer.pending, buffer.nbytes
        if not count:
            return
        # Counted once per batch here, not per result as it was added: the
        # summary, and the budget (until now the buffer counted for it). The
        # budget is charged before the buffer is emptied, so that a sync
        # caller's thread reading both (room_beside) never finds these
        # results in neither; it is set to the body's size once encoded.
        self._budget.take(count, nbytes)
        pending = buffer.take()
        assert pending is not None
        self._ledger.take(pending)
        batch = self._policy.cut_pending(pending)
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
        # A send goes on with the batch that waits for the slot it frees, if
        # one does (a producer ahead of the hub keeps one waiting): a task
        # started per batch cost the loop some 15 us a batch, a checkpoint 2.
        next_batch: Batch | None = batch
        while next_batch is not None:
            next_batch = await self._send_one(next_batch)
            if next_batch is not None:
                # Its post starts a loop turn later, as a task's would: whoever
                # the acknowledgement woke (an add waiting for room) goes first.
                await anyio.lowlevel.checkpoint()

    async def _send_one(self, batch: Batch) -> Batch | None:
        """Post ``batch`` and keep the books; return the next batch to post."""
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
            self._notify()
        # Not reached when cancelled: the task group is being torn down.
        return self._next_ready()

    def _next_ready(self) -> Batch | None:
        """The first batch waiting for a slot, started, if one may start now."""
        ready = self._ledger.ready
        if ready and self._budget.can_start_batch and self._state is SenderState.OPEN:
            self._budget.start_batch()
            return ready.popleft()
        return None

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

    def stop_taking(self, reason: HubError) -> None:
        """Fail the sender as a batch the hub refused would: no batch is started
        any more and every later call raises ``reason`` (or the failure that
        came first). Sends under way go on; whoever hears of the failure spools
        what is left unacknowledged, with what is handed over meanwhile."""
        if self._ledger.failure is None:
            self._ledger.failure = reason
        if self._state is SenderState.OPEN:
            self._state = SenderState.FAILED
        self._notify()  # an add waiting for room, or drain(), hears of it now

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
        pending = self._buffer.take()
        if pending is not None:
            self._ledger.take(pending)
            self._ledger.keep(self._policy.cut_pending(pending))
