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
from asyncstream._prefetch_policy import (
    Page,
    PageRequest,
    PrefetchPolicy,
    parse_page,
)
from tests.runtime._pager_fakes import FakeStreams, stream_path

# --import-mode=importlib keeps test modules from importing each other.
URL = "/api/streams/s1/paths/"


def page(
    n: int, nxt: str | None, *, closed: bool = False, ahead: tuple[str, ...] = ()
) -> Page:
    return Page([{"path": f"/p{i}"} for i in range(n)], nxt, n, closed, ahead)


# -- the policy: decisions without I/O -------------------------------------------


def test_policy_counts_the_pages_of_a_closed_stream_left_to_request() -> None:
    policy = PrefetchPolicy(limit=4, idle_timeout=10, wait=1, idle_since=0)
    assert policy.pages_left(10) is None  # nothing known yet: it may grow
    first = policy.next_request()
    assert first is not None
    answer = Page([{"path": f"/p{i}"} for i in range(10)], "10", 35, True, ("20",))
    policy.after_page(first, answer, now=0, elapsed=0)
    # 35 paths, 10 read: pages at 10, 20 and 30 are left, then the two known
    # are requested and only the tail page's is.
    assert policy.pages_left(10) == 3
    policy.next_request()
    policy.next_request()
    assert policy.pages_left(10) == 1
    assert not policy.all_requested(10)


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


def started(policy: PrefetchPolicy) -> PageRequest:
    request = policy.next_request()
    assert request is not None
    return request


def test_policy_repeated_cursor_with_results_is_stream_error() -> None:
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    assert policy.after_page(started(policy), page(3, "a"), now=0, elapsed=0) == 0.0
    assert policy.after_page(started(policy), page(3, "b"), now=0, elapsed=0) == 0.0
    with pytest.raises(StreamError, match="'a'"):
        policy.after_page(started(policy), page(3, "a"), now=0, elapsed=0)


def test_policy_empty_open_page_backs_off_then_times_out() -> None:
    policy = PrefetchPolicy(limit=2, idle_timeout=1.0, wait=0.4, idle_since=0)
    policy.after_page(started(policy), page(0, "c"), now=0.0, elapsed=0.0)
    pauses = []
    for now in (0.2, 0.3, 0.5):
        request = started(policy)
        assert (request.position, request.cursor) == (0, "c")  # asked again
        pauses.append(policy.after_page(request, page(0, "c"), now=now, elapsed=0.0))
        assert policy.outstanding == 0  # empty pages never hold a slot
    assert pauses == pytest.approx([0.1, 0.2, 0.4])
    # A hub that long-polled the whole wait gets polled again at once.
    assert policy.after_page(started(policy), page(0, "c"), now=0.6, elapsed=0.4) == 0
    # The long-poll wait asked for never runs past the idle deadline.
    assert policy.poll_wait(0.8) == pytest.approx(0.2)
    with pytest.raises(StreamIdleTimeout, match="idle timeout 1s"):
        policy.after_page(started(policy), page(0, "c"), now=1.0, elapsed=0.0)


def test_policy_results_reset_idle_clock_and_end_on_null_cursor() -> None:
    policy = PrefetchPolicy(limit=1, idle_timeout=1.0, wait=0, idle_since=0)
    assert policy.after_page(started(policy), page(2, "x"), now=5.0, elapsed=0) == 0
    assert policy.idle_since == 5.0
    assert policy.next_request() is None  # the budget is full until released
    policy.page_released()
    request = started(policy)
    assert request == PageRequest(1, "x")
    assert (
        policy.after_page(request, page(2, None, closed=True), now=5, elapsed=0) is None
    )
    assert policy.next_request() is None


def test_policy_without_ahead_requests_one_page_at_a_time() -> None:
    policy = PrefetchPolicy(limit=4, idle_timeout=10, wait=1, idle_since=0)
    first = started(policy)
    assert policy.next_request() is None  # the next cursor is not known yet
    policy.after_page(first, page(3, "a"), now=0, elapsed=0)
    assert started(policy) == PageRequest(1, "a")
    assert policy.next_request() is None


