"""expand_paths over httpx.MockTransport: order, errors, cleanup, sync, memory."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import tracemalloc
from types import FrameType
from typing import Any

import anyio
import httpx
import pytest

from asyncstream import _portal
from asyncstream._exceptions import (
    ConfigurationError,
    InvalidPathError,
    PathTypeError,
    UsageError,
)
from asyncstream.utils.inputs import expand_paths
from tests.runtime._pager_fakes import (
    HUB_URL,
    FakeStreams,
    main_thread_waits_on_a_future,
    stream_path,
)

# --import-mode=importlib keeps test modules from importing each other.


def expand(fake: Any, paths: list[Any], **options: Any) -> Any:
    return expand_paths(paths, hub_url=HUB_URL, transport=fake.transport(), **options)


async def other_tasks_finish() -> set[asyncio.Task[Any]]:
    """Let finalisers run; return the tasks other than this one still alive."""
    for _ in range(200):
        gc.collect()
        others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        if not others:
            break
        await asyncio.sleep(0.005)
    return others


def stall_page(fake: Any, number: int) -> threading.Event:
    """Make request ``number`` hang until cancelled; the event says it started."""
    started = threading.Event()

    async def intercept(request: httpx.Request, n: int) -> None:
        if n == number:
            started.set()
            await anyio.sleep_forever()

    fake.intercept = intercept
    return started


# -- what comes out --------------------------------------------------------------


async def test_inline_paths_pass_through_normalised_without_a_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    original = {"path": "/b", "size": 3}
    paths = ["/a", original, {"path": "/c", "message": "why"}]
    want = [
        {"path": "/a"},
        {"path": "/b", "size": 3},
        {"path": "/c", "message": ["why"]},
    ]
    assert [p async for p in expand_paths(paths)] == want
    assert await anyio.to_thread.run_sync(lambda: list(expand_paths(paths))) == want
    got = [p async for p in expand_paths(paths)]
    got[1]["size"] = 99
    assert original == {"path": "/b", "size": 3}  # the caller's dicts are copied


async def test_streams_expand_in_place_in_every_usage_form() -> None:
    fake = FakeStreams()
    paths = [
        "/first",
        fake.add("a", 25),
        {"path": "/middle"},
        fake.add("b", 7),
        "/last",
    ]
    want = (
        [{"path": "/first"}]
        + [stream_path("a", i) for i in range(25)]
        + [{"path": "/middle"}]
        + [stream_path("b", i) for i in range(7)]
        + [{"path": "/last"}]
    )
    bare_async = [p async for p in expand(fake, paths, page_size=10)]
    async with expand(fake, paths, page_size=10) as inputs:
        with_async = [p async for p in inputs]

    def sync_forms() -> tuple[list[Any], list[Any]]:
        bare = list(expand(fake, paths, page_size=10))
        with expand(fake, paths, page_size=10) as inputs:
            return bare, list(inputs)

    bare_sync, with_sync = await anyio.to_thread.run_sync(sync_forms)
    assert bare_async == with_async == bare_sync == with_sync == want
    assert await other_tasks_finish() == set()


@pytest.mark.parametrize(
    ("item", "error", "named"),
    [
        (42, PathTypeError, r"paths\[1\]: .*42 of type int"),
        ({"size": 1}, InvalidPathError, r"paths\[1\]: .*'size': 1"),
        ("", InvalidPathError, r"paths\[1\]: path must be a non-empty"),
        (
            {"stream": 7},
            InvalidPathError,
            r"paths\[1\]: stream reference .*'stream': 7",
        ),
        ({"stream": "/s", "count": -1}, InvalidPathError, r"paths\[1\]: .*'count'"),
    ],
)
def test_bad_items_are_named_by_index_and_value(
    item: object, error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        expand_paths(["/ok", item], hub_url=HUB_URL)


def test_paths_must_be_a_list() -> None:
    with pytest.raises(PathTypeError, match="got str"):
        expand_paths("/not/a/list", hub_url=HUB_URL)


def test_a_stream_needs_a_hub_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCSTREAM_HUB_URL", raising=False)
    with pytest.raises(ConfigurationError, match="ASYNCSTREAM_HUB_URL"):
        expand_paths([{"stream": "/api/streams/x/paths/", "count": 1}])


async def test_iterating_twice_is_a_usage_error() -> None:
    inputs = expand_paths(["/a"])
    assert [p async for p in inputs] == [{"path": "/a"}]
    with pytest.raises(UsageError, match=r"already opened|cannot be iterated"):
        _ = [p async for p in inputs]
    assert repr(inputs) == "<ExpandedPaths closed streams=0>"


async def test_sync_and_async_lifecycles_do_not_mix() -> None:
    async with expand_paths(["/a"]) as inputs:
        with pytest.raises(UsageError, match="use aclose"):
            inputs.close()
        with pytest.raises(UsageError, match="cannot be iterated with 'for'"):
            list(inputs)
    with pytest.raises(UsageError, match="already opened"):
        inputs.__enter__()

    def sync_side() -> None:
        with expand_paths(["/a"]) as inputs:
            with pytest.raises(UsageError, match="use close"):
                anyio.from_thread.run(inputs.aclose)
            assert list(inputs) == [{"path": "/a"}]
        inputs.close()  # a second close does nothing

    await anyio.to_thread.run_sync(sync_side)


# -- early exit, consumer errors, close ------------------------------------------


async def test_break_inside_async_with_cancels_the_prefetch() -> None:
    fake = FakeStreams()
    ref = fake.add("a", 100)
    started = stall_page(fake, 2)
    async with expand(fake, [ref], page_size=10) as inputs:
        async for path in inputs:
            assert path == stream_path("a", 0)
            await anyio.to_thread.run_sync(started.wait)
            break
        assert fake.in_flight == 1
        assert "async streams=1 reading=/api/streams/a/paths/ pages=1" in repr(inputs)
    assert (fake.in_flight, fake.cancelled) == (0, 1)
    assert await other_tasks_finish() == set()


async def test_break_in_bare_async_for_leaves_no_task_behind() -> None:
    fake = FakeStreams()
    started = stall_page(fake, 2)
    async for _ in expand(fake, [fake.add("a", 100)], page_size=10):
        await anyio.to_thread.run_sync(started.wait)
        break
    assert await other_tasks_finish() == set()
    assert (fake.in_flight, fake.cancelled) == (0, 1)


async def test_consumer_exception_in_bare_async_for_closes_the_stream() -> None:
    fake = FakeStreams()
    started = stall_page(fake, 2)

    async def consume() -> None:
        async for _ in expand(fake, [fake.add("a", 100)], page_size=10):
            await anyio.to_thread.run_sync(started.wait)
            raise KeyError("consumer failed")

    with pytest.raises(KeyError):
        await consume()
    assert await other_tasks_finish() == set()
    assert (fake.in_flight, fake.cancelled) == (0, 1)


def test_sync_break_cancels_the_loop_side_fetch_before_returning() -> None:
    fake = FakeStreams()
    started = stall_page(fake, 2)
    for _ in expand(fake, [fake.add("a", 100)], page_size=10):
        assert started.wait(5)
        break
    # The generator was closed by the break: the loop side has already unwound.
    assert (fake.in_flight, fake.cancelled) == (0, 1)


def test_sync_hands_over_whole_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStreams()
    crossings = []
    real_call = _portal.call

    def counting_call(fn: Any, *args: Any) -> Any:
        crossings.append(fn)
        return real_call(fn, *args)

    monkeypatch.setattr(_portal, "call", counting_call)
    inline = [f"/inline/{i}" for i in range(250)]
    got = list(expand(fake, [*inline, fake.add("a", 1000)], page_size=100))
    assert len(got) == 1250
    # Three runs of inline paths, ten stream pages and the end; not 1250 paths.
    assert len(crossings) == 14


def test_exception_in_waiting_thread_cancels_the_loop_side_fetch() -> None:
    # What a Celery soft time limit does: a signal raises in the blocked thread.
    class TimeLimit(Exception):
        pass

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise TimeLimit

    fake = FakeStreams()

    async def stall_then_signal(request: httpx.Request, n: int) -> None:
        if n == 2:
            await main_thread_waits_on_a_future()
            os.kill(os.getpid(), signal.SIGALRM)
            await anyio.sleep_forever()

    fake.intercept = stall_then_signal
    previous = signal.signal(signal.SIGALRM, on_alarm)
    seen = []
    # prefetch=1: page 2 is requested only once the consumer waits for it.
    inputs = expand(fake, [fake.add("a", 100)], page_size=10, prefetch=1)
    try:
        with pytest.raises(TimeLimit):
            seen.extend(inputs)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert len(seen) == 10
    assert (fake.in_flight, fake.cancelled) == (0, 1)


# -- memory ----------------------------------------------------------------------


async def _peak_bytes(total: int) -> int:
    fake = FakeStreams()
    ref = fake.add("big", total)
    tracemalloc.start()
    try:
        count = 0
        async with expand(fake, [ref], page_size=100, prefetch=2) as inputs:
            async for _ in inputs:
                count += 1
        assert count == total
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_memory_does_not_grow_with_the_stream() -> None:
    # Warm up imports and bounded caches (urllib's urlsplit cache holds 128 URLs).
    await _peak_bytes(15_000)
    small = await _peak_bytes(2_000)
    large = await _peak_bytes(20_000)
    print(f"tracemalloc peak: 2k paths {small} B, 20k paths {large} B")
    # Measured: ~265 KB and ~405 KB (200k paths: ~490 KB). What the peak still
    # gains is garbage of httpx responses waiting for the cycle collector,
    # not paths: live memory at the end differs by a few KB.
    assert large - small < 256 * 1024
