"""A bad item does not sink its batch: drop what the hub names, send the rest.

When the hub refuses a batch as invalid (422) and names the offending item by
its field (``items.<state>[<i>]...``), the item is taken out and the rest of the
batch is posted again under the *same* key ``<taskid>:<seq>``. Nothing of a
refused body is stored, so the key is still free; the reduced body is a pure
function of the original body and the hub's verdicts, so a retry after a lost
acknowledgement posts the same bytes and the hub counts them once. The batch
keeps its seq, so completion still finds seqs ``0..n-1``. A refusal that names
no item is raised as before: the batch then fails whole and is spooled.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._batch_keys import Batch
from ._deadline import Deadline
from ._exceptions import HubRejectedError
from ._hub_answers import encode_json
from ._hub_client import HubClient
from ._retry import OnRetry

__all__ = ["RefusedItem", "named_item", "post_or_split", "without_item"]

_FIELD = re.compile(r"items\.(\w+)\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class RefusedItem:
    """A result the hub refused for good: its state, path object and reason."""

    seq: int
    state: str
    item: Any
    reason: str

    def as_json(self) -> dict[str, Any]:
        """The form it takes in a spool file's header."""
        return {
            "seq": self.seq,
            "state": self.state,
            "item": self.item,
            "reason": self.reason,
        }


def named_item(exc: HubRejectedError) -> tuple[str, int, str] | None:
    """``(state, index, reason)`` of the item a 422 names, else ``None``."""
    detail = exc.detail
    if exc.status_code != 422 or not isinstance(detail, dict):
        return None
    match = _FIELD.match(str(detail.get("field") or ""))
    if match is None:
        return None
    reason = str(detail.get("detail") or detail.get("error") or "invalid")
    return match.group(1), int(match.group(2)), reason[:500]


def without_item(
    batch: Batch, state: str, index: int, reason: str
) -> tuple[Batch, RefusedItem] | None:
    """``batch`` less item ``index`` of ``state``, and that item; ``None`` if the
    body holds no such item (the hub named something this client did not send)."""
    body = json.loads(batch.body)
    objs = body.get("items", {}).get(state)
    if not isinstance(objs, list) or not 0 <= index < len(objs):
        return None
    item = objs.pop(index)
    if not objs:
        del body["items"][state]
    reduced = dataclasses.replace(batch, count=batch.count - 1, body=encode_json(body))
    return reduced, RefusedItem(batch.seq, state, item, reason)


async def post_or_split(
    client: HubClient,
    taskid: str,
    batch: Batch,
    *,
    deadline: Deadline,
    on_retry: OnRetry | None = None,
    on_refused: Callable[[RefusedItem], None],
) -> dict[str, Any]:
    """Post ``batch``; while the hub refuses an item by name, take it out (told to
    ``on_refused``) and post the rest under the same key. Returns the answer.

    The sender and ``resend`` both post through here, so a batch re-sent from a
    spool is cut down to the very bytes the first attempt may have stored.
    """
    while True:
        try:
            return await client.post_results(
                taskid, batch.seq, batch.body, deadline=deadline, on_retry=on_retry
            )
        except HubRejectedError as exc:
            named = named_item(exc)
            split = without_item(batch, *named) if named else None
            if split is None:
                raise
            batch, refused = split
            on_refused(refused)
