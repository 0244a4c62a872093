"""The adaptive prefetch depth: deeper while the reader waits on the network,
shallower while pages wait for the consumer, within the cap and the memory budget."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asyncstream import _pager
from asyncstream._hub_pools import POOL_LIMITS
from asyncstream._pager import PagePrefetcher, PrefetchStatistics
from asyncstream._prefetch_depth import (
    MAX_DEPTH,
    PATH_OVERHEAD_BYTES,
    PrefetchDepth,
    page_bytes,
    pages_in_flight,
)
from asyncstream._sender import DEFAULT_MAX_INFLIGHT_BATCHES
from asyncstream._stream_page import decode_results
from asyncstream.hub._stream_routes import MAX_PAGES_AHEAD
from asyncstream.utils.inputs import expand_paths
from tests.runtime._pager_fakes import HUB_URL, FakeStreams

URL = "/api/streams/s1/paths/"


def test_depth_doubles_while_the_consumer_waits_with_the_budget_in_use() -> None:
    depth = PrefetchDepth(None)
    assert depth.depth == 2
    # Nothing ready, every page of the budget in use (held or requested).
    assert depth.consumer_asks(outstanding=2, buffered=0) == 4
    assert depth.consumer_asks(outstanding=4, buffered=0) == 8
    # Nothing ready but a slot unused: a deeper budget would not help.
    assert depth.consumer_asks(outstanding=7, buffered=0) == 8
    assert depth.consumer_asks(outstanding=8, buffered=0) == 16
    assert depth.consumer_asks(outstanding=16, buffered=0) == MAX_DEPTH
    # Never past the ceiling.
    assert depth.consumer_asks(outstanding=MAX_DEPTH, buffered=0) == MAX_DEPTH
    assert depth.grown == 4


def test_a_wait_grows_the_depth_to_what_the_round_trip_needs() -> None:
    depth = PrefetchDepth(None)
    # 100 ms a page, 10 ms of work on one: ten pages on their way, one held.
    assert (
        depth.consumer_asks(
            outstanding=2, buffered=0, round_trip=0.1, consumer_seconds=0.01
        )
        == 11
    )
    assert depth.grown == 1
    # Work slower than the round trip: doubling is the least a wait grows it by.
    depth = PrefetchDepth(None)
    assert (
        depth.consumer_asks(
            outstanding=2, buffered=0, round_trip=0.1, consumer_seconds=0.5
        )
        == 4
    )
    assert pages_in_flight(0.1, 0.0) == pages_in_flight(1.0, 0.001) == MAX_DEPTH
    assert pages_in_flight(None, 0.01) == pages_in_flight(0.1, None) == 0
    # Within the ceiling, always.
    depth = PrefetchDepth(5)
    assert (
        depth.consumer_asks(
            outstanding=5, buffered=0, round_trip=1.0, consumer_seconds=0.001
        )
        == 5
    )


def test_depth_shrinks_to_two_while_pages_wait_for_the_consumer() -> None:
    depth = PrefetchDepth(None, depth=6)
    for expected in (5, 4, 3, 2, 2):
        assert depth.consumer_asks(outstanding=depth.depth, buffered=depth.depth - 1)
        assert depth.depth == expected
    assert depth.shrunk == 4


def test_explicit_prefetch_is_where_it_starts_and_never_exceeded() -> None:
    depth = PrefetchDepth(3)
    assert depth.depth == 3
    for _ in range(10):
        depth.consumer_asks(outstanding=depth.depth, buffered=0)
    assert depth.depth == 3
    assert PrefetchDepth(1).consumer_asks(outstanding=1, buffered=0) == 1


def test_memory_budget_bounds_pages_times_page_bytes() -> None:
    page = [{"path": "/p/" + "x" * 97} for _ in range(1000)]
    assert page_bytes(page) == 1000 * (PATH_OVERHEAD_BYTES + 100)
    depth = PrefetchDepth(None, budget_bytes=5 * page_bytes(page), depth=8)
    depth.page_read(page)
    assert (depth.ceiling, depth.depth) == (5, 5)
    for _ in range(10):
        depth.consumer_asks(outstanding=depth.depth, buffered=0)
    assert depth.depth == 5
    assert PrefetchDepth(None).ceiling == MAX_DEPTH


async def read_all(
    pages: PagePrefetcher, fake: FakeStreams, *, slow: bool
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async for batch in pages:
        seen.extend(batch)
        fake.passed += 1
        if slow:  # every request answered before the consumer asks again
            await anyio.wait_all_tasks_blocked()
    return seen


async def test_fast_consumer_gets_more_pages_in_flight_than_the_start() -> None:
    fake = FakeStreams(ahead=32)
    fake.add("s1", 400)

    async def network(request: Any, number: int) -> None:
        await anyio.sleep(0.1)  # every page waits on the network: far longer than
        # the consumer spends on a page, even on a loaded machine

    fake.intercept = network
    seen: list[dict[str, Any]] = []
    async with (
        fake.client() as client,
        PagePrefetcher(client, URL, page_size=10) as pages,
    ):
        async for batch in pages:
            if not seen:
                first = pages.statistics()
            elif len(seen) == 10:
                second = pages.statistics()
            seen.extend(batch)
            fake.passed += 1
        stats = pages.statistics()
    assert [p["path"] for p in seen] == [f"/data/s1/file{i:07d}" for i in range(400)]
    assert stats.prefetch_cap is None
    assert first.requests == 2  # the starting depth
    # The first wait (for the second page) took the depth to the ceiling at
    # once, and the pages the first answer announced were requested: the
    # ceiling's worth after the first page, released (doubling: 5 in all).
    assert second.requests == MAX_DEPTH + 1
    assert second.prefetch_limit == MAX_DEPTH
    assert fake.max_in_flight >= MAX_DEPTH - 2
    assert fake.max_outstanding <= stats.depth_ceiling == MAX_DEPTH


async def test_slow_consumer_brings_the_depth_back_down() -> None:
    fake = FakeStreams(ahead=16)
    fake.add("s1", 400)
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, prefetch=8)
        async with pages:
            seen = await read_all(pages, fake, slow=True)
            stats = pages.statistics()
    assert len(seen) == 400
    assert stats.prefetch_limit == 2
    assert stats.depth_changes == (0, 6)


async def read_within_pages(
    fake: FakeStreams, decoded_pages: int
) -> tuple[list[Any], PrefetchStatistics]:
    """Read the 400 paths of ``s1`` in pages of 10, within a budget of
    ``decoded_pages`` decoded pages; the paths and the statistics at the end."""
    fake.add("s1", 400)
    one_page = page_bytes([{"path": "/data/s1/file0000000"}] * 10)
    budget = decoded_pages * one_page
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, budget_bytes=budget)
        async with pages:
            seen = await read_all(pages, fake, slow=False)
            return seen, pages.statistics()


async def test_memory_budget_caps_the_pages_outstanding() -> None:
    fake = FakeStreams(ahead=16)
    seen, stats = await read_within_pages(fake, 3)
    assert len(seen) == 400
    assert stats.depth_ceiling == 3
    assert stats.prefetch_limit == 3
    # The first pages were requested before their size was known: at most the
    # starting depth then, never more than the budget after.
    assert fake.max_outstanding <= 3


async def test_the_next_stream_starts_at_the_depth_the_last_one_settled_at() -> None:
    fake = FakeStreams(ahead=16)
    fake.add("s1", 400)
    fake.add("s2", 400)

    async def network(request: Any, number: int) -> None:
        await anyio.sleep(0.005)  # every page waits on the network

    fake.intercept = network
    refs = [{"stream": f"/api/streams/{s}/paths/", "count": 400} for s in ("s1", "s2")]
    inputs = expand_paths(
        refs, hub_url=HUB_URL, transport=fake.transport(), page_size=10
    )
    seen: dict[int, Any] = {}
    read = 0
    async with inputs:
        async for _ in inputs:
            read += 1
            if read in (400, 401):  # the last path of s1, the first of s2
                seen[read] = inputs.statistics()
    assert read == 800
    first, second = seen[400], seen[401]
    assert first.url.endswith("/s1/paths/")
    assert second.url.endswith("/s2/paths/")
    # s1 grew at least once: its first page was asked for before any arrived.
    assert first.depth_changes[0] >= 1
    # s2 started where s1 ended: the same depth and its history, not a fresh
    # start at two pages. Only a step can separate them, and only upwards: at
    # s2's first page nothing of it is ready yet, so nothing can shrink it.
    # (How the depth moves after that depends on how fast this machine reads,
    # which the test does not pin down.)
    assert second.prefetch_limit >= first.prefetch_limit
    assert second.depth_changes[0] >= first.depth_changes[0]
    assert second.depth_changes[1] == first.depth_changes[1]


def test_pages_waiting_as_bodies_fit_the_budget_many_times_over() -> None:
    decoded = PrefetchDepth(None, budget_bytes=10_000_000, depth=2)
    decoded.page_read([{"path": "/p" * 20}] * 5000)  # 340 bytes a path: 1.7 MB
    assert decoded.ceiling == 10_000_000 // decoded.largest_page_bytes == 5
    # The same page kept as its 275 kB body: two pages decoded, the rest bodies.
    compact = PrefetchDepth(None, budget_bytes=10_000_000, depth=2)
    compact.body_read(5000, 275_000)
    held = 2 * (5000 * PATH_OVERHEAD_BYTES + 275_000)
    assert compact.ceiling == min(MAX_DEPTH, 2 + (10_000_000 - held) // 275_000)
    assert compact.ceiling > 2 * decoded.ceiling
    # A budget smaller than two decoded pages still bounds them.
    tight = PrefetchDepth(None, budget_bytes=2_000_000)
    tight.body_read(5000, 275_000)
    assert tight.ceiling == 1


async def test_a_hub_with_the_page_header_gets_deeper_within_the_same_budget() -> None:
    ceilings = []
    for header in (False, True):
        seen, stats = await read_within_pages(
            FakeStreams(ahead=32, page_header=header), 4
        )
        ceilings.append(stats.depth_ceiling)
        assert [p["path"] for p in seen] == [
            f"/data/s1/file{i:07d}" for i in range(400)
        ]
    # Decoded pages: 4 fit. Bodies of ~400 bytes (10 paths of 20 characters,
    # where a decoded page counts ~3.2 kB): two decoded, the rest as bodies.
    assert ceilings[0] == 4
    assert ceilings[1] > 8


async def test_the_loop_turns_between_decoding_a_page_and_handing_it_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The answers in flight are read by the consumer's loop: a task that became
    # ready while a page was decoded (as an answer's next chunk does) runs
    # before the consumer gets the page, even when the page was ready already.
    fake = FakeStreams(ahead=16, page_header=True)
    fake.add("s1", 50)
    ran_after_decoding: list[bool] = []
    async with anyio.create_task_group() as tasks:
        ready: list[int] = []

        def decode_and_wake(page: Any, url: str) -> Any:
            tasks.start_soon(lambda: _append(ready))
            return decode_results(page, url)

        monkeypatch.setattr(_pager, "decode_results", decode_and_wake)
        async with (
            fake.client() as client,
            PagePrefetcher(client, URL, page_size=10) as pages,
        ):
            async for _ in pages:
                ran_after_decoding.append(len(ready) == len(ran_after_decoding) + 1)
    assert ran_after_decoding == [True] * 5


async def _append(ready: list[int]) -> None:
    ready.append(1)


def test_the_deepest_budget_is_what_the_pool_leaves_the_sender() -> None:
    # Answers are slow to be read while the consumer works (0.2-0.55 s at
    # +100 ms a page): the reader uses every connection of the shared pool but
    # what the sender's batches in flight need, within the cursors announced.
    pool = POOL_LIMITS.max_connections
    assert pool is not None
    assert pool - DEFAULT_MAX_INFLIGHT_BATCHES == MAX_DEPTH
    assert MAX_DEPTH <= MAX_PAGES_AHEAD
