"""The latency model's ``async`` operation waits its 2 ms on whatever loop runs
it (on kernel timers where there are some, else on sleeps), closes what it
opened, and the bare-loop row runs on the runtime's own loop."""

from __future__ import annotations

import os
import time

import anyio
import pytest

from asyncstream import _event_loop
from asyncstream.bench import _filework, _latency_op
from asyncstream.bench._filework import bare_loop_sleeps
from asyncstream.bench._latency_op import OP_SECONDS, TimedOps, kernel_timers
from asyncstream.bench._workload import Workload


async def _shortest_waits(tasks: int, each: int) -> list[float]:
    with TimedOps() as ops:
        return await _waits(ops, tasks, each)


async def _waits(ops: TimedOps, tasks: int, each: int) -> list[float]:
    waits: list[float] = []

    async def worker() -> None:
        for _ in range(each):
            start = time.monotonic()
            assert await ops({"path": "/p"}) == "processed"
            waits.append(time.monotonic() - start)

    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(worker)
    return sorted(waits)[:5]


@pytest.mark.parametrize("timers", ["kernel", "sleeps"])
def test_an_async_operation_never_ends_before_its_two_milliseconds(
    timers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Many tasks waking together on the runtime's loop (uvloop, where installed)
    # is what made its millisecond timers fire early: a lower bound, not a speed.
    if timers == "kernel" and not kernel_timers():
        pytest.skip("no timerfd here (Linux only)")
    if timers == "sleeps":
        monkeypatch.setattr(_latency_op, "_LIBC", None)
    shortest = _event_loop.run(_shortest_waits, 64, 20)
    assert shortest[0] >= OP_SECONDS


@pytest.mark.skipif(not kernel_timers(), reason="no timerfd here (Linux only)")
def test_the_timers_are_reused_and_closed_even_when_an_operation_is_cancelled() -> None:
    ops = TimedOps()

    async def main() -> tuple[list[int], list[int]]:
        with ops:
            await _waits(ops, 8, 5)
            pooled = list(ops._opened)
            with anyio.move_on_after(0.0005):  # cancelled mid-wait
                await ops({"path": "/p"})
            return pooled, list(ops._opened)

    pooled, after_cancel = _event_loop.run(main)
    # A timer per operation in flight (8), not per operation (40); the one the
    # cancelled operation took (its expiry may still come) is never reused.
    assert 1 <= len(pooled) <= 8
    assert len(after_cancel) == len(pooled) - 1
    assert ops._opened == []
    for fd in pooled:
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)


def test_the_bare_loop_row_runs_on_the_runtimes_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loops: list[str] = []
    real = _event_loop.run

    def spied(fn: object, *args: object) -> object:
        loops.append(_event_loop.loop_name())
        return real(fn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_filework._event_loop, "run", spied)
    ticks: list[int] = []
    seconds = bare_loop_sleeps(2)(Workload(4, "t"), ticks.append)

    assert loops == [_event_loop.loop_name()]
    assert ticks == [4]
    assert seconds >= 2 * OP_SECONDS
