"""Input streams: create, append, close, paged reads and long polls."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import JSONResponse

from asyncstream.hub import RunningHub, running_hub
from asyncstream.hub._wire_json import WireJSONResponse

from .conftest import hub_over


async def readers_waiting(client: httpx.AsyncClient) -> int:
    """The hub's own count of long-polling readers waiting for paths."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == "asyncstream_hub_stream_readers_waiting":
            return int(family.samples[0].value)
    raise AssertionError("the hub publishes no waiting-readers gauge")


async def until_readers_wait(client: httpx.AsyncClient, n: int = 1) -> None:
    """Return once ``n`` readers wait in the hub (polled; fails after ~5 s)."""
    for _ in range(500):
        if await readers_waiting(client) == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{n} readers never waited in the hub")


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    async with hub_over(request, request.param) as running:
        yield running


def paths(start: int, stop: int) -> list[dict[str, Any]]:
    return [{"path": f"/fs/f{i}", "size": i} for i in range(start, stop)]


async def test_create_append_close_and_read_in_pages(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/streams/", json={"paths": paths(0, 3)})
    assert created.status_code == 201
    stream = created.json()
    assert stream == {
        "id": stream["id"],
        "url": f"/api/streams/{stream['id']}/paths/",
        "count": 3,
        "closed": False,
    }
    appended = await client.post(
        stream["url"], json={"paths": ["/fs/f3", *paths(4, 5)]}
    )
    assert appended.json()["count"] == 5
    closed = await client.post(f"/api/streams/{stream['id']}/close")
    assert closed.json()["closed"] is True
    first = (await client.get(stream["url"], params={"page_size": 2})).json()
    assert first["results"] == paths(0, 2)
    assert first["count"] == 5
    assert first["next"] is not None
    second = (
        await client.get(
            stream["url"], params={"cursor": first["next"], "page_size": 3}
        )
    ).json()
    assert second["results"] == [*paths(2, 3), {"path": "/fs/f3"}, *paths(4, 5)]
    assert second["next"] is None  # closed and fully read


async def test_open_stream_with_nothing_new_waits_and_keeps_the_cursor(
    client: httpx.AsyncClient,
) -> None:
    stream = (await client.post("/api/streams/", json={"paths": paths(0, 1)})).json()
    page = (await client.get(stream["url"])).json()
    assert page["next"] is not None
    start = time.monotonic()
    empty = (
        await client.get(stream["url"], params={"cursor": page["next"], "wait": 0.3})
    ).json()
    assert time.monotonic() - start >= 0.25
    assert empty == {
        "results": [],
        "next": page["next"],
        "count": 1,
        "closed": False,
        "ahead": [],
    }


async def test_long_poll_is_woken_by_append(client: httpx.AsyncClient) -> None:
    stream = (await client.post("/api/streams/")).json()
    assert stream["count"] == 0
    assert await readers_waiting(client) == 0
    reader = asyncio.create_task(client.get(stream["url"], params={"wait": 30}))
    await until_readers_wait(client)
    assert not reader.done()
    start = time.monotonic()
    await client.post(stream["url"], json={"paths": paths(0, 2)})
    page = (await reader).json()
    assert time.monotonic() - start < 5
    assert page["results"] == paths(0, 2)
    assert await readers_waiting(client) == 0


async def test_long_poll_is_woken_by_close(client: httpx.AsyncClient) -> None:
    stream = (await client.post("/api/streams/")).json()
    reader = asyncio.create_task(client.get(stream["url"], params={"wait": 30}))
    await until_readers_wait(client)
    await client.post(f"/api/streams/{stream['id']}/close")
    page = (await asyncio.wait_for(reader, 5)).json()
    assert page == {
        "results": [],
        "next": None,
        "count": 0,
        "closed": True,
        "ahead": [],
    }


async def test_read_while_producer_appends_sees_every_path_once_in_order(
    client: httpx.AsyncClient,
) -> None:
    stream = (await client.post("/api/streams/")).json()
    total, chunk = 2000, 137

    async def produce() -> None:
        for start in range(0, total, chunk):
            await client.post(
                stream["url"], json={"paths": paths(start, min(start + chunk, total))}
            )
            await asyncio.sleep(0)
        await client.post(f"/api/streams/{stream['id']}/close")

    async def consume() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"page_size": 100, "wait": 5}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(stream["url"], params=params)).json()
            seen += page["results"]
            if page["next"] is None:
                return seen
            cursor = page["next"]

    seen, _ = await asyncio.gather(consume(), produce())
    assert seen == paths(0, total)


