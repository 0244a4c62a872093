"""A hub answer is freed as soon as it is read, not at the next full collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.hub import running_hub


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _responses() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, httpx.Response))


async def test_read_responses_leave_nothing_for_the_cyclic_collector(
    no_cyclic_gc: None,
) -> None:
    async with running_hub(store="memory") as hub:
        settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
        async with HubClient(settings) as client:
            stream = await client.create_stream()
            await client.append_stream(stream["id"], [{"path": "/data/a"}], offset=0)
            before = _responses()
            for _ in range(20):
                page = await client.get_page(stream["url"], cursor=None, page_size=10)
                assert [p["path"] for p in page["results"]] == ["/data/a"]
            assert _responses() == before
