"""A redelivered task whose earlier run completes while the glue resets it.

The glue reads the task, finds an unfinished earlier run, and asks the hub to
drop its batches; if that run completes in between, the hub answers the reset
with 409 and the glue must read the task again and return the stored payload,
never run the body a second time. The race is made exact here: the transport
completes the task just before the reset request reaches the real hub.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from asyncstream import AsyncStreamTaskResults
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.celery import _check_earlier_run
from asyncstream.hub import RunningHub
from tests.guarantees._support import hub_paths, knobs


class _BeforeReset(httpx.AsyncBaseTransport):
    """Loopback HTTP that runs ``before_reset`` ahead of every reset request,
    and counts the requests by method and path."""

    def __init__(self, before_reset: Callable[[], Awaitable[None]]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.before_reset = before_reset
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST" and request.url.path.endswith("/reset"):
            await self.before_reset()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _unfinished_run(hub: RunningHub, taskid: str, n: int) -> None:
    """An earlier run that delivered ``n`` results and was not completed."""
    status = AsyncStreamTaskResults(
        "plugin", [], 1, "london.default#custom", taskid, **knobs(hub, batch_size=5)
    )
    for i in range(n):
        await status.add("processed", f"/earlier/{i}")
    await status.aclose()


async def test_a_run_completed_during_the_reset_is_returned_not_run_again(
    hub: RunningHub,
) -> None:
    taskid = "completed-during-reset"
    await _unfinished_run(hub, taskid, 12)
    settings = HubSettings(url=hub.url, api_key=hub.api_key)
    stored: dict[str, Any] = {"jobid": 1, "paths": [], "status": {"by": "other run"}}

    async def complete_meanwhile() -> None:
        # The other run finishes first: all its batches, then its completion.
        async with HubClient(settings) as other:
            batches = (await other.get_task(taskid))["batches"]
            await other.complete_task(taskid, batches, stored)

    transport = _BeforeReset(complete_meanwhile)
    async with HubClient(settings, transport=transport) as client:
        earlier = await _check_earlier_run(client, taskid, 30.0)

    assert earlier.completed
    assert earlier.payload == stored
    task_path = f"/api/tasks/{taskid}/"
    assert transport.seen == [
        f"GET {task_path}",
        f"POST {task_path}reset",
        f"GET {task_path}",
    ]
    # The completed run's results are all kept: the refused reset dropped none.
    assert sorted(await hub_paths(hub, taskid)) == sorted(
        f"/earlier/{i}" for i in range(12)
    )


async def test_an_unfinished_run_is_reset_and_says_how_many_batches_it_dropped(
    hub: RunningHub,
) -> None:
    taskid = "unfinished-then-reset"
    await _unfinished_run(hub, taskid, 12)
    settings = HubSettings(url=hub.url, api_key=hub.api_key)

    async def nothing() -> None:
        pass

    async with HubClient(settings, transport=_BeforeReset(nothing)) as client:
        earlier = await _check_earlier_run(client, taskid, 30.0)

    assert not earlier.completed
    assert earlier.dropped == 3  # 12 results in batches of 5
    assert await hub_paths(hub, taskid) == []


async def test_a_task_the_hub_never_saw_is_a_first_run(hub: RunningHub) -> None:
    settings = HubSettings(url=hub.url, api_key=hub.api_key)
    async with HubClient(settings) as client:
        earlier = await _check_earlier_run(client, "never-seen", 30.0)
    assert (earlier.completed, earlier.payload, earlier.dropped) == (False, None, 0)
