"""When to cut a batch of results, and into what: policy, no I/O.

:class:`BatchPolicy` is the sender's decision object: the results added since the
last cut (a :class:`~._result_buffer.ResultBuffer`), and the numbering and
encoding of batches (a :class:`~._batch_keys.BatchSequence`). The async
:class:`~._sender.BatchSender` asks it what to do and only does the waiting and
the I/O; the send budget is :mod:`._send_budget`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ._batch_keys import Batch, BatchSequence
from ._identity import TaskIdentity
from ._paths import PathObject, State
from ._result_buffer import DEFAULT_MAX_BATCH_BYTES, PendingResults, ResultBuffer
from ._retry import Clock

__all__ = ["Batch", "BatchPolicy"]


class BatchPolicy:
    """Accumulate results per state; say when a batch is due; cut it.

    A batch is due when it holds ``batch_size`` results, or when its first result
    was added ``linger`` seconds ago or more (by ``clock``); it is cut before a
    result would take its body past ``max_batch_bytes``.
    """

    def __init__(
        self,
        identity: TaskIdentity,
        *,
        batch_size: int,
        linger: float,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        clock: Clock = time.monotonic,
    ) -> None:
        self.identity = identity
        self._sequence = BatchSequence(identity, clock=clock)
        self.buffer = ResultBuffer(
            batch_size=batch_size,
            linger=linger,
            envelope=self._sequence.envelope,
            max_batch_bytes=max_batch_bytes,
            clock=clock,
        )

    def __repr__(self) -> str:
        return (
            f"<BatchPolicy pending={self.pending}/{self.batch_size}"
            f" linger={self.linger}s next_seq={self.batches_cut}>"
        )

    @property
    def batch_size(self) -> int:
        """Results in a full batch."""
        return self.buffer.batch_size

    @property
    def linger(self) -> float:
        """Seconds the first pending result may wait for a batch to fill."""
        return self.buffer.linger

    @property
    def pending(self) -> int:
        """Results added since the last cut."""
        return self.buffer.pending

    @property
    def batches_cut(self) -> int:
        """How many batches were cut so far (the next batch's ``seq``)."""
        return self._sequence.batches_cut

    def add(self, state: State, obj: PathObject) -> Batch | None:
        """Accumulate one validated result; the batch it made due by bytes, if any.

        Raises :class:`InvalidPathError` for a result no batch can carry.
        """
        buffer = self.buffer
        size = buffer.measure(obj)
        cut = None if buffer.fits(size) else self.cut()
        buffer.add(state, obj, size)
        return cut

    @property
    def full(self) -> bool:
        """True when a batch is due by size."""
        return self.buffer.full

    def linger_remaining(self, now: float) -> float | None:
        """Seconds until a batch is due by time; ``None`` with nothing pending."""
        return self.buffer.linger_remaining(now)

    def cut(self) -> Batch | None:
        """Cut everything pending into the next batch; ``None`` if nothing is."""
        pending = self.buffer.take()
        return None if pending is None else self.cut_pending(pending)

    def cut_pending(self, pending: PendingResults) -> Batch:
        """Make results taken out of a buffer a batch of their own."""
        fragment = pending.fragment
        if fragment is None:
            return self._sequence.cut(pending.items, pending.count)
        return self._sequence.cut_encoded(fragment, pending.count)

    def cut_items(self, items: Mapping[State, list[PathObject]], count: int) -> Batch:
        """Make ``items`` (validated, ``count`` results) a batch of their own."""
        return self._sequence.cut(items, count)
