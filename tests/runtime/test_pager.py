"""PagePrefetcher and its policy, over httpx.MockTransport."""

from __future__ import annotations

import asyncio

import anyio
import httpx
import pytest

from asyncstream._exceptions import (
    HubProtocolError,
    StreamError,
    StreamIdleTimeout,
    UsageError,
)
from asyncstream._pager import PagePrefetcher
from asyncstream._prefetch_policy import Page, PrefetchPolicy, parse_page
from tests.runtime._pager_fakes import HUB_URL, FakeStreams, stream_path

# --import-mode=importlib keeps test modules from importing each other.
URL = "/api/streams/s1/paths/"


def page(n: int, nxt: str | None, *, closed: bool = False) -> Page:
    return Page([{"path": f"/p{i}"} for i in range(n)], nxt, n, closed)


# -- the policy: decisions without I/O -------------------------------------------


def test_policy_allows_limit_pages_until_one_is_released() -> None:
    policy = PrefetchPolicy(limit=2, idle_timeout=10, wait=1, idle_since=0)
    policy.fetch_started()
    policy.fetch_started()
    assert not policy.may_fetch()
    with pytest.raises(UsageError):
        policy.fetch_started()
    policy.page_released()
    assert policy.may_fetch()
    assert policy.max_outstanding == 2


def test_policy_repeated_cursor_with_results_is_stream_error() -> None:
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    policy.fetch_started()
    assert policy.after_page(None, page(3, "a"), now=0, elapsed=0) == 0.0
    policy.fetch_started()
    assert policy.after_page("a", page(3, "b"), now=0, elapsed=0) == 0.0
    policy.fetch_started()
    with pytest.raises(StreamError, match="'a'"):
        policy.after_page("b", page(3, "a"), now=0, elapsed=0)


def test_policy_empty_open_page_backs_off_then_times_out() -> None:
    policy = PrefetchPolicy(limit=2, idle_timeout=1.0, wait=0.4, idle_since=0)
    pauses = []
    for now in (0.1, 0.2, 0.3, 0.5):
        policy.fetch_started()
        pauses.append(policy.after_page("c", page(0, "c"), now=now, elapsed=0.0))
        assert policy.outstanding == 0  # empty pages never hold a slot
    assert pauses == pytest.approx([0.05, 0.1, 0.2, 0.4])
    # A hub that long-polled the whole wait gets polled again at once.
    policy.fetch_started()
    assert policy.after_page("c", page(0, "c"), now=0.6, elapsed=0.4) == 0.0
    # The long-poll wait asked for never runs past the idle deadline.
    assert policy.poll_wait(0.8) == pytest.approx(0.2)
    policy.fetch_started()
    with pytest.raises(StreamIdleTimeout, match="idle timeout 1s"):
        policy.after_page("c", page(0, "c"), now=1.0, elapsed=0.0)


def test_policy_results_reset_idle_clock_and_end_on_null_cursor() -> None:
    policy = PrefetchPolicy(limit=1, idle_timeout=1.0, wait=0, idle_since=0)
    policy.fetch_started()
    assert policy.after_page(None, page(2, "x"), now=5.0, elapsed=0) == 0.0
    assert policy.idle_since == 5.0
    policy.page_released()
    policy.fetch_started()
    assert policy.after_page("x", page(2, None, closed=True), now=5, elapsed=0) is None


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"next": None, "count": 0, "closed": True}, "'results'"),
        ({"results": [{"p": 1}], "next": "1", "count": 1, "closed": False}, "results"),
        ({"results": [], "next": None, "count": 0, "closed": False}, "not closed"),
        ({"results": [], "next": 3, "count": 0, "closed": False}, "'next'"),
        ({"results": [], "next": None, "count": "9", "closed": True}, "'count'"),
        ({"results": [], "next": "0", "count": 0, "closed": True}, "empty page"),
    ],
)
def test_parse_page_rejects_answers_outside_protocol(
    answer: dict[str, object], problem: str
) -> None:
    with pytest.raises(HubProtocolError, match=problem):
        parse_page(answer, URL)


# -- the prefetcher over a mock transport ----------------------------------------


@pytest.mark.parametrize("prefetch", [1, 2, 3])
async def test_prefetcher_never_has_more_than_n_pages_outstanding(
    prefetch: int,
) -> None:
    fake = FakeStreams()
    fake.add("s1", 100)
    gate = anyio.Event()
    seen = []
    async with (
        fake.client() as client,
        PagePrefetcher(client, URL, page_size=10, prefetch=prefetch) as pages,
    ):
        async for batch in pages:
            seen.extend(batch)
            if len(seen) == 10:
                # Stall on the first page: fetching must stop at the budget.
                await anyio.wait_all_tasks_blocked()
                assert fake.started == prefetch
                assert pages.statistics().pages_outstanding == prefetch
                gate.set()
            await gate.wait()
            fake.passed += 1  # the next __anext__ moves past this page
        stats = pages.statistics()
    assert seen == [stream_path("s1", i) for i in range(100)]
    assert fake.max_outstanding == prefetch
    assert stats.max_outstanding == prefetch
    assert stats.pages_fetched == 10
    assert stats.paths_fetched == 100


