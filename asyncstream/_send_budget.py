"""The send budget: how many results (and bytes) may be outstanding, how many
batches in flight.

A result counts against the budget from the moment the sender accepts it until
the hub acknowledges its batch: as one result, and as the bytes it takes in a
body (once cut, its batch counts its whole body). The results in the batch
being filled are charged here when it is cut; until then the sender counts its
buffer with the budget, so that adding one result changes only the buffer's
counters. ``add()`` waits while the budget is full. That is what bounds a
sender's memory, whatever the hub's speed and however large the results. No
I/O: the sender asks, and does the waiting.
"""

from __future__ import annotations

from ._exceptions import InvalidInputError

__all__ = ["DEFAULT_MAX_PENDING_BYTES", "SendBudget"]

DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024


class SendBudget:
    """Results queued or in flight (at most ``max_items``, and at most
    ``max_bytes`` of batch bodies) and batches in flight.

    A result is counted from the moment ``add`` accepts it until the hub
    acknowledges its batch; that is what bounds the memory of a sender.
    """

    def __init__(
        self,
        max_items: int,
        max_batches: int,
        max_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        if max_items < 1:
            raise InvalidInputError(
                f"max_pending_items must be at least 1, got {max_items!r}"
            )
        if max_batches < 1:
            raise InvalidInputError(
                f"max_inflight_batches must be at least 1, got {max_batches!r}"
            )
        if max_bytes < 1:
            raise InvalidInputError(
                f"max_pending_bytes must be at least 1, got {max_bytes!r}"
            )
        self.max_items = max_items
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.items = 0
        self.bytes = 0
        self.batches_in_flight = 0

    def __repr__(self) -> str:
        return (
            f"<SendBudget items={self.items}/{self.max_items}"
            f" bytes={self.bytes}/{self.max_bytes}"
            f" in_flight={self.batches_in_flight}/{self.max_batches}>"
        )

    def has_room(self, n: int, nbytes: int = 0) -> bool:
        """True if ``n`` more results of ``nbytes`` fit (anything fits an empty
        budget: one batch at most, which the batch limits bound)."""
        return (
            self.items + n <= self.max_items and self.bytes + nbytes <= self.max_bytes
        ) or self.items == 0

    def take(self, n: int, nbytes: int = 0) -> None:
        """Count ``n`` accepted results of ``nbytes``."""
        self.items += n
        self.bytes += nbytes

    def resize(self, nbytes: int) -> None:
        """Pending results of ``nbytes`` became a batch body of another size."""
        self.bytes += nbytes

    def release(self, n: int, nbytes: int = 0) -> None:
        """Forget ``n`` results, ``nbytes`` of body, whose batch was acknowledged."""
        if n > self.items or nbytes > self.bytes:
            raise RuntimeError(f"releasing {n} results of {nbytes} bytes from {self!r}")
        self.items -= n
        self.bytes -= nbytes

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
