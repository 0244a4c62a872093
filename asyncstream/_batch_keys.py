"""Batch keys: each batch of a task gets the next ``seq`` and its body, once.

A batch is numbered ``0, 1, 2…`` in the order it is cut and posted under the
idempotency key ``<taskid>:<seq>``; its request body is encoded when it is cut, so
that every retry, the spool and ``asyncstream resend`` carry the very same bytes
under the same key and the hub counts it once. No I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._batch_body import BatchEnvelope, Result
from ._identity import TaskIdentity
from ._paths import State
from ._retry import Clock

__all__ = ["Batch", "BatchSequence"]


@dataclass(frozen=True, slots=True)
class Batch:
    """One cut batch: its number, how many results it holds, and its exact body.

    The path objects themselves are not kept, only the encoded body.
    """

    seq: int
    count: int
    body: bytes = field(repr=False)
    cut_at: float

    def key(self, taskid: str) -> str:
        """The idempotency key the hub deduplicates this batch by."""
        return TaskIdentity(taskid).batch_key(self.seq)


class BatchSequence:
    """Number the batches of one task and encode each body once."""

    __slots__ = ("_clock", "_next_seq", "envelope", "identity")

    def __init__(self, identity: TaskIdentity, *, clock: Clock = time.monotonic):
        self.identity = identity
        self.envelope = BatchEnvelope(
            identity.jobid, identity.taskname, identity.queue_name
        )
        self._clock = clock
        self._next_seq = 0

    @property
    def batches_cut(self) -> int:
        """How many batches were cut so far (the next batch's ``seq``)."""
        return self._next_seq

    def cut(self, items: Mapping[State, Sequence[Result]], count: int) -> Batch:
        """Make ``items`` (validated, ``count`` results) the next batch."""
        return self.cut_encoded(self.envelope.encode_items(items), count)

    def cut_encoded(self, fragment: bytes, count: int) -> Batch:
        """Make items already encoded (``count`` results) the next batch."""
        seq = self._next_seq
        self._next_seq += 1
        body = self.envelope.wrap(seq, fragment)
        return Batch(seq=seq, count=count, body=body, cut_at=self._clock())
