"""The one accumulator of a task's results: per state, until a batch is due.

A :class:`ResultBuffer` holds validated results per state since the last batch
and says when the next batch is due: when it holds ``batch_size`` results, or
when its first result was added ``linger`` seconds ago (by an injected clock).
The sender keeps one for results added from async code; the sync
``StreamTaskResults`` gets one from its core, fills it in the caller's thread,
and hands over whole :class:`PendingResults`, so that only batches cross to the
event-loop thread, never single results. No I/O, no locks: one owner at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ._exceptions import InvalidInputError
from ._paths import PathObject, State
from ._retry import Clock

__all__ = ["PendingResults", "ResultBuffer"]


@dataclass(slots=True)
class PendingResults:
    """Results taken out of a buffer together, on their way to become a batch.

    ``taken`` is set by whoever takes them for good, so a hand-over that was
    interrupted and repeated is taken once.
    """

    items: dict[State, list[PathObject]] = field(repr=False)
    count: int
    taken: bool = False

    def counts(self) -> dict[State, int]:
        """How many results per state."""
        return {state: len(objs) for state, objs in self.items.items()}


class ResultBuffer:
    """Accumulate results per state; say when a batch is due; hand them over."""

    __slots__ = ("_clock", "_items", "batch_size", "first_at", "linger", "pending")

    def __init__(
        self, *, batch_size: int, linger: float, clock: Clock = time.monotonic
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(
                f"batch_size must be at least 1, got {batch_size!r}"
            )
        if linger < 0:
            raise InvalidInputError(f"linger must not be negative, got {linger!r}")
        self.batch_size = batch_size
        self.linger = linger
        self._clock = clock
        self._items: dict[State, list[PathObject]] = {}
        self.pending = 0
        self.first_at = 0.0

    def __repr__(self) -> str:
        return (
            f"<ResultBuffer pending={self.pending}/{self.batch_size}"
            f" linger={self.linger}s>"
        )

    def add(self, state: State, obj: PathObject) -> None:
        """Accumulate one validated result."""
        if not self.pending:
            self.first_at = self._clock()
        items = self._items.get(state)
        if items is None:
            self._items[state] = [obj]
        else:
            items.append(obj)
        self.pending += 1

    @property
    def full(self) -> bool:
        """True when a batch is due by size."""
        return self.pending >= self.batch_size

    def linger_remaining(self, now: float) -> float | None:
        """Seconds until a batch is due by time; ``None`` with nothing pending."""
        if not self.pending:
            return None
        return max(0.0, self.first_at + self.linger - now)

    def due(self, now: float) -> bool:
        """True when a batch should go now, by size or by linger time."""
        return bool(self.pending) and (
            self.pending >= self.batch_size or now - self.first_at >= self.linger
        )

    def counts(self) -> dict[State, int]:
        """How many results per state are pending."""
        return {state: len(objs) for state, objs in self._items.items()}

    def take(self) -> PendingResults | None:
        """Everything pending, to hand over; ``None`` if nothing is."""
        if not self.pending:
            return None
        taken = PendingResults(self._items, self.pending)
        self._items, self.pending = {}, 0
        return taken
