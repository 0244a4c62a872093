"""Result batches, completion and summaries over real loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from asyncstream import STATES
from asyncstream.hub import RunningHub, running_hub

from .conftest import batch, hub_over, key


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    """Every test here runs against the durable store and the memory store."""
    async with hub_over(request, request.param) as running:
        yield running


ITEMS = {
    "processed": [{"path": "/fs/a"}, {"path": "/fs/b", "size": 3}],
    "failures": [{"path": "/fs/c", "message": ["boom"]}],
}


async def test_same_batch_twice_counts_once(client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/api/tasks/t1/results/", json=batch(0, ITEMS), headers=key("t1", 0)
    )
    again = await client.post(
        "/api/tasks/t1/results/", json=batch(0, ITEMS), headers=key("t1", 0)
    )
    assert first.status_code == 200
    assert first.json() == {"accepted": 3, "duplicate": False}
    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicate": True}
    task = (await client.get("/api/tasks/t1/")).json()
    assert task["summary"] == {
        **dict.fromkeys(STATES, 0),
        "processed": 2,
        "failures": 1,
    }
    assert task["batches"] == 1


async def test_resent_batch_with_reordered_keys_is_a_duplicate(
    client: httpx.AsyncClient,
) -> None:
    body = batch(0, ITEMS)
    await client.post("/api/tasks/t1/results/", json=body, headers=key("t1", 0))
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=1)
    again = await client.post(
        "/api/tasks/t1/results/", content=reordered, headers=key("t1", 0)
    )
    assert again.json() == {"accepted": 0, "duplicate": True}


async def test_same_key_with_another_body_is_409(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/tasks/t1/results/", json=batch(0, ITEMS), headers=key("t1", 0)
    )
    other = batch(0, {"processed": [{"path": "/fs/other"}]})
    response = await client.post(
        "/api/tasks/t1/results/", json=other, headers=key("t1", 0)
    )
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert "t1:0" in response.json()["detail"]
    results = (await client.get("/api/tasks/t1/results/")).json()["results"]
    assert "/fs/other" not in [r["path"] for r in results]


async def test_complete_with_missing_seq_is_409_naming_it(
    client: httpx.AsyncClient,
) -> None:
    for seq in (0, 2):
        await client.post(
            "/api/tasks/t1/results/", json=batch(seq, ITEMS), headers=key("t1", seq)
        )
    response = await client.post("/api/tasks/t1/complete", json={"batches": 4})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "missing_batches"
    assert body["missing"] == [1, 3]
    assert "[1, 3]" in body["detail"]
    assert (await client.get("/api/tasks/t1/")).json()["state"] == "running"


async def test_complete_when_all_present_finishes_the_task(
    client: httpx.AsyncClient,
) -> None:
    for seq in (1, 0):
        await client.post(
            "/api/tasks/t1/results/", json=batch(seq, ITEMS), headers=key("t1", seq)
        )
    payload = {"jobid": 7, "paths": [], "status": {"task": "my-plugin"}}
    done = await client.post(
        "/api/tasks/t1/complete", json={"batches": 2, "payload": payload}
    )
    assert done.status_code == 200
    assert done.json()["state"] == "completed"
    assert done.json()["finished"] is not None
    assert done.json()["summary"]["processed"] == 4
    # Completing again is harmless; a late retry of a stored batch stays a duplicate,
    # but a batch never seen before is refused.
    assert (
        await client.post("/api/tasks/t1/complete", json={"batches": 2})
    ).status_code == 200
    retry = await client.post(
        "/api/tasks/t1/results/", json=batch(1, ITEMS), headers=key("t1", 1)
    )
    assert retry.json()["duplicate"] is True
    late = await client.post(
        "/api/tasks/t1/results/", json=batch(2, ITEMS), headers=key("t1", 2)
    )
    assert late.status_code == 409
    assert late.json()["error"] == "task_completed"


async def test_complete_with_zero_batches_creates_an_empty_task(
    client: httpx.AsyncClient,
) -> None:
    body = {"batches": 0, "task": "my-plugin", "jobid": 7, "queue": "q"}
    response = await client.post("/api/tasks/empty/complete", json=body)
    assert response.status_code == 200
    assert response.json()["summary"] == dict.fromkeys(STATES, 0)


async def test_task_and_job_summaries_have_every_state(
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        "/api/tasks/t1/results/", json=batch(0, ITEMS), headers=key("t1", 0)
    )
    skipped = batch(0, {"skipped": [{"path": "/fs/s"}]})
    await client.post("/api/tasks/t2/results/", json=skipped, headers=key("t2", 0))
    task = (await client.get("/api/tasks/t2/")).json()
    assert task["id"] == "t2"
    assert task["jobid"] == 7
    assert task["task"] == "my-plugin"
    assert task["state"] == "running"
    assert set(task) >= {"started", "finished", "batches"}
    assert task["summary"] == {**dict.fromkeys(STATES, 0), "skipped": 1}
    job = (await client.get("/api/jobs/7/")).json()
    assert [t["id"] for t in job["tasks"]] == ["t1", "t2"]
    assert job["summary"] == {
        **dict.fromkeys(STATES, 0),
        "processed": 2,
        "failures": 1,
        "skipped": 1,
    }
    assert (await client.get("/api/jobs/8/")).status_code == 404
    assert (await client.get("/api/tasks/nope/")).json()["error"] == "not_found"


async def test_stored_results_page_in_order_with_state_filter(
    client: httpx.AsyncClient,
) -> None:
    for seq in range(3):
        items = {
            "processed": [{"path": f"/fs/{seq}-{i}"} for i in range(5)],
            "failures": [{"path": f"/fs/{seq}-bad", "message": "no"}],
        }
        await client.post(
            "/api/tasks/t1/results/", json=batch(seq, items), headers=key("t1", seq)
        )
    seen, cursor, pages = [], None, 0
    while True:
        params = {"page_size": 4} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/tasks/t1/results/", params=params)).json()
        seen += page["results"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 5  # 18 results, 4 a page
    assert [r["path"] for r in seen] == [
        p
        for s in range(3)
        for p in [*(f"/fs/{s}-{i}" for i in range(5)), f"/fs/{s}-bad"]
    ]
    assert seen[5] == {"state": "failures", "path": "/fs/0-bad", "message": ["no"]}
    failures = (
        await client.get("/api/tasks/t1/results/", params={"state": "failures"})
    ).json()
    assert [r["path"] for r in failures["results"]] == [
        f"/fs/{s}-bad" for s in range(3)
    ]
    assert failures["next"] is None
    bad = await client.get("/api/tasks/t1/results/", params={"state": "done"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_state"
    assert "'done'" in bad.json()["detail"]


async def test_discard_store_validates_but_keeps_nothing() -> None:
    async with (
        running_hub(store="discard") as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client,
    ):
        ok = await client.post(
            "/api/tasks/t1/results/", json=batch(0, ITEMS), headers=key("t1", 0)
        )
        bad = await client.post(
            "/api/tasks/t1/results/", json=batch(1, {"done": []}), headers=key("t1", 1)
        )
        assert ok.json() == {"accepted": 3, "duplicate": False}
        assert bad.status_code == 422
        assert (await client.get("/api/tasks/t1/")).status_code == 404


async def test_discard_store_completes_a_task_whose_batches_all_arrived() -> None:
    async with (
        running_hub(store="discard") as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client,
    ):
        for seq in (0, 1):
            await client.post(
                "/api/tasks/t1/results/", json=batch(seq, ITEMS), headers=key("t1", seq)
            )
        again = await client.post(
            "/api/tasks/t1/results/", json=batch(1, ITEMS), headers=key("t1", 1)
        )
        short = await client.post("/api/tasks/t1/complete", json={"batches": 3})
        done = await client.post("/api/tasks/t1/complete", json={"batches": 2})
        late = await client.post(
            "/api/tasks/t1/results/", json=batch(2, ITEMS), headers=key("t1", 2)
        )
        assert again.json() == {"accepted": 0, "duplicate": True}
        assert short.status_code == 409
        assert short.json()["missing"] == [2]
        assert done.status_code == 200
        assert done.json()["state"] == "completed"
        assert late.json()["error"] == "task_completed"