async def read(
    client: httpx.AsyncClient, url: str, cursor: str | None, page_size: int
) -> dict[str, Any]:
    params: dict[str, Any] = {"page_size": page_size}
    if cursor is not None:
        params["cursor"] = cursor
    answer = await client.get(url, params=params)
    assert answer.status_code == 200
    page: dict[str, Any] = answer.json()
    return page


@pytest.mark.parametrize("closed", [True, False])
async def test_ahead_cursors_read_the_following_full_pages(
    client: httpx.AsyncClient, closed: bool
) -> None:
    stream = (await client.post("/api/streams/", json={"paths": paths(0, 23)})).json()
    if closed:
        await client.post(f"/api/streams/{stream['id']}/close")
    first = await read(client, stream["url"], None, 5)
    # After the page at `next` (5..9): 10..14 and 15..19 are full, 20..22 is not.
    assert len(first["ahead"]) == 2
    pages = [await read(client, stream["url"], c, 5) for c in first["ahead"]]
    assert [p["results"] for p in pages] == [paths(10, 15), paths(15, 20)]
    second = await read(client, stream["url"], first["next"], 5)
    assert second["results"] == paths(5, 10)
    # Cursors agree whichever answer announced them.
    assert [second["next"], *second["ahead"]] == first["ahead"]
    tail = await read(client, stream["url"], pages[-1]["next"], 5)
    assert tail["results"] == paths(20, 23)
    assert tail["ahead"] == []  # no page after a partial tail
    assert (tail["next"] is None) is closed


async def test_ahead_is_capped_and_empty_without_full_pages(
    client: httpx.AsyncClient,
) -> None:
    stream = (await client.post("/api/streams/", json={"paths": paths(0, 100)})).json()
    first = await read(client, stream["url"], None, 2)
    assert len(first["ahead"]) == 32
    last = await read(client, stream["url"], first["ahead"][-1], 2)
    assert last["results"] == paths(66, 68)
    assert (await read(client, stream["url"], None, 60))["ahead"] == []
    whole = await read(client, stream["url"], None, 100)
    assert (whole["ahead"], len(whole["results"])) == ([], 100)


