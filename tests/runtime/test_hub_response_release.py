"""A read response is freed when its last use ends, not by the cyclic collector.

httpx links a response and its body stream both ways; left alone, every page
body a reader is done with stays in memory until the cyclic garbage collector
runs, and a long read holds more of them the longer it reads.
"""

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
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def responses_left_to_the_collector() -> int:
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what it finds, to count it
    gc.collect()
    found = sum(isinstance(o, httpx.Response) for o in gc.garbage)
    gc.set_debug(0)
    gc.garbage.clear()
    return found


async def test_stream_pages_read_leave_no_response_in_a_cycle(
    no_cyclic_gc: None,
) -> None:
    async with (
        running_hub(store="memory", api_key="k") as hub,
        HubClient(HubSettings(hub.url, hub.api_key)) as client,
    ):
        info = await client.create_stream([{"path": f"/f{i}"} for i in range(50)])
        await client.close_stream(info["id"])
        cursor = None
        pages = 0
        while True:
            page = await client.get_page(info["url"], cursor=cursor, page_size=5)
            pages += 1
            cursor = page["next"]
            if cursor is None:
                break
        assert pages >= 10
        # Every response of the hub, the create and close included.
        assert responses_left_to_the_collector() == 0
