"""HubClient's listings and a task with no results, against the real hub on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from asyncstream._config import HubSettings
from asyncstream._exceptions import DeliveryError, HubRejectedError
from asyncstream._hub_client import HubClient
from asyncstream._identity import TaskIdentity
from asyncstream._paths import STATES
from asyncstream._retry import RetryPolicy
from asyncstream._spool import read_spool, resend_spool
from asyncstream.hub import RunningHub
from asyncstream.streamstatus import AsyncStreamTaskResults
from tests.hub.conftest import hub_over

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.05)


@pytest.fixture(params=["sqlite", "postgres"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    async with hub_over(request, request.param) as running:
        yield running


@pytest.fixture
async def client(hub: RunningHub) -> AsyncIterator[HubClient]:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as c:
        yield c


def status_for(hub: RunningHub, taskid: str, jobid: Any, **more: Any) -> Any:
    options: dict[str, Any] = {
        "hub_url": hub.url,
        "api_key": hub.api_key,
        "batch_size": 10,
        "linger": 0.05,
        "retry_policy": FAST_RETRY,
        "delivery_timeout": 10.0,
        "started": STARTED,
    }
    return AsyncStreamTaskResults(
        "lister", [], jobid, "site.q", taskid, **(options | more)
    )


async def run_task(hub: RunningHub, taskid: str, jobid: Any, n: int) -> None:
    async with status_for(hub, taskid, jobid) as status:
        for i in range(n):
            await status.add("processed", f"/data/{taskid}/{i}")
        await status.dump()


async def test_list_tasks_pages_through_a_job_newest_first(
    hub: RunningHub, client: HubClient
) -> None:
    for n, taskid in enumerate(["t0", "t1", "t2"]):
        await run_task(hub, taskid, 41, n)
    await run_task(hub, "other", 42, 1)
    first = await client.list_tasks(jobid=41, page_size=2)
    assert first["count"] == 3
    assert [t["id"] for t in first["results"]] == ["t2", "t1"]
    second = await client.list_tasks(jobid=41, page_size=2, page=2)
    assert [t["id"] for t in second["results"]] == ["t0"]
    assert second["next"] is None
    assert second["previous"] == first["next"].replace("page=2", "page=1")
    # A filter left as None is not sent: all four tasks.
    everything = await client.list_tasks(jobid=None, state="completed")
    assert everything["count"] == 4
    by_name = await client.list_tasks(task="lister", state="running")
    assert by_name["results"] == []


async def test_list_jobs_sums_each_job_over_its_tasks(
    hub: RunningHub, client: HubClient
) -> None:
    await run_task(hub, "a", 1, 3)
    await run_task(hub, "b", 1, 2)
    await run_task(hub, "c", "batch-2", 0)
    page = await client.list_jobs()
    assert [j["id"] for j in page["results"]] == ["batch-2", "1"]
    job = page["results"][1]
    assert (job["state"], job["tasks"]) == ("completed", 2)
    assert job["summary"] == {**dict.fromkeys(STATES, 0), "processed": 5}


async def test_a_listing_parameter_the_hub_refuses_is_a_rejection_naming_it(
    client: HubClient,
) -> None:
    with pytest.raises(HubRejectedError) as info:
        await client.list_tasks(page_size=100_000)
    assert info.value.status_code == 422
    assert "page_size" in str(info.value)


async def test_a_task_that_adds_nothing_keeps_its_job_name_and_queue(
    hub: RunningHub, client: HubClient
) -> None:
    async with status_for(hub, "silent", 77) as status:
        payload = await status.dump()
    assert payload["status"]["summary"] == dict.fromkeys(STATES, 0)
    task = await client.get_task("silent")
    assert (task["jobid"], task["task"], task["queue"], task["state"]) == (
        77,
        "lister",
        "site.q",
        "completed",
    )
    job = await client.get_job(77)
    assert [t["id"] for t in job["tasks"]] == ["silent"]


async def test_a_spooled_completion_of_a_task_without_results_resends_its_identity(
    hub: RunningHub, client: HubClient, tmp_path: Path
) -> None:
    hub.faults.fail_next(10_000, status=503, retry_after=0.01, path_prefix="/api/")
    status = status_for(
        hub, "later", "j9", delivery_timeout=0.3, spool_dir=str(tmp_path)
    )
    with pytest.raises(DeliveryError) as info:
        async with status:
            await status.dump()
    hub.faults.reset()
    assert info.value.spool_path is not None
    report = await resend_spool(read_spool(info.value.spool_path), client)
    assert (report.batches, report.completed) == (0, True)
    task = await client.get_task("later")
    assert (task["jobid"], task["task"], task["queue"]) == ("j9", "lister", "site.q")


async def test_complete_task_sends_the_identity_it_is_given(
    client: HubClient,
) -> None:
    with pytest.raises(HubRejectedError) as info:
        await client.complete_task("bare", 0, {})
    assert info.value.status_code == 422
    assert isinstance(info.value.detail, dict)
    assert info.value.detail["error"] == "unknown_task"
    assert "'bare'" in str(info.value)
    identity = TaskIdentity("bare", "q2", "named", 5)
    done = await client.complete_task("bare", 0, {}, identity=identity)
    assert (done["task"], done["jobid"], done["queue"]) == ("named", 5, "q2")
