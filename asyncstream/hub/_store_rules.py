"""The decisions every store takes the same way, without I/O.

A store reads what it holds, asks one of these what the request means, and
writes accordingly; the three stores share them, so their answers cannot drift.
"""

from __future__ import annotations

from itertools import islice

from .._paths import PathObject
from ._store import (
    BatchOutcome,
    IdempotencyConflictError,
    MissingBatchesError,
    ResultBatch,
    StreamInfo,
    StreamOffsetError,
    UnknownTaskError,
)


def append_decision(info: StreamInfo, offset: int | None, size: int) -> str:
    """How to take an append of ``size`` paths that expects ``offset``.

    ``"append"``: at the end (or no offset named); ``"compare"``: the range is
    already stored, a retried append whose answer was lost if the paths match.
    Anything else is a :class:`StreamOffsetError`: the writer and the stream
    disagree on where the chunk goes.
    """
    if offset is None or offset == info.count:
        return "append"
    if offset + size <= info.count:
        return "compare"
    raise StreamOffsetError(
        f"stream {info.id!r} holds {info.count} paths; an append at offset"
        f" {offset} would leave a gap or overlap",
        count=info.count,
    )


def repeated_append(
    info: StreamInfo, offset: int, stored: list[PathObject], paths: list[PathObject]
) -> StreamInfo:
    """The answer to an append of a range already stored: same paths or 409."""
    if stored != paths:
        raise StreamOffsetError(
            f"stream {info.id!r} already holds other paths at offset {offset}",
            count=info.count,
        )
    return StreamInfo(info.id, info.count, info.closed, duplicate=True)


def unknown_task_error(taskid: str) -> UnknownTaskError:
    """The refusal of a completion that would create ``taskid`` without knowing
    who it is: a stray or forged ``complete`` must not block the id for good."""
    return UnknownTaskError(
        f"task {taskid!r} is unknown to the hub: a completion of a task that sent"
        " no batch must carry its identity (task, and jobid and queue if it has"
        " them)",
        field="task",
    )


def repeated_batch(stored: ResultBatch, batch: ResultBatch) -> BatchOutcome:
    """The answer to ``batch`` when its key holds ``stored``: a duplicate if the
    two are the same batch, else :class:`IdempotencyConflictError` (409)."""
    if stored.digest == batch.digest or stored.same_content(batch):
        return BatchOutcome(0, True)
    raise IdempotencyConflictError(
        f"Idempotency-Key {batch.taskid}:{batch.seq} was used with another body"
    )


# Completion lists at most this many missing seqs; the count is always exact.
MAX_LISTED_MISSING = 1000


def missing_batches_error(
    taskid: str, batches: int, present: set[int]
) -> MissingBatchesError | None:
    """The error for completing ``taskid`` with ``batches`` when ``present`` differ.

    Takes time in ``len(present)``, not in ``batches``: a client may claim any
    number of batches, and the hub must not walk ``range(10**18)`` to answer.
    """
    stored_below = sum(1 for seq in present if seq < batches)
    missing_count = batches - stored_below
    unexpected = sorted(seq for seq in present if seq >= batches)
    if not missing_count and not unexpected:
        return None
    # The first missing seqs are among the first len(present) + limit numbers.
    missing = list(
        islice(
            (seq for seq in range(batches) if seq not in present), MAX_LISTED_MISSING
        )
    )
    parts = []
    if missing:
        more = "..." if missing_count > 20 else ""
        parts.append(f"missing seqs {missing[:20]}{more}")
    if unexpected:
        parts.append(f"seqs beyond batches={batches}: {unexpected[:20]}")
    return MissingBatchesError(
        f"task {taskid!r} cannot complete with batches={batches}: " + "; ".join(parts),
        missing=missing,
        missing_count=missing_count,
        unexpected=unexpected[:MAX_LISTED_MISSING],
    )
