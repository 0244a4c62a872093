"""A query parameter no route reads is refused by name, never silently ignored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from asyncstream.hub import running_hub

from .conftest import batch, key


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_hub(store="memory", faults=False) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers, timeout=10) as c,
    ):
        yield c


async def test_a_misspelt_filter_is_refused_naming_it_and_the_known_ones(
    api: httpx.AsyncClient,
) -> None:
    # jobid is a filter the route reads; pagesize is a misspelt page_size.
    response = await api.get("/api/tasks/", params={"jobid": "7", "pagesize": "10"})

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unknown_parameter"
    assert body["field"] == "pagesize"
    assert "page_size" in body["detail"]


async def test_the_parameters_a_route_reads_are_accepted(
    api: httpx.AsyncClient,
) -> None:
    ok = await api.post(
        "/api/tasks/t-1/results/",
        json=batch(0, {"processed": [{"path": "/a"}]}),
        headers=key("t-1", 0),
    )
    assert ok.status_code == 200, ok.text

    listed = await api.get("/api/tasks/", params={"page": 1, "page_size": 10})
    page = await api.get("/api/tasks/t-1/results/", params={"state": "processed"})

    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["results"]] == ["t-1"]
    assert page.status_code == 200, page.text


async def test_a_route_without_parameters_refuses_any(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/tasks/absent/", params={"x": "1"})

    assert response.status_code == 422
    assert response.json()["field"] == "x"
    assert "takes: none" in response.json()["detail"]
