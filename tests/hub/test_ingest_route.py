"""The results POST, the hub's hot path: served without FastAPI's dependency
resolution and matched first, with the same checks, answers and documentation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from asyncstream.hub._app import create_app
from asyncstream.hub._memory import MemoryStore

from .conftest import batch, key

KEY = "k"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(MemoryStore(), api_keys=[KEY])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://hub",
            headers={"Authorization": f"Api-Key {KEY}"},
        ) as client:
            yield client


async def test_an_unknown_query_parameter_is_refused_before_the_key_is_read(
    api: httpx.AsyncClient,
) -> None:
    # As the router's dependency did: the parameter first, then the header.
    answer = await api.post(
        "/api/tasks/t/results/", params={"x": "1"}, json=batch(0, {})
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "unknown_parameter"
    assert answer.json()["field"] == "x"
    assert "takes: none" in answer.json()["detail"]


async def test_a_batch_is_stored_once_and_its_replay_answers_duplicate(
    api: httpx.AsyncClient,
) -> None:
    body = batch(0, {"processed": [{"path": "/a"}, {"path": "/b"}]})
    first = await api.post("/api/tasks/t/results/", json=body, headers=key("t", 0))
    again = await api.post("/api/tasks/t/results/", json=body, headers=key("t", 0))
    other = await api.post(
        "/api/tasks/t/results/",
        json=batch(0, {"processed": [{"path": "/c"}]}),
        headers=key("t", 0),
    )
    assert (first.status_code, first.json()) == (
        200,
        {"accepted": 2, "duplicate": False},
    )
    assert first.headers["content-type"] == "application/json"
    assert (again.status_code, again.json()) == (
        200,
        {"accepted": 0, "duplicate": True},
    )
    assert other.status_code == 409, other.text
    metrics = (await api.get("/metrics")).text.splitlines()
    assert "asyncstream_hub_batches_accepted_total 1.0" in metrics
    assert "asyncstream_hub_batches_duplicate_total 1.0" in metrics
    assert any(
        'route="/api/tasks/{taskid}/results/"' in line and 'status="409"' in line
        for line in metrics
    )


async def test_a_missing_or_foreign_key_header_is_refused_as_before(
    api: httpx.AsyncClient,
) -> None:
    missing = await api.post("/api/tasks/t/results/", json=batch(0, {}))
    foreign = await api.post(
        "/api/tasks/t/results/", json=batch(0, {}), headers=key("u", 0)
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "missing_idempotency_key"
    assert foreign.status_code == 422
    assert foreign.json()["error"] == "idempotency_key_mismatch"


async def test_the_route_is_documented_with_its_header_and_security(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/openapi.json")).json()
    post = spec["paths"]["/api/tasks/{taskid}/results/"]["post"]
    parameters = {(p["in"], p["name"]) for p in post["parameters"]}
    assert parameters == {("path", "taskid"), ("header", "idempotency-key")}
    assert post["security"] == [{"ApiKey": []}]
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert "get" in spec["paths"]["/api/tasks/{taskid}/results/"]


async def test_a_batch_tries_no_other_api_route(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried: list[str] = []
    original = APIRoute.matches

    def matches(self: APIRoute, scope: Any) -> Any:
        tried.append(f"{sorted(self.methods or ())} {self.path}")
        return original(self, scope)

    monkeypatch.setattr(APIRoute, "matches", matches)
    answer = await api.post(
        "/api/tasks/t/results/", json=batch(0, {}), headers=key("t", 0)
    )
    assert answer.status_code == 200, answer.text
    # Health and metrics are the app's own routes, ahead of it; nothing else.
    assert [t for t in tried if t.startswith("['POST']")] == [
        "['POST'] /api/tasks/{taskid}/results/"
    ]
    assert len(tried) <= 3
