"""The latency model's ``async`` operation waits its 2 ms on whatever loop runs
it, and the bare-loop row runs on the runtime's own loop."""

from __future__ import annotations

import time

import anyio
import pytest

from asyncstream import _event_loop
from asyncstream.bench import _filework
from asyncstream.bench._filework import OP_SECONDS, _await_op, bare_loop_sleeps
from asyncstream.bench._workload import Workload


async def _shortest_waits(tasks: int, each: int) -> list[float]:
    waits: list[float] = []

    async def worker() -> None:
        for _ in range(each):
            start = time.monotonic()
            await _await_op({"path": "/p"})
            waits.append(time.monotonic() - start)

    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(worker)
    return sorted(waits)[:5]


def test_an_async_operation_never_ends_before_its_two_milliseconds() -> None:
    # Many tasks waking together on the runtime's loop (uvloop, where installed)
    # is what made its millisecond timers fire early: a lower bound, not a speed.
    shortest = _event_loop.run(_shortest_waits, 64, 20)
    assert shortest[0] >= OP_SECONDS


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