def test_policy_requests_ahead_cursors_at_once_up_to_the_limit() -> None:
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    first = started(policy)
    ahead = page(3, "a", ahead=("b", "c", "d"))
    policy.after_page(first, ahead, now=0, elapsed=0)
    assert [started(policy).cursor, started(policy).cursor] == ["a", "b"]
    assert policy.next_request() is None  # 3 outstanding: the held page counts
    policy.page_released()
    request_c = started(policy)
    assert request_c == PageRequest(3, "c")
    # "b" arrives again as the next of "a", with "c" ahead: requested only once.
    policy.after_page(PageRequest(1, "a"), page(3, "b", ahead=("c",)), now=0, elapsed=0)
    policy.page_released()
    # "d" was beyond the limit when announced, and kept: requested once a slot
    # frees, not a round trip later when an answer announces it again.
    assert started(policy) == PageRequest(4, "d")
    policy.after_page(PageRequest(2, "b"), page(3, "c", ahead=("d",)), now=0, elapsed=0)
    policy.page_released()
    assert policy.next_request() is None  # "d" was requested once


def test_policy_rejects_answers_that_contradict_announced_cursors() -> None:
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    policy.after_page(started(policy), page(3, "a", ahead=("b",)), now=0, elapsed=0)
    with pytest.raises(HubProtocolError, match="now 'x'"):
        policy.after_page(started(policy), page(3, "x"), now=0, elapsed=0)
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    policy.after_page(started(policy), page(3, "a", ahead=("b",)), now=0, elapsed=0)
    with pytest.raises(HubProtocolError, match="no paths"):
        policy.after_page(started(policy), page(0, "a"), now=0, elapsed=0)
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    policy.after_page(started(policy), page(3, "a", ahead=("b",)), now=0, elapsed=0)
    with pytest.raises(HubProtocolError, match="ended"):
        policy.after_page(started(policy), page(3, None, closed=True), now=0, elapsed=0)


def test_policy_answers_must_be_accounted_for_in_order() -> None:
    policy = PrefetchPolicy(limit=3, idle_timeout=10, wait=1, idle_since=0)
    policy.after_page(started(policy), page(3, "a", ahead=("b",)), now=0, elapsed=0)
    started(policy)
    second = started(policy)
    with pytest.raises(UsageError, match="not the oldest"):
        policy.after_page(second, page(3, "c"), now=0, elapsed=0)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"next": None, "count": 0, "closed": True}, "'results'"),
        ({"results": [{"p": 1}], "next": "1", "count": 1, "closed": False}, "results"),
        ({"results": [], "next": None, "count": 0, "closed": False}, "not closed"),
        ({"results": [], "next": 3, "count": 0, "closed": False}, "'next'"),
        ({"results": [], "next": None, "count": "9", "closed": True}, "'count'"),
        ({"results": [], "next": "0", "count": 0, "closed": True}, "empty page"),
        (
            {"results": [], "next": "0", "count": 0, "closed": False, "ahead": ["1"]},
            "'ahead' cursors",
        ),
        (
            {
                "results": [{"path": "/a"}],
                "next": "1",
                "count": 9,
                "closed": False,
                "ahead": "2",
            },
            "'ahead' must",
        ),
        (
            {
                "results": [{"path": "/a"}],
                "next": "1",
                "count": 9,
                "closed": False,
                "ahead": [""],
            },
            "'ahead' must",
        ),
    ],
)
def test_parse_page_rejects_answers_outside_protocol(
    answer: dict[str, object], problem: str
) -> None:
    with pytest.raises(HubProtocolError, match=problem):
        parse_page(answer, URL)


# -- the prefetcher over a mock transport ----------------------------------------


@pytest.mark.parametrize("ahead", [0, 16])
@pytest.mark.parametrize("prefetch", [1, 2, 3])
async def test_prefetcher_never_has_more_than_n_pages_outstanding(
    prefetch: int, ahead: int
) -> None:
    fake = FakeStreams(ahead=ahead)
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


def hold_pages_after_the_first(
    fake: FakeStreams,
) -> tuple[dict[str, anyio.Event], list[str]]:
    """Stall every request but the first until its cursor's event is set; the
    cursors requested go to the list, in the order the requests start."""
    release: dict[str, anyio.Event] = {}
    cursors: list[str] = []

    async def hold(request: httpx.Request, number: int) -> None:
        cursor = request.url.params.get("cursor", "")
        cursors.append(cursor)
        if number > 1:
            await release.setdefault(cursor, anyio.Event()).wait()

    fake.intercept = hold
    return release, cursors


