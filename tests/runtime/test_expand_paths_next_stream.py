"""The next stream's first page is asked for while the current stream still has
pages to request, within the same budget of pages; leaving early leaves nothing
of either running."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from asyncstream._exceptions import HubError
from asyncstream._prefetch_depth import MAX_DEPTH
from asyncstream.utils.inputs import expand_paths
from tests.runtime._pager_fakes import HUB_URL, FakeStreams

PAGE = 10


def recording(fake: FakeStreams, log: list[tuple[str, str | None]]) -> None:
    """Every page request, in the order they start; each waits on the network."""

    async def network(request: httpx.Request, number: int) -> None:
        log.append((request.url.path.split("/")[3], request.url.params.get("cursor")))
        await anyio.sleep(0.005)

    fake.intercept = network


def two_streams(fake: FakeStreams, total: int) -> list[dict[str, Any]]:
    return [fake.add("s1", total), fake.add("s2", total)]


async def test_next_stream_first_page_is_requested_before_the_current_ends() -> None:
    fake = FakeStreams(ahead=16)
    log: list[tuple[str, str | None]] = []
    recording(fake, log)
    refs = two_streams(fake, 400)
    inputs = expand_paths(
        refs, hub_url=HUB_URL, transport=fake.transport(), page_size=PAGE
    )
    read: list[str] = []
    asked_at_end_of_s1: list[tuple[str, str | None]] = []
    async with inputs:
        async for item in inputs:
            read.append(item["path"])
            fake.passed = (len(read) - 1) // PAGE
            if len(read) == 260:
                # Slow for a while, with every page of s1 requested: they are
                # all ready by the time it moves on, and the budget is s1's.
                await anyio.sleep(0.1)
            if len(read) == 400:  # the last path of s1
                asked_at_end_of_s1 = list(log)
        stats = inputs.statistics()
    expected = [f"/data/{s}/file{i:07d}" for s in ("s1", "s2") for i in range(400)]
    assert read == expected
    assert ("s2", None) in asked_at_end_of_s1
    # s2's first page was asked for once at most a budget's worth of s1's
    # pages was left to request, before s1's last: its answer announces the
    # cursors s2 requests in the slots s1 frees at its end, without a round
    # trip more. Each page was requested once.
    first_of_s2 = log.index(("s2", None))
    assert {s for s, _ in log[:first_of_s2]} == {"s1"}
    assert 400 // PAGE - MAX_DEPTH <= first_of_s2 < 400 // PAGE
    assert len(log) == len(set(log)) == 2 * 400 // PAGE
    # One budget for both: never more pages requested and not passed than the
    # depth, give or take the page the consumer is being handed.
    assert fake.max_outstanding <= MAX_DEPTH + 1
    assert stats is not None
    assert stats.url.endswith("/s2/paths/")


async def test_leaving_early_cancels_the_next_stream_too() -> None:
    fake = FakeStreams(ahead=16)
    log: list[tuple[str, str | None]] = []
    recording(fake, log)
    refs = two_streams(fake, 400)
    inputs = expand_paths(
        refs, hub_url=HUB_URL, transport=fake.transport(), page_size=PAGE
    )
    read = 0
    async with inputs:
        async for _ in inputs:
            read += 1
            if ("s2", None) in log and read % PAGE == 0:
                break  # s1 is being read, s2 has started
    assert read < 400
    assert fake.in_flight == 0
    started = fake.started
    await anyio.sleep(0.05)
    assert fake.started == started  # nothing was left to start requests


async def test_an_open_next_stream_idles_only_once_the_consumer_gets_to_it() -> None:
    fake = FakeStreams(ahead=16)
    log: list[tuple[str, str | None]] = []
    recording(fake, log)
    refs = [fake.add("s1", 400), fake.add("s2", 0, closed=False)]
    inputs = expand_paths(
        refs,
        hub_url=HUB_URL,
        transport=fake.transport(),
        page_size=PAGE,
        wait=0.01,
        idle_timeout=0.3,
    )
    read = 0
    async with inputs:
        async for _ in inputs:
            read += 1
            if read == 400:  # the last path of s1, s2 polled already
                assert ("s2", None) in log
                # Longer on s1 than s2 may idle: no paths of s2 were waited for.
                await anyio.sleep(0.5)
                fake.streams["s2"].total = 20
                fake.streams["s2"].closed = True
    assert read == 420


async def test_an_error_of_the_next_stream_comes_after_the_current_ones_paths() -> None:
    fake = FakeStreams(ahead=16)
    refs = [fake.add("s1", 400), {"stream": "/api/streams/gone/paths/"}]
    inputs = expand_paths(
        refs,
        hub_url=HUB_URL,
        transport=fake.transport(),
        page_size=PAGE,
    )
    read: list[str] = []

    async def read_all() -> None:
        async with inputs:
            async for item in inputs:
                read.append(item["path"])

    with pytest.raises(HubError):
        await read_all()
    assert read == [f"/data/s1/file{i:07d}" for i in range(400)]


async def test_paths_between_two_streams_keep_their_place() -> None:
    fake = FakeStreams(ahead=16)
    log: list[tuple[str, str | None]] = []
    recording(fake, log)
    s1, s2 = two_streams(fake, 200)
    inputs = expand_paths(
        [s1, "/between", s2],
        hub_url=HUB_URL,
        transport=fake.transport(),
        page_size=PAGE,
    )
    read: list[str] = []
    async with inputs:
        async for item in inputs:
            if item["path"] == "/between":
                assert ("s2", None) in log  # started before the inline path
            read.append(item["path"])
    assert read == [
        *(f"/data/s1/file{i:07d}" for i in range(200)),
        "/between",
        *(f"/data/s2/file{i:07d}" for i in range(200)),
    ]
