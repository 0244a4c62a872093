"""When to cut a batch of results, and how much may be outstanding: policy, no I/O.

:class:`BatchPolicy` accumulates added results per state and says when a batch is
due — by size, or because its first item has lingered long enough by an injected
clock — and cuts it into a :class:`Batch` with the next sequence number and the
request body encoded once. :class:`SendBudget` counts results queued or in flight
(bounded) and batches in flight (bounded). The async :class:`~._sender.BatchSender`
asks them what to do and only does the waiting and the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import InvalidInputError
from ._hub_client import encode_json
from ._paths import STATES, PathObject, State
from ._retry import Clock


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The fields every batch body of one task repeats."""

    taskid: str
    jobid: Any
    task: str
    queue: str | None


@dataclass(frozen=True, slots=True)
class Batch:
    """One cut batch: its number, how many results it holds, and its exact body.

    The body is encoded once, when the batch is cut, so that every retry and every
    resend from a spool file carries the very same bytes under the same key; the
    path objects themselves are not kept.
    """

    seq: int
    count: int
    body: bytes = field(repr=False)
    cut_at: float

    def key(self, taskid: str) -> str:
        """The idempotency key the hub deduplicates this batch by."""
        return f"{taskid}:{self.seq}"


class BatchPolicy:
    """Accumulate results per state; say when a batch is due; cut it.

    A batch is due when it holds ``batch_size`` results, or when its first result
    was added ``linger`` seconds ago or more (by ``clock``).
    """

    def __init__(
        self,
        header: BatchHeader,
        *,
        batch_size: int,
        linger: float,
        clock: Clock = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(
                f"batch_size must be at least 1, got {batch_size!r}"
            )
        if linger < 0:
            raise InvalidInputError(f"linger must not be negative, got {linger!r}")
        self.header = header
        self.batch_size = batch_size
        self.linger = linger
        self._clock = clock
        self._items: dict[State, list[PathObject]] = {}
        self._pending = 0
        self._first_at: float | None = None
        self._next_seq = 0

    def __repr__(self) -> str:
        return (
            f"<BatchPolicy pending={self._pending}/{self.batch_size}"
            f" linger={self.linger}s next_seq={self._next_seq}>"
        )

    @property
    def pending(self) -> int:
        """Results added since the last cut."""
        return self._pending

    @property
    def batches_cut(self) -> int:
        """How many batches were cut so far (the next batch's ``seq``)."""
        return self._next_seq

    def add(self, state: State, obj: PathObject) -> None:
        """Accumulate one validated result."""
        if self._first_at is None:
            self._first_at = self._clock()
        items = self._items.get(state)
        if items is None:
            self._items[state] = [obj]
        else:
            items.append(obj)
        self._pending += 1

    @property
    def full(self) -> bool:
        """True when a batch is due by size."""
        return self._pending >= self.batch_size

    def linger_remaining(self, now: float) -> float | None:
        """Seconds until a batch is due by time; ``None`` with nothing pending."""
        if self._first_at is None:
            return None
        return max(0.0, self._first_at + self.linger - now)

    def due(self, now: float) -> bool:
        """True when a batch should be cut now, by size or by linger time."""
        remaining = self.linger_remaining(now)
        return self.full or (remaining is not None and remaining <= 0)

    def cut(self) -> Batch | None:
        """Cut everything pending into the next batch; ``None`` if nothing is."""
        if not self._pending:
            return None
        items, count = self._items, self._pending
        self._items, self._pending, self._first_at = {}, 0, None
        return self.cut_items(items, count)

    def cut_items(self, items: Mapping[State, list[PathObject]], count: int) -> Batch:
        """Make ``items`` (validated, ``count`` results) a batch of their own."""
        seq = self._next_seq
        self._next_seq += 1
        h = self.header
        body = {
            "jobid": h.jobid,
            "task": h.task,
            "queue": h.queue,
            "seq": seq,
            # A fixed state order keeps the body the same however items arrived.
            "items": {s: items[s] for s in STATES if items.get(s)},
        }
        return Batch(seq=seq, count=count, body=encode_json(body), cut_at=self._clock())


class SendBudget:
    """Results queued or in flight (at most ``max_items``) and batches in flight.

    A result is counted from the moment ``add`` accepts it until the hub
    acknowledges its batch; that is what bounds the memory of a sender.
    """

    def __init__(self, max_items: int, max_batches: int) -> None:
        if max_items < 1:
            raise InvalidInputError(
                f"max_pending_items must be at least 1, got {max_items!r}"
            )
        if max_batches < 1:
            raise InvalidInputError(
                f"max_inflight_batches must be at least 1, got {max_batches!r}"
            )
        self.max_items = max_items
        self.max_batches = max_batches
        self.items = 0
        self.batches_in_flight = 0

    def __repr__(self) -> str:
        return (
            f"<SendBudget items={self.items}/{self.max_items}"
            f" in_flight={self.batches_in_flight}/{self.max_batches}>"
        )

    def has_room(self, n: int) -> bool:
        """True if ``n`` more results fit (an oversized ``n`` fits an empty budget)."""
        return self.items + n <= self.max_items or self.items == 0

    def take(self, n: int) -> None:
        """Count ``n`` accepted results."""
        self.items += n

    def release(self, n: int) -> None:
        """Forget ``n`` results whose batch the hub acknowledged."""
        if n > self.items:
            raise RuntimeError(f"releasing {n} results from {self!r}")
        self.items -= n

    @property
    def can_start_batch(self) -> bool:
        """True if another batch may be sent now."""
        return self.batches_in_flight < self.max_batches

    def start_batch(self) -> None:
        """Count a batch whose request starts."""
        if not self.can_start_batch:
            raise RuntimeError(f"no batch slot free in {self!r}")
        self.batches_in_flight += 1

    def finish_batch(self) -> None:
        """Forget a batch whose request ended, acknowledged or not."""
        self.batches_in_flight -= 1
