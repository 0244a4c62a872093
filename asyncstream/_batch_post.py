"""Posting one batch, acknowledged within its delivery deadline or not at all.

Every batch must be acknowledged within ``delivery_timeout`` of being cut: its
:class:`~._deadline.Deadline` is built from the moment it was cut, on the
sender's clock; retries stop there (which also cuts a backoff short), and a
request still on the wire when the time is up is cancelled. A batch that misses
it is a :class:`HubUnavailableError`, for the sender to count as failed.
"""

from __future__ import annotations

import anyio

from ._batch_keys import Batch
from ._deadline import Deadline
from ._exceptions import HubUnavailableError
from ._hub_client import HubClient
from ._retry import Clock, OnRetry

__all__ = ["post_batch"]


async def post_batch(
    client: HubClient,
    taskid: str,
    batch: Batch,
    *,
    delivery_timeout: float,
    clock: Clock,
    on_retry: OnRetry,
) -> bool:
    """Post ``batch`` under its key; return True if the hub already held it."""
    deadline = Deadline.at(batch.cut_at + delivery_timeout, clock=clock)
    remaining = deadline.remaining()
    if remaining <= 0:
        raise HubUnavailableError(
            f"batch {batch.seq} waited past its delivery deadline for a slot"
        )
    # A hard stop on the loop's own clock, so that a request already on the
    # wire cannot outlive the deadline either.
    with anyio.move_on_after(remaining) as scope:
        answer = await client.post_results(
            taskid, batch.seq, batch.body, deadline=deadline, on_retry=on_retry
        )
    if scope.cancelled_caught:
        raise HubUnavailableError(
            f"batch {batch.seq} not acknowledged in {delivery_timeout}s"
        )
    return answer.get("duplicate") is True
