"""What a sender reports about itself: its lifecycle state and a statistics snapshot."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._batch_split import RefusedItem

__all__ = ["SenderState", "SenderStatistics"]


class SenderState(enum.Enum):
    """Where a sender is in its lifecycle."""

    UNOPENED = "unopened"
    OPEN = "open"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SenderStatistics:
    """A snapshot of a sender's counters and bounded buffers.

    ``last_error`` is the last failure a request met (retried or not), as its
    error said it, ``None`` while every request went through at once.
    """

    state: str
    items_added: int
    items_acked: int
    items_pending: int
    items_outstanding: int
    max_pending_items: int
    bytes_outstanding: int
    max_pending_bytes: int
    batch_size: int
    max_batch_bytes: int
    batches_cut: int
    batches_queued: int
    batches_in_flight: int
    max_inflight_batches: int
    batches_acked: int
    duplicates: int
    retries: int
    adds_waiting: int
    last_error: str | None = None
    # Results the hub refused for good (named in a 422), with its reasons.
    refused: tuple[RefusedItem, ...] = ()