async def test_closing_early_cancels_the_request_in_flight() -> None:
    fake = FakeStreams()
    fake.add("s1", 100)
    stalled = anyio.Event()

    async def stall_second_page(request: httpx.Request, number: int) -> None:
        if number == 2:
            stalled.set()
            await anyio.sleep_forever()

    fake.intercept = stall_second_page
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, prefetch=2)
        async with pages:
            first = await anext(pages)
            await stalled.wait()
            assert fake.in_flight == 1
        assert first[0] == stream_path("s1", 0)
        assert fake.in_flight == 0
        assert fake.cancelled == 1
        assert pages.statistics().state == "closed"
        assert {
            t for t in asyncio.all_tasks() if t is not asyncio.current_task()
        } == set()
        with pytest.raises(UsageError, match="not open"):
            await anext(pages)
        await pages.aclose()  # a second close does nothing


async def test_repeated_cursor_is_an_error_not_a_loop() -> None:
    fake = FakeStreams()

    async def same_cursor(request: httpx.Request, number: int) -> httpx.Response:
        body = {"results": [{"path": "/a"}], "next": "7", "count": 1, "closed": False}
        return httpx.Response(200, json=body)

    fake.intercept = same_cursor
    seen = []
    async with fake.client() as client, PagePrefetcher(client, URL) as pages:

        async def read() -> None:
            async for batch in pages:
                seen.extend(batch)

        with pytest.raises(StreamError, match="already read"):
            await read()
    assert seen == [{"path": "/a"}]  # the repeated page is not delivered
    assert fake.started == 2


async def test_idle_open_stream_long_polls_then_times_out() -> None:
    fake = FakeStreams()
    fake.add("s1", 5, closed=False)
    async with (
        fake.client() as client,
        PagePrefetcher(client, URL, wait=0.05, idle_timeout=0.3) as pages,
    ):
        first = await anext(pages)
        with pytest.raises(StreamIdleTimeout):
            await anext(pages)
        stats = pages.statistics()
    assert len(first) == 5
    assert stats.empty_polls >= 2
    assert list(fake.waits)[:2] == [0.05, 0.05]
    assert all(w is None or w <= 0.05 for w in fake.waits)  # capped by idle time


async def test_open_stream_delivers_paths_appended_later() -> None:
    fake = FakeStreams()
    fake.add("s1", 3, closed=False)
    async with fake.client() as client, PagePrefetcher(client, URL, wait=0.01) as pages:
        seen = list(await anext(pages))
        fake.streams["s1"] = type(fake.streams["s1"])(total=6, closed=True)
        async for batch in pages:
            seen.extend(batch)
    assert seen == [stream_path("s1", i) for i in range(6)]


async def test_retries_503_with_retry_after_then_delivers() -> None:
    fake = FakeStreams()
    fake.add("s1", 4)
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def busy_twice(request: httpx.Request, number: int) -> httpx.Response | None:
        if number <= 2:
            return httpx.Response(503, headers={"Retry-After": "0.25"}, json={})
        return None

    fake.intercept = busy_twice
    async with (
        fake.client(sleep=record_sleep) as client,
        PagePrefetcher(client, URL) as pages,
    ):
        seen = [p async for batch in pages for p in batch]
        stats = pages.statistics()
    assert seen == [stream_path("s1", i) for i in range(4)]
    assert sleeps == [0.25, 0.25]
    assert (stats.retries, stats.requests) == (2, 1)
    assert "retries=2" in repr(pages)


async def test_malformed_page_reaches_consumer_as_protocol_error() -> None:
    fake = FakeStreams()

    async def bad(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(200, json={"results": "nope"})

    fake.intercept = bad
    async with fake.client() as client, PagePrefetcher(client, URL) as pages:
        with pytest.raises(HubProtocolError, match="'results'"):
            await anext(pages)


async def test_repr_and_statistics_describe_the_buffer() -> None:
    fake = FakeStreams()
    fake.add("s1", 30)
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, prefetch=3)
        assert pages.statistics().state == "unopened"
        with pytest.raises(UsageError):
            await anext(pages)
        async with pages:
            await anext(pages)
            await anyio.wait_all_tasks_blocked()
            stats = pages.statistics()
            assert (stats.pages_outstanding, stats.pages_buffered) == (3, 2)
            assert repr(pages) == (
                f"<PagePrefetcher {URL} open outstanding=3/3 pages=3 paths=30"
                " retries=0>"
            )
    assert HUB_URL.startswith("http://")
