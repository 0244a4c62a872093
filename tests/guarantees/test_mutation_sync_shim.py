"""The sync shim's payload, held line by line (what mutation testing found loose).

``dump()`` returns the payload the hub was given; a second call returns an equal
one, whatever the caller did to the first (a Celery task returns it, and result
backends or the task's own code may change it in place).
"""

from __future__ import annotations

import copy
from typing import Any

import anyio

from asyncstream import StreamTaskResults
from asyncstream.hub import RunningHub
from tests.guarantees._support import hub_task, knobs


async def test_a_changed_payload_does_not_change_the_next_dump(
    hub: RunningHub,
) -> None:
    status = StreamTaskResults("p", [], 1, "q", "dump-twice", **knobs(hub))
    for i in range(12):
        await anyio.to_thread.run_sync(status.add, "processed", f"/dump/{i}")
    first: dict[str, Any] = await anyio.to_thread.run_sync(status.dump)
    kept = copy.deepcopy(first)

    first["status"]["summary"]["processed"] = -1  # the caller's copy, not the task's
    first["status"].clear()

    second = await anyio.to_thread.run_sync(status.dump)
    assert second == kept
    second["status"]["summary"]["processed"] = -2  # a repeated dump's copy too
    third = await anyio.to_thread.run_sync(status.dump)
    assert third == kept
    assert third["status"]["summary"]["processed"] == 12
    stored = await hub_task(hub, "dump-twice")
    assert stored is not None
    assert stored["summary"]["processed"] == 12
