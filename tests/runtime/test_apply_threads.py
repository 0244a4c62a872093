"""apply_paths' worker threads take their chunks themselves: one hand-off per thread
for the whole run, and a failure anywhere stops every thread at once."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
import pytest

from asyncstream import AppliedPaths, InvalidStateError, apply_paths
from asyncstream._path_handoff import SharedPathBuffer

WAIT = 10.0  # seconds a thread holds a path it was not told to let go of


def _touch(item: dict[str, Any]) -> str:
    return "processed"


def _holding(work: list[AppliedPaths], started: list[str]) -> Any:
    """A per-path function for two threads: the first path fails once both
    threads have a path; the other holds its path until the engine stops."""
    both = threading.Barrier(2, timeout=WAIT)

    def hold(item: dict[str, Any]) -> str:
        started.append(item["path"])
        both.wait()
        if item["path"] == "/p/0":
            return "no such state"  # the run stops with InvalidStateError
        workers = work[0]._workers
        assert workers is not None
        workers._stop.wait(2 * WAIT)
        return "processed"

    return hold


async def test_each_thread_is_handed_work_once_for_the_whole_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hand_offs = 0
    real = anyio.to_thread.run_sync

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal hand_offs
        hand_offs += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    names = [f"/p/{i}" for i in range(5000)]
    summary = await apply_paths(_touch, names, concurrency=4, chunk_size=8)

    assert summary["processed"] == 5000
    assert hand_offs <= 4  # a hand-off per chunk would be 625 or more


async def test_a_thread_that_fails_stops_the_others_mid_path() -> None:
    work: list[AppliedPaths] = []
    started: list[str] = []
    names = [f"/p/{i}" for i in range(100)]
    work.append(
        apply_paths(_holding(work, started), names, concurrency=2, chunk_size=1)
    )

    # Without the failing thread stopping its peer, the peer would hold its
    # path until the deadline cancels the run.
    with anyio.fail_after(WAIT), pytest.raises(InvalidStateError):
        await work[0]
    assert sorted(started) == ["/p/0", "/p/1"]


async def test_an_input_that_fails_stops_the_threads_at_once() -> None:
    work: list[AppliedPaths] = []
    started: list[str] = []
    both = threading.Barrier(3, timeout=WAIT)

    def hold(item: dict[str, Any]) -> str:
        started.append(item["path"])
        both.wait()
        assert work[0]._workers is not None
        work[0]._workers._stop.wait(2 * WAIT)
        return "processed"

    async def inputs() -> AsyncIterator[str]:
        yield "/p/1"
        yield "/p/2"
        await anyio.to_thread.run_sync(both.wait)  # both threads hold a path
        raise OSError("the input broke")

    work.append(apply_paths(hold, inputs(), concurrency=2, chunk_size=1))
    with anyio.fail_after(WAIT), pytest.raises(OSError, match="the input broke"):
        await work[0]
    assert sorted(started) == ["/p/1", "/p/2"]


def _wait_until_idle(buffer: SharedPathBuffer) -> None:
    deadline = time.monotonic() + WAIT
    while buffer._idle != 1:
        assert time.monotonic() < deadline, "the thread never waited"
        time.sleep(0.001)


def _burst(buffer: SharedPathBuffer, n: int) -> None:
    for i in range(n):
        assert buffer.put_nowait({"path": f"/p/{i}"})
        # Lets a thread woken by this path run, yet the feed's task does not
        # pause: the thread must wait for the rest of the burst.
        time.sleep(0.005)


async def test_a_waiting_thread_takes_a_burst_of_paths_as_one_chunk() -> None:
    buffer = SharedPathBuffer(100, credits=4, chunk_size=50, share_of=1)
    taken: list[Any] = []

    async def take() -> None:
        taken.append(await anyio.to_thread.run_sync(buffer.take))

    async with anyio.create_task_group() as group:
        group.start_soon(take)
        await anyio.to_thread.run_sync(_wait_until_idle, buffer)
        _burst(buffer, 10)

    ((seq, chunk),) = taken
    assert seq == 0
    assert [item["path"] for item in chunk] == [f"/p/{i}" for i in range(10)]
