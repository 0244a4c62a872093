"""What a task returned: whether it is a payload, and storing one kept in memory.

A task run with ``stream_results=False`` returns its results in its payload; the
runner stores them at the hub afterwards, as a hub does with a worker's return
value, so that a run's results are always read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._batch_keys import BatchSequence
from .._hub_client import HubClient
from .._identity import TaskIdentity
from .._paths import check_state

# How long each request of a run keeps retrying.
REQUEST_DEADLINE = 60.0
STORE_BATCH_SIZE = 1000


async def store_payload(
    client: HubClient, identity: TaskIdentity, payload: Mapping[str, Any]
) -> None:
    """Post the ``details`` of an in-memory payload as result batches, complete."""
    assert identity.taskid is not None
    details = payload["status"]["details"]
    sequence = BatchSequence(identity)
    deadline = client.deadline(REQUEST_DEADLINE)
    for key, items in details.items():
        state = check_state(key)
        for start in range(0, len(items), STORE_BATCH_SIZE):
            chunk = items[start : start + STORE_BATCH_SIZE]
            batch = sequence.cut({state: chunk}, len(chunk))
            await client.post_results(
                identity.taskid, batch.seq, batch.body, deadline=deadline
            )
    await client.complete_task(
        identity.taskid,
        sequence.batches_cut,
        dict(payload),
        identity=identity,
        deadline=deadline,
    )


def is_payload(payload: Any) -> bool:
    """True for a payload of the contract: a dict with a ``status`` dict."""
    return isinstance(payload, dict) and isinstance(payload.get("status"), dict)


def describe(value: Any) -> str:
    """What a task returned, for a message: a value's type and start, or the
    method it forgot to call."""
    if callable(value):
        name = getattr(value, "__qualname__", None) or type(value).__name__
        return f"the callable {name} (not called: missing '()'?)"
    return f"{type(value).__name__} {value!r:.60}"


def has_details(payload: Any) -> bool:
    """True for a payload that carries its results (``status.details``)."""
    status = payload.get("status") if isinstance(payload, dict) else None
    return isinstance(status, dict) and isinstance(status.get("details"), dict)