async def test_openapi_documents_ahead(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    ahead = schema["components"]["schemas"]["StreamPage"]["properties"]["ahead"]
    assert "full" in ahead["description"]


async def test_stream_errors_name_the_problem(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/streams/nope/paths/")
    assert missing.status_code == 404
    assert "'nope'" in missing.json()["detail"]
    stream = (await client.post("/api/streams/")).json()
    await client.post(f"/api/streams/{stream['id']}/close")
    late = await client.post(stream["url"], json={"paths": ["/fs/x"]})
    assert late.status_code == 409
    assert late.json()["error"] == "stream_closed"
    assert (await client.get(f"/api/streams/{stream['id']}/")).json()["count"] == 0
    bad_cursor = await client.get(stream["url"], params={"cursor": "garbage!"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["field"] == "cursor"
    too_big = await client.get(stream["url"], params={"page_size": 10_001})
    assert too_big.status_code == 422
    assert too_big.json()["field"] == "query.page_size"
    no_path = await client.post("/api/streams/", json={"paths": [{"size": 1}]})
    assert no_path.status_code == 422
    assert no_path.json()["field"] == "paths[0]"


async def test_stopping_the_hub_ends_pending_long_polls() -> None:
    async with running_hub(store="memory") as hub:
        client = httpx.AsyncClient(base_url=hub.url, headers=hub.headers)
        stream = (await client.post("/api/streams/")).json()
        reader = asyncio.create_task(client.get(stream["url"], params={"wait": 30}))
        await until_readers_wait(client)
        start = time.monotonic()
    page = (await reader).json()  # the hub answered before it stopped
    await client.aclose()
    assert time.monotonic() - start < 2
    assert page["results"] == []
    assert page["next"] is not None


async def test_append_at_offset_is_stored_once_when_repeated(
    client: httpx.AsyncClient,
) -> None:
    stream = (await client.post("/api/streams/", json={"paths": paths(0, 2)})).json()
    url = f"/api/streams/{stream['id']}/paths/"
    first = await client.post(url, json={"paths": paths(2, 5), "offset": 2})
    assert first.status_code == 200
    assert first.json()["count"] == 5
    assert first.json()["duplicate"] is False
    # The same chunk again (a retry whose first answer was lost): nothing added.
    again = await client.post(url, json={"paths": paths(2, 5), "offset": 2})
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["count"] == 5
    await client.post(f"/api/streams/{stream['id']}/close")
    # A repeat that arrives after the stream was closed is still a duplicate.
    late = await client.post(url, json={"paths": paths(2, 5), "offset": 2})
    assert late.json()["duplicate"] is True
    page = (await client.get(url, params={"page_size": 100})).json()
    assert page["results"] == paths(0, 5)


@pytest.mark.parametrize(
    ("chunk", "offset"),
    [((3, 5), 4), ((20, 22), 1), ((10, 11), 7)],
    ids=["overlap", "other-paths", "gap"],
)
async def test_append_out_of_step_is_409_and_stores_nothing(
    client: httpx.AsyncClient, chunk: tuple[int, int], offset: int
) -> None:
    stream = (await client.post("/api/streams/", json={"paths": paths(0, 5)})).json()
    url = f"/api/streams/{stream['id']}/paths/"
    answer = await client.post(url, json={"paths": paths(*chunk), "offset": offset})
    assert answer.status_code == 409
    assert answer.json()["error"] == "offset_conflict"
    assert answer.json()["count"] == 5
    assert str(offset) in answer.json()["detail"]
    page = (await client.get(url, params={"page_size": 100})).json()
    assert page["results"] == paths(0, 5)


@pytest.mark.parametrize("offset", [-1, "2", 1.5, True])
async def test_bad_offset_is_422_naming_it(
    client: httpx.AsyncClient, offset: object
) -> None:
    stream = (await client.post("/api/streams/", json={})).json()
    answer = await client.post(
        f"/api/streams/{stream['id']}/paths/", json={"paths": [], "offset": offset}
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "offset"


async def test_the_page_header_repeats_the_page_but_its_paths(
    client: httpx.AsyncClient,
) -> None:
    stream = (await client.post("/api/streams/", json={"paths": paths(0, 10)})).json()
    answer = await client.get(stream["url"], params={"page_size": 3})
    body = answer.json()
    header = json.loads(answer.headers["Stream-Page"])
    assert header == {**body, "results": 3}
    assert len(header["ahead"]) == 1  # the page at 6; the one at 9 is not full


def test_a_page_renders_as_the_standard_encoder_would() -> None:
    # Rendered by orjson for speed, a page must stay the compact UTF-8 JSON
    # Starlette's encoder writes, byte for byte; a name that is not UTF-8 (a
    # surrogate escape) or an integer past 64 bits falls back to the standard
    # encoder, ASCII JSON.
    page = {
        "results": [*paths(0, 3), {"path": "/fs/é ✓"}],
        "next": "c1",
        "count": 4,
        "closed": True,
        "ahead": ["c2"],
    }
    standard = JSONResponse(page).body
    assert WireJSONResponse(page).body == standard
    assert b"\\u" not in standard  # UTF-8 as it is, not escaped
    odd = {**page, "results": [{"path": "/fs/\udcff"}, {"path": "/x", "n": 2**70}]}
    ascii_json = json.dumps(odd, allow_nan=False, separators=(",", ":")).encode()
    assert WireJSONResponse(odd).body == ascii_json
    odd_page = json.loads(bytes(WireJSONResponse(odd).body))
    assert odd_page["results"][0]["path"] == "/fs/\udcff"
