"""Protocol v1 extension: reset an incomplete task, read a complete one's payload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from asyncstream._paths import STATES
from asyncstream.hub import RunningHub

from .conftest import batch, hub_over, key

ITEMS = {"processed": [{"path": "/fs/a"}, {"path": "/fs/b"}]}


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    async with hub_over(request, request.param) as running:
        yield running


async def _post(
    client: httpx.AsyncClient, taskid: str, seq: int, items: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"/api/tasks/{taskid}/results/",
        json=batch(seq, items),
        headers=key(taskid, seq),
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_reset_drops_batches_results_and_summary(
    client: httpx.AsyncClient,
) -> None:
    for seq in range(3):
        await _post(client, "t1", seq, ITEMS)
    await _post(client, "other", 0, ITEMS)
    response = await client.post("/api/tasks/t1/reset")
    assert response.status_code == 200
    assert response.json() == {"dropped": 3}
    assert (await client.get("/api/tasks/t1/")).status_code == 404
    assert (await client.get("/api/tasks/t1/results/")).status_code == 404
    # Another task of the same job is untouched.
    assert (await client.get("/api/jobs/7/")).json()["summary"]["processed"] == 2


async def test_reset_frees_the_idempotency_keys_for_other_boundaries(
    client: httpx.AsyncClient,
) -> None:
    await _post(client, "t1", 0, ITEMS)
    await client.post("/api/tasks/t1/reset")
    # The re-run cuts its first batch elsewhere: same key, another body, no 409.
    rerun = {"processed": [{"path": "/fs/a"}], "skipped": [{"path": "/fs/c"}]}
    assert await _post(client, "t1", 0, rerun) == {"accepted": 2, "duplicate": False}
    await _post(client, "t1", 1, {"processed": [{"path": "/fs/b"}]})
    done = await client.post("/api/tasks/t1/complete", json={"batches": 2})
    assert done.status_code == 200
    assert done.json()["summary"] == {
        **dict.fromkeys(STATES, 0),
        "processed": 2,
        "skipped": 1,
    }
    page = (await client.get("/api/tasks/t1/results/")).json()
    assert [r["path"] for r in page["results"]] == ["/fs/a", "/fs/c", "/fs/b"]


async def test_reset_of_unknown_task_drops_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/tasks/never-seen/reset")
    assert response.json() == {"dropped": 0}
    assert (await client.get("/api/tasks/never-seen/")).status_code == 404


async def test_reset_of_complete_task_is_refused_and_keeps_everything(
    client: httpx.AsyncClient,
) -> None:
    await _post(client, "t1", 0, ITEMS)
    await client.post("/api/tasks/t1/complete", json={"batches": 1})
    response = await client.post("/api/tasks/t1/reset")
    assert response.status_code == 409
    assert response.json()["error"] == "task_completed"
    task = (await client.get("/api/tasks/t1/")).json()
    assert task["state"] == "completed"
    assert task["summary"]["processed"] == 2


async def test_get_task_shows_payload_only_once_complete(
    client: httpx.AsyncClient,
) -> None:
    await _post(client, "t1", 0, ITEMS)
    assert (await client.get("/api/tasks/t1/")).json()["payload"] is None
    payload = {"jobid": 7, "paths": [], "status": {"task": "my-plugin"}}
    await client.post("/api/tasks/t1/complete", json={"batches": 1, "payload": payload})
    assert (await client.get("/api/tasks/t1/")).json()["payload"] == payload
    # Job listings stay small: no payloads there.
    job = (await client.get("/api/jobs/7/")).json()
    assert "payload" not in job["tasks"][0]


async def test_reset_needs_credentials(hub: RunningHub) -> None:
    async with httpx.AsyncClient(base_url=hub.url) as anonymous:
        assert (await anonymous.post("/api/tasks/t1/reset")).status_code == 401


async def test_openapi_documents_the_extension(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    reset = spec["paths"]["/api/tasks/{taskid}/reset"]["post"]
    assert "409" in reset["responses"]
    assert "payload" in spec["paths"]["/api/tasks/{taskid}/"]["get"]["description"]
