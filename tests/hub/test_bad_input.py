"""Bad requests get the right 4xx, a JSON body naming the problem, and store nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from asyncstream.hub import running_hub

from .conftest import batch, key

RESULTS = "/api/tasks/t1/results/"


@pytest.mark.parametrize(
    ("body", "status", "code", "field", "named"),
    [
        (b'{"seq": 0,', 400, "malformed_json", None, "not JSON"),
        (
            batch(0, {"done": [{"path": "/a"}]}),
            422,
            "invalid_state",
            "items.done",
            "'done'",
        ),
        (
            batch(0, {"processed": [{"size": 1}]}),
            422,
            "invalid_request",
            "items.processed[0]",
            "'path'",
        ),
        (
            batch(0, {"processed": [{"path": "/a"}, 7]}),
            422,
            "invalid_request",
            "items.processed[1]",
            "7",
        ),
        (
            batch(0, {"processed": {"path": "/a"}}),
            422,
            "invalid_request",
            "items.processed",
            "list",
        ),
        (
            batch(0, {"failures": [{"path": "/a", "message": 3}]}),
            422,
            "invalid_request",
            "items.failures[0]",
            "message",
        ),
        (batch(0, {}, task=5), 422, "invalid_request", "task", "task must be str"),
        (batch(0, {}, jobid=True), 422, "invalid_request", "jobid", "True"),
        ({"task": "x", "seq": 0}, 422, "invalid_request", "items", "'items'"),
        (batch(1, {}), 422, "idempotency_key_mismatch", "seq", "seq 1"),
        ([1, 2], 422, "invalid_request", "body", "JSON object"),
    ],
)
async def test_bad_batch_is_rejected_and_nothing_stored(
    client: httpx.AsyncClient,
    body: Any,
    status: int,
    code: str,
    field: str | None,
    named: str,
) -> None:
    content = body if isinstance(body, bytes) else None
    payload = None if content is not None else body
    response = await client.post(
        RESULTS, content=content, json=payload, headers=key("t1", 0)
    )
    assert response.status_code == status
    error = response.json()
    assert error["error"] == code
    assert named in error["detail"]
    assert error.get("field") == field
    assert (await client.get("/api/tasks/t1/")).status_code == 404


async def test_a_bad_item_late_in_a_batch_stores_none_of_it(
    client: httpx.AsyncClient,
) -> None:
    items = {"processed": [{"path": f"/fs/{i}"} for i in range(500)] + [{"path": ""}]}
    response = await client.post(RESULTS, json=batch(0, items), headers=key("t1", 0))
    assert response.status_code == 422
    assert response.json()["field"] == "items.processed[500]"
    assert (await client.get("/api/tasks/t1/")).status_code == 404


async def test_idempotency_key_is_required_and_must_match(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.post(RESULTS, json=batch(0, {}))
    assert missing.status_code == 400
    assert missing.json()["error"] == "missing_idempotency_key"
    other_task = await client.post(RESULTS, json=batch(0, {}), headers=key("t2", 0))
    assert other_task.status_code == 422
    assert "'t2:0'" in other_task.json()["detail"]


async def test_complete_with_wrong_types_names_the_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/tasks/t1/complete", json={"batches": -1})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["field"] == "body.batches"
    malformed = await client.post(
        "/api/tasks/t1/complete",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"] == "invalid_request"
    assert (await client.get("/api/tasks/t1/")).status_code == 404


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "missing Authorization"),
        ("Api-Key wrong", "not valid"),
        ("Bearer wrong", "not valid"),
        ("Basic dGVzdC1rZXk=", "'Basic'"),
        ("Api-Key", "'Api-Key'"),
    ],
)
async def test_bad_credentials_get_401(
    hub: Any, header: str | None, detail: str
) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=hub.url, headers=headers) as client:
        response = await client.post(RESULTS, json=batch(0, {}), headers=key("t1", 0))
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert detail in response.json()["detail"]
        assert "test-key" not in response.text
        assert (await client.get("/api/health/")).status_code == 200
    async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client:
        assert (await client.get("/api/tasks/t1/")).status_code == 404


async def test_bearer_token_is_accepted(hub: Any) -> None:
    headers = {"Authorization": "Bearer test-key"}
    async with httpx.AsyncClient(base_url=hub.url, headers=headers) as client:
        response = await client.post(RESULTS, json=batch(0, {}), headers=key("t1", 0))
    assert response.status_code == 200


async def test_oversize_body_gets_413() -> None:
    async with (
        running_hub(max_body_bytes=2000) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client,
    ):
        items = {"processed": [{"path": f"/fs/{i:04d}"} for i in range(200)]}
        sized = await client.post(RESULTS, json=batch(0, items), headers=key("t1", 0))
        assert sized.status_code == 413
        assert sized.json()["error"] == "body_too_large"
        assert "2000" in sized.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
            for _ in range(10):
                yield b" " * 500

        streamed = await client.post(RESULTS, content=chunks(), headers=key("t1", 0))
        assert streamed.status_code == 413
        assert (await client.get("/api/tasks/t1/")).status_code == 404


async def test_concurrent_ingest_over_the_bound_gets_503_with_retry_after() -> None:
    async with (
        running_hub(max_concurrent_ingest=1, overload_retry_after=0.5) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client,
    ):
        release = asyncio.Event()
        add_batch = hub.store.add_batch

        async def slow_store(*args: Any) -> Any:
            await release.wait()  # the batch holds its ingest slot meanwhile
            return await add_batch(*args)

        hub.store.add_batch = slow_store  # type: ignore[method-assign]
        holder = asyncio.create_task(
            client.post(
                RESULTS,
                json=batch(0, {"processed": [{"path": "/a"}]}),
                headers=key("t1", 0),
            )
        )
        for _ in range(200):  # until the first request holds the only ingest slot
            if hub.app.state.hub.gate.in_flight == 1:
                break
            await asyncio.sleep(0.01)
        refused = await client.post(
            "/api/tasks/t2/results/", json=batch(0, {}), headers=key("t2", 0)
        )
        release.set()
        hub.store.add_batch = add_batch  # type: ignore[method-assign]
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "0.5"
        assert refused.json()["error"] == "overloaded"
        assert (await holder).status_code == 200
        assert (await client.get("/api/tasks/t2/")).status_code == 404
        after = await client.post(
            "/api/tasks/t2/results/", json=batch(0, {}), headers=key("t2", 0)
        )
        assert after.status_code == 200


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing/")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "Not Found: GET /api/nothing/",
    }
