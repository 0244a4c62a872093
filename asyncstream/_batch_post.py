"""Posting one batch, acknowledged within its delivery deadline or not at all.

A batch fails when the hub has made no progress on its task for
``delivery_timeout``: its :class:`~._deadline.Deadline` runs from the later of the
moment it was cut and the task's last acknowledgement, on the sender's clock.
Counting from the cut alone failed tasks that were only queued behind their own
batches at a busy but working hub: under a cluster's load a batch can wait longer
for a send slot than the timeout while every batch ahead of it is acknowledged.
Retries stop at the deadline (which also cuts a backoff short), and a request still
on the wire when the time is up is cancelled (:mod:`._hub_connection`). A batch
that misses it is a :class:`HubUnavailableError` saying what the hub last
answered, or how the last request failed, for the sender to count as failed.
"""

from __future__ import annotations

from collections.abc import Callable

from ._batch_keys import Batch
from ._batch_split import RefusedItem, post_or_split
from ._deadline import Deadline
from ._exceptions import HubRejectedError, HubUnavailableError
from ._hub_client import HubClient
from ._retry import Clock, OnRetry

__all__ = ["post_batch"]


async def post_batch(
    client: HubClient,
    taskid: str,
    batch: Batch,
    *,
    delivery_timeout: float,
    progress_at: float,
    clock: Clock,
    on_retry: OnRetry,
    on_refused: Callable[[RefusedItem], None] | None = None,
) -> bool:
    """Post ``batch`` under its key; return True if the hub already held it.

    ``progress_at`` is when the hub last acknowledged a batch of this task. An
    item the hub refuses by name is taken out, told to ``on_refused``, and the
    rest posted again under the same key (:mod:`._batch_split`).
    """
    since = max(batch.cut_at, progress_at)
    deadline = Deadline.at(since + delivery_timeout, clock=clock)
    if deadline.remaining() <= 0:
        # It waited (for a send slot) past its deadline: fail, send nothing.
        raise HubUnavailableError(
            f"batch {batch.seq} not acknowledged in {delivery_timeout}s"
        )
    try:
        # The request stops at the deadline, on the wire or in a backoff.
        answer = await post_or_split(
            client,
            taskid,
            batch,
            deadline=deadline,
            on_retry=on_retry,
            on_refused=on_refused or _no_split,
        )
    except HubUnavailableError as exc:
        # Say why: the last answer or failure, not only that time ran out.
        raise HubUnavailableError(
            f"batch {batch.seq} not acknowledged in {delivery_timeout}s: {exc}",
            status_code=exc.status_code,
            detail=exc.detail,
            retry_after=exc.retry_after,
        ) from exc
    return answer.get("duplicate") is True


def _no_split(refused: RefusedItem) -> None:
    raise HubRejectedError(
        f"batch {refused.seq}: the hub refused an item: {refused.reason}",
        status_code=422,
    )
