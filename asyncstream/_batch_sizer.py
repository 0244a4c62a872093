"""How many results the next batch holds: adapted to the hub's answers, no I/O.

:class:`BatchSizer` is additive-increase, multiplicative-decrease on the time the
hub takes to acknowledge a batch. An acknowledgement slower than ``target``, or
one that needed retries (the hub refused it with 503 or 429, or did not answer),
halves the size; one faster than half of ``target`` adds a tenth of the largest
size back. The size stays between ``smallest`` and ``largest`` (the configured
``batch_size``): a hub that keeps up gets full batches, a struggling one smaller
batches that each fit its time. Bytes and linger still cut a batch first
(:mod:`._result_buffer`). A sender uses one with ``adaptive_batch_size=True``.
"""

from __future__ import annotations

from ._exceptions import InvalidInputError

__all__ = ["DEFAULT_TARGET_LATENCY", "BatchSizer"]

# An acknowledgement slower than this is the hub struggling: a batch of 500
# takes tens of milliseconds on a hub that keeps up.
DEFAULT_TARGET_LATENCY = 2.0


class BatchSizer:
    """The next batch's size, from the latency and retries of past batches."""

    __slots__ = ("largest", "size", "smallest", "step", "target")

    def __init__(
        self,
        largest: int,
        *,
        smallest: int | None = None,
        target: float = DEFAULT_TARGET_LATENCY,
    ) -> None:
        if not target > 0:
            raise InvalidInputError(f"target latency must be > 0, got {target!r}")
        self.largest = largest
        self.smallest = max(1, largest // 20) if smallest is None else smallest
        if not 1 <= self.smallest <= largest:
            raise InvalidInputError(
                f"smallest batch size {self.smallest} not within 1..{largest}"
            )
        self.target = target
        self.step = max(1, largest // 10)
        self.size = largest

    def __repr__(self) -> str:
        return (
            f"<BatchSizer size={self.size} in {self.smallest}..{self.largest}"
            f" target={self.target}s>"
        )

    def acknowledged(self, latency: float, *, retried: bool) -> int:
        """Record how a batch went; return the size for the next one."""
        if retried or latency > self.target:
            self.size = max(self.smallest, self.size // 2)
        elif latency < self.target / 2:
            self.size = min(self.largest, self.size + self.step)
        return self.size
