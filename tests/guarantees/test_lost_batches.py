"""Batches the hub acknowledged, then lost: the completion is refused, and the
task's error says which task and which batches, for a person to act on."""

from __future__ import annotations

import httpx
import pytest

from asyncstream import AsyncStreamTaskResults, DeliveryError
from asyncstream.hub import RunningHub
from tests.guarantees._support import knobs, wait_until


async def test_a_completion_refused_for_lost_batches_names_the_task(
    hub: RunningHub,
) -> None:
    taskid = "acked-then-lost"
    status = AsyncStreamTaskResults("p", [], 1, "q", taskid, **knobs(hub))
    for i in range(30):
        await status.add("processed", f"/lost/{i}")
    await wait_until(
        lambda: status.statistics().batches_acked == 3, "three batches acknowledged"
    )
    # Someone drops the task's batches at the hub (an operator, another run).
    async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client:
        answer = await client.post(f"/api/tasks/{taskid}/reset", content=b"{}")
        assert answer.json() == {"dropped": 3}
    with pytest.raises(DeliveryError) as caught:
        await status.dump()
    assert str(caught.value).startswith(f"task {taskid!r}: the hub acknowledged")
    assert caught.value.undelivered_seqs == (0, 1, 2)
