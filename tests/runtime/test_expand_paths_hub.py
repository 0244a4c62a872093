"""expand_paths against the real hub on loopback: live producer, faults, memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream._prefetch_depth import MAX_DEPTH
from asyncstream.hub import RunningHub, running_hub
from asyncstream.utils.inputs import expand_paths


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite", api_key="test-key", faults=True) as running:
        yield running


@pytest.fixture
async def producer(hub: RunningHub) -> AsyncIterator[HubClient]:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
        yield client


def paths_of(name: str, start: int, stop: int) -> list[dict[str, Any]]:
    return [
        {"path": f"/data/{name}/file{i:06d}", "size": i} for i in range(start, stop)
    ]


async def closed_stream(producer: HubClient, name: str, total: int) -> dict[str, Any]:
    info = await producer.create_stream()
    for start in range(0, total, 2000):
        await producer.append_stream(
            info["id"], paths_of(name, start, min(total, start + 2000))
        )
    await producer.close_stream(info["id"])
    return {"stream": info["url"], "count": total}


def expand(hub: RunningHub, paths: list[Any], **options: Any) -> Any:
    return expand_paths(paths, hub_url=hub.url, api_key=hub.api_key, **options)


async def test_reader_gets_every_path_once_in_order_while_producer_appends(
    hub: RunningHub, producer: HubClient
) -> None:
    chunk, chunks = 50, 8
    info = await producer.create_stream(paths_of("live", 0, chunk))
    caught_up = [anyio.Event() for _ in range(chunks)]
    seen: list[dict[str, Any]] = []

    async def produce() -> None:
        # Each chunk goes in only once the reader has read all before it, so the
        # reader really waits on an open stream with nothing new.
        for k in range(1, chunks):
            await caught_up[k - 1].wait()
            await producer.append_stream(
                info["id"], paths_of("live", k * chunk, (k + 1) * chunk)
            )
        await caught_up[chunks - 1].wait()
        await producer.close_stream(info["id"])

    async def consume() -> None:
        ref = {"stream": info["url"], "count": chunk}
        async with expand(
            hub, ["/before", ref, "/after"], page_size=20, wait=2
        ) as inputs:
            async for path in inputs:
                seen.append(path)
                read, rest = divmod(len(seen) - 1, chunk)  # "/before" came first
                if rest == 0 and 1 <= read <= chunks:
                    caught_up[read - 1].set()
            stats = inputs.statistics()
        assert stats.empty_polls == 0  # long-polls were answered by the appends
        assert stats.max_outstanding <= 2

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        tg.start_soon(consume)
    want = [
        {"path": "/before"},
        *paths_of("live", 0, chunks * chunk),
        {"path": "/after"},
    ]
    assert seen == want


async def test_faults_still_yield_every_path_exactly_once(
    hub: RunningHub, producer: HubClient
) -> None:
    ref = await closed_stream(producer, "faulty", 1500)
    prefix = ref["stream"]
    hub.faults.fail_next(3, status=503, retry_after=0.02, path_prefix=prefix)
    hub.faults.drop_after_commit(2, path_prefix=prefix)
    hub.faults.delay(0.05, n=3, path_prefix=prefix)
    async with expand(hub, [ref], page_size=100, prefetch=3) as inputs:
        seen = [p async for p in inputs]
        stats = inputs.statistics()
    assert seen == paths_of("faulty", 0, 1500)
    assert stats.retries == 5
    assert hub.faults.injected == {"fail": 3, "drop": 2, "delay": 3}


async def test_sync_for_and_async_for_give_identical_sequences(
    hub: RunningHub, producer: HubClient
) -> None:
    paths = [
        "/inline/a",
        await closed_stream(producer, "one", 333),
        {"path": "/inline/b", "size": 1},
        await closed_stream(producer, "two", 0),
        await closed_stream(producer, "three", 101),
    ]
    async_seen = [p async for p in expand(hub, paths, page_size=50)]

    def sync_read() -> list[dict[str, Any]]:
        return list(expand(hub, paths, page_size=50))

    sync_seen = await anyio.to_thread.run_sync(sync_read)
    assert sync_seen == async_seen
    assert len(async_seen) == 2 + 333 + 101
    assert async_seen[:2] == [{"path": "/inline/a"}, *paths_of("one", 0, 1)]


async def test_memory_stays_bounded_with_ten_times_the_paths(
    hub: RunningHub, producer: HubClient
) -> None:
    small_ref = await closed_stream(producer, "small", 2_000)
    large_ref = await closed_stream(producer, "large", 20_000)

    async def peak(ref: dict[str, Any]) -> int:
        tracemalloc.start()
        try:
            count = 0
            async with expand(hub, [ref], page_size=100, prefetch=2) as inputs:
                async for _ in inputs:
                    count += 1
            assert count == ref["count"]
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    await peak(small_ref)  # warm up imports and caches
    small, large = await peak(small_ref), await peak(large_ref)
    print(f"real hub tracemalloc peak: 2k paths {small} B, 20k paths {large} B")
    assert large - small < 512 * 1024


async def test_latency_is_overlapped_by_reading_ahead_in_parallel(
    hub: RunningHub, producer: HubClient
) -> None:
    ref = await closed_stream(producer, "slow", 3_050)
    hub.faults.delay(0.02, path_prefix="/api/streams/")
    async with expand(hub, ["/first", ref], page_size=100, prefetch=4) as inputs:
        seen = [p async for p in inputs]
        stats = inputs.statistics()
    assert seen == [{"path": "/first"}, *paths_of("slow", 0, 3_050)]
    assert stats is not None
    assert stats.requests == 31  # every page once, ahead cursors not re-read
    assert stats.max_in_flight == 4  # the hub's ahead cursors were used
    assert stats.max_outstanding == 4


async def test_unset_prefetch_reads_deeper_while_pages_wait_on_the_hub(
    hub: RunningHub, producer: HubClient
) -> None:
    # More pages than the deepest budget and the first page, so that the
    # budget, not the stream's end, is what stops the requests.
    reference = await closed_stream(producer, "slow", 4000)
    hub.faults.delay(0.1, path_prefix="/api/streams/")
    read: list[str] = []
    async with expand(hub, [reference], page_size=100, prefetch=None) as inputs:
        async for item in inputs:
            read.append(item["path"])
            if len(read) == 101:  # the first path of the second page
                second = inputs.statistics()
        stats = inputs.statistics()
    assert read == [p["path"] for p in paths_of("slow", 0, 4000)]
    assert stats is not None
    assert second is not None
    assert stats.prefetch_cap is None
    assert stats.max_in_flight > 2  # the default start is 2 pages
    # The consumer waits 100 ms a page and spends far less on one: its first
    # wait takes the depth to the ceiling, not three doublings.
    assert second.prefetch_limit == MAX_DEPTH
    assert second.requests == MAX_DEPTH + 1  # and the first page, released
