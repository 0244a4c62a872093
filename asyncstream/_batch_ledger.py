"""The sender's books: which batches wait, which are unacknowledged, what was taken.

:class:`BatchLedger` is the bookkeeping of one task's batches, without I/O: the
batches cut and waiting for a send slot, every batch not yet acknowledged (what a
failed delivery spools), the results taken per state (the task's summary, counted
once, here), acknowledgements, duplicates, retries, and the first failure. The
async :class:`~._sender.BatchSender` records what happened and asks it what is
left.
"""

from __future__ import annotations

from collections import deque

from ._batch_keys import Batch
from ._exceptions import HubError
from ._paths import STATES, State
from ._result_buffer import PendingResults

__all__ = ["BatchLedger"]


class BatchLedger:
    """What became of every result and batch of one task so far."""

    def __init__(self) -> None:
        self.ready: deque[Batch] = deque()  # cut, waiting for a send slot
        self.unacked: dict[int, Batch] = {}  # cut and not acknowledged
        # The one count of results taken, per state (the task's summary).
        self.taken: dict[State, int] = dict.fromkeys(STATES, 0)
        self.items_acked = self.batches_acked = 0
        self.duplicates = self.retries = 0
        self.failure: HubError | None = None

    def __repr__(self) -> str:
        return (
            f"<BatchLedger taken={self.items_taken} acked={self.items_acked}"
            f" unacked={len(self.unacked)} ready={len(self.ready)}>"
        )

    @property
    def items_taken(self) -> int:
        """Results taken, all states together."""
        return sum(self.taken.values())

    def take(self, pending: PendingResults) -> None:
        """Count results taken as a whole, and mark them taken."""
        pending.taken = True
        taken = self.taken
        for state, objs in pending.items.items():
            taken[state] += len(objs)

    def queue(self, batch: Batch) -> None:
        """A batch was cut: it waits for a send slot, unacknowledged."""
        self.unacked[batch.seq] = batch
        self.ready.append(batch)

    def keep(self, batch: Batch) -> None:
        """A batch cut after sending stopped: unacknowledged, never sent here."""
        self.unacked[batch.seq] = batch

    def acked(self, batch: Batch, *, duplicate: bool) -> None:
        """The hub acknowledged ``batch`` (it already held it if ``duplicate``)."""
        del self.unacked[batch.seq]
        self.items_acked += batch.count
        self.batches_acked += 1
        if duplicate:
            self.duplicates += 1

    def failed(self, batch: Batch, exc: HubError) -> bool:
        """``batch`` was not delivered; True if this is the first failure."""
        if self.failure is not None:
            return False
        self.failure = exc
        return True

    def undelivered(self) -> list[Batch]:
        """Every batch not acknowledged, in ``seq`` order."""
        return sorted(self.unacked.values(), key=lambda b: b.seq)