@pytest.mark.parametrize("prefetch", [2, 4])
async def test_ahead_cursors_put_n_requests_in_flight_at_once(prefetch: int) -> None:
    fake = FakeStreams(ahead=16)
    fake.add("s1", 100)
    release, cursors = hold_pages_after_the_first(fake)
    seen: list[dict[str, object]] = []
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, prefetch=prefetch)
        async with pages, anyio.create_task_group() as tg:

            async def consume() -> None:
                async for batch in pages:
                    seen.extend(batch)
                    fake.passed += 1

            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            # The consumer moved past page 1: pages 2..N+1 are requested at once.
            assert fake.in_flight == prefetch
            stats = pages.statistics()
            assert (stats.requests_in_flight, stats.pages_outstanding) == (
                prefetch,
                prefetch,
            )
            assert len(seen) == 10
            for cursor in [str(10 * k) for k in range(1, 10)]:
                release.setdefault(cursor, anyio.Event()).set()
        stats = pages.statistics()
    assert seen == [stream_path("s1", i) for i in range(100)]
    assert cursors == ["", *(str(10 * k) for k in range(1, 10))]  # each once
    assert fake.max_in_flight == stats.max_in_flight == prefetch
    assert fake.max_outstanding == stats.max_outstanding == prefetch
    assert stats.requests == 10


async def test_pages_completing_out_of_order_come_out_in_order() -> None:
    fake = FakeStreams(ahead=16)
    fake.add("s1", 40)
    release, _ = hold_pages_after_the_first(fake)
    seen: list[dict[str, object]] = []
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, prefetch=4)
        async with pages, anyio.create_task_group() as tg:

            async def consume() -> None:
                async for batch in pages:
                    seen.extend(batch)

            tg.start_soon(consume)
            await anyio.wait_all_tasks_blocked()
            assert fake.in_flight == 3
            for cursor in ("30", "20"):  # the later pages answer first
                release.setdefault(cursor, anyio.Event()).set()
                await anyio.wait_all_tasks_blocked()
            assert fake.in_flight == 1
            assert len(seen) == 10  # held back behind page 2
            assert pages.statistics().pages_buffered == 0
            release.setdefault("10", anyio.Event()).set()
    assert seen == [stream_path("s1", i) for i in range(40)]


async def test_early_exit_cancels_every_request_in_flight() -> None:
    fake = FakeStreams(ahead=16)
    fake.add("s1", 100)
    hold_pages_after_the_first(fake)
    async with fake.client() as client:
        pages = PagePrefetcher(client, URL, page_size=10, prefetch=4)
        async with pages:
            first = await anext(pages)
            await anyio.wait_all_tasks_blocked()
            assert fake.in_flight == 3
            assert pages.statistics().requests_in_flight == 3
        assert first == [stream_path("s1", i) for i in range(10)]
        assert (fake.in_flight, fake.cancelled) == (0, 3)
        assert pages.statistics().requests_in_flight == 0
        assert {
            t for t in asyncio.all_tasks() if t is not asyncio.current_task()
        } == set()


async def test_hub_without_ahead_is_read_one_request_at_a_time() -> None:
    fake = FakeStreams(ahead=0)
    fake.add("s1", 100)
    async with (
        fake.client() as client,
        PagePrefetcher(client, URL, page_size=10, prefetch=4) as pages,
    ):
        seen = [p async for batch in pages for p in batch]
        stats = pages.statistics()
    assert seen == [stream_path("s1", i) for i in range(100)]
    assert fake.max_in_flight == stats.max_in_flight == 1
    assert stats.requests == 10


async def test_error_in_a_later_page_comes_after_the_pages_before_it() -> None:
    fake = FakeStreams(ahead=16)
    fake.add("s1", 50)

    async def fail_third(request: httpx.Request, number: int) -> httpx.Response | None:
        if request.url.params.get("cursor") == "20":
            return httpx.Response(200, json={"results": "nope"})
        return None

    fake.intercept = fail_third
    seen: list[dict[str, object]] = []
    async with (
        fake.client() as client,
        PagePrefetcher(client, URL, page_size=10, prefetch=4) as pages,
    ):

        async def read() -> None:
            async for batch in pages:
                seen.extend(batch)

        with pytest.raises(HubProtocolError, match="'results'"):
            await read()
    assert seen == [stream_path("s1", i) for i in range(20)]


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
        fake.client(sleep=record_sleep, rand=lambda: 0.0) as client,
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
    assert pages.statistics().state == "closed"
    assert "closed" in repr(pages)
    with pytest.raises(UsageError, match="not open"):
        await anext(pages)
