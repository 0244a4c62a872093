"""The hub builds its routes' routing state at startup, not at a run's first request."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest

from asyncstream.hub._app import create_app
from asyncstream.hub._serve import make_store

# FastAPI's lazy per-router build step; the test says nothing if it is renamed.
_BUILD = "_build_effective_context"


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    included = getattr(fastapi.routing, "_IncludedRouter", None)
    if included is None or not hasattr(included, _BUILD):
        pytest.skip("this FastAPI builds its routes another way")
    original = getattr(included, _BUILD)
    calls: list[object] = []

    def counted(self: Any, route: Any) -> Any:
        calls.append(route)
        return original(self, route)

    monkeypatch.setattr(included, _BUILD, counted)
    return calls


async def test_the_first_requests_build_no_route(builds: list[object]) -> None:
    app = create_app(make_store("memory"), api_keys=["k"])
    async with app.router.lifespan_context(app):
        assert builds, "startup primed no route"
        primed = len(builds)
        transport = httpx.ASGITransport(app)
        headers = {"Authorization": "Api-Key k"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub", headers=headers
        ) as client:
            created = await client.post("/api/streams/", content=b"{}")
            task = await client.get("/api/tasks/some-task/")
    assert (created.status_code, task.status_code) == (201, 404)
    assert len(builds) == primed
