"""The send budget: how many results may be outstanding, how many batches in flight.

A result counts against the budget from the moment the sender accepts it until
the hub acknowledges its batch; ``add()`` waits while the budget is full. That is
what bounds a sender's memory, whatever the hub's speed. No I/O: the sender asks,
and does the waiting.
"""

from __future__ import annotations

from ._exceptions import InvalidInputError

__all__ = ["SendBudget"]


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
