"""The sync shim and its ends, held line by line (what mutation testing found loose).

``dump()`` returns the payload the hub was given; a second call returns an equal
one, whatever the caller did to the first (a Celery task returns it, and result
backends or the task's own code may change it in place). After ``close()`` or
``abort()`` the shim refuses ``add()`` itself; a delivery error keeps the hub's
error as its cause.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncstream import (
    AsyncStreamTaskResults,
    DeliveryError,
    HubUnavailableError,
    StreamTaskResults,
    UsageError,
)
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


async def test_add_after_close_or_abort_is_refused_by_the_shim_itself(
    hub: RunningHub, tmp_path: Path
) -> None:
    for end in ("close", "abort"):
        status = StreamTaskResults(
            "p", [], 1, "q", f"ended-{end}", spool_dir=str(tmp_path), **knobs(hub)
        )
        await anyio.to_thread.run_sync(status.add, "processed", "/kept")
        await anyio.to_thread.run_sync(getattr(status, end))
        with pytest.raises(UsageError, match=r"after dump\(\) or close\(\)"):
            status.add("processed", "/too-late")
        # A second close does nothing, and says nothing.
        await anyio.to_thread.run_sync(status.close)


async def test_a_delivery_error_raised_by_add_keeps_the_hub_error_as_its_cause(
    hub: RunningHub, tmp_path: Path
) -> None:
    hub.faults.fail_next(10_000, status=503, retry_after=0.01)
    status = AsyncStreamTaskResults(
        "p",
        [],
        1,
        "q",
        "cause",
        spool_dir=str(tmp_path),
        **knobs(hub, max_pending_items=20, delivery_timeout=0.5),
    )

    async def add_until_it_fails() -> None:
        for i in range(1_000):  # the budget fills; the first batch then fails
            await status.add("processed", f"/cause/{i}")

    with pytest.raises(DeliveryError) as caught:
        await add_until_it_fails()
    hub.faults.reset()
    assert isinstance(caught.value.__cause__, HubUnavailableError)
    assert "503" in str(caught.value.__cause__)
