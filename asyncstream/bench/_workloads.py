"""The runtime under measurement, and the baselines a user would otherwise write.

Every workload adds the state ``processed`` for each path, the cheapest possible
task body, so what is timed is the runtime: validation, batching, encoding, the
thread hop of the sync shim, page reading. Timing covers construction to the
return of ``dump()`` (every batch acknowledged, the task completed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from .. import _portal
from .._hub_client import encode_json
from ..status import FileActionStatus
from ..streamstatus import AsyncStreamTaskResults, StreamTaskResults
from ..utils.inputs import expand_paths
from ._ceilings import raw_get, raw_post
from ._workload import (
    POOL,
    POOL_SIZE,
    QUEUE,
    Tick,
    Workload,
    check_delivered,
    chunks,
)

MASK = POOL_SIZE - 1


def _async_status(w: Workload) -> AsyncStreamTaskResults:
    return AsyncStreamTaskResults(
        "bench", w.refs, 1, QUEUE, w.taskid, **w.stream_options()
    )


async def _finish_async(w: Workload, status: AsyncStreamTaskResults) -> None:
    await status.dump()
    check_delivered(w, status.statistics().items_acked)


def _finish_sync(w: Workload, status: StreamTaskResults) -> None:
    status.dump()
    check_delivered(w, status.statistics().items_acked)


def sender_async(w: Workload, tick: Tick) -> float:
    """``await status.add()`` per path on an :class:`AsyncStreamTaskResults`."""

    async def main() -> float:
        start = time.perf_counter()
        async with _async_status(w) as status:
            for part in chunks(w.n):
                for i in part:
                    await status.add("processed", POOL[i & MASK])
                tick(len(part))
            await _finish_async(w, status)
        return time.perf_counter() - start

    return asyncio.run(main())


def sender_sync(w: Workload, tick: Tick) -> float:
    """``status.add()`` per path on a :class:`StreamTaskResults` in a plain thread."""
    start = time.perf_counter()
    status = StreamTaskResults(
        "bench", w.refs, 1, QUEUE, w.taskid, **w.stream_options()
    )
    for part in chunks(w.n):
        for i in part:
            status.add("processed", POOL[i & MASK])
        tick(len(part))
    _finish_sync(w, status)
    return time.perf_counter() - start


def _held(part: range) -> list[str]:
    # The results a task already holds as a list: a slice of the pool (chunks
    # start at multiples of CHUNK, which divides the pool's size).
    start = part.start & MASK
    return POOL[start : start + len(part)]


def sender_many_async(w: Workload, tick: Tick) -> float:
    """``await status.add_many()`` per chunk of paths on an async status."""

    async def main() -> float:
        start = time.perf_counter()
        async with _async_status(w) as status:
            for part in chunks(w.n):
                await status.add_many("processed", _held(part))
                tick(len(part))
            await _finish_async(w, status)
        return time.perf_counter() - start

    return asyncio.run(main())


def sender_many_sync(w: Workload, tick: Tick) -> float:
    """``status.add_many()`` per chunk of paths from a plain thread."""
    start = time.perf_counter()
    status = StreamTaskResults(
        "bench", w.refs, 1, QUEUE, w.taskid, **w.stream_options()
    )
    for part in chunks(w.n):
        status.add_many("processed", _held(part))
        tick(len(part))
    _finish_sync(w, status)
    return time.perf_counter() - start


def expand(w: Workload, tick: Tick) -> float:
    """``async for`` over ``expand_paths`` of the stream references."""

    async def main() -> float:
        read = 0
        start = time.perf_counter()
        inputs = expand_paths(
            w.refs,
            hub_url=w.streams_url,
            api_key=w.api_key,
            page_size=w.page_size,
            **_prefetch(w),
        )
        async with inputs:
            async for _ in inputs:
                read += 1
                if not read % 4096:
                    tick(4096)
        seconds = time.perf_counter() - start
        check_delivered(w, read)
        return seconds

    return asyncio.run(main())


def _prefetch(w: Workload) -> dict[str, Any]:
    # Unset (None) reads with the adaptive depth, up to the memory budget.
    return {"prefetch": w.prefetch}


def e2e_sync(w: Workload, tick: Tick) -> float:
    """A Celery-style task body: plain ``for`` over inputs, ``add()`` each."""
    start = time.perf_counter()
    status = StreamTaskResults(
        "bench", w.refs, 1, QUEUE, w.taskid, **w.stream_options()
    )
    inputs = expand_paths(w.refs, hub_url=w.streams_url, api_key=w.api_key)
    for read, obj in enumerate(inputs, 1):
        status.add("processed", obj)
        if not read % 4096:
            tick(4096)
    _finish_sync(w, status)
    return time.perf_counter() - start


def e2e_async(w: Workload, tick: Tick) -> float:
    """An ``async def`` task body: ``async for`` over inputs, ``await add()``."""

    async def main() -> float:
        start = time.perf_counter()
        read = 0
        async with (
            expand_paths(w.refs, hub_url=w.streams_url, api_key=w.api_key) as inputs,
            _async_status(w) as status,
        ):
            async for obj in inputs:
                await status.add("processed", obj)
                read += 1
                if not read % 4096:
                    tick(4096)
            await _finish_async(w, status)
        return time.perf_counter() - start

    return asyncio.run(main())


# -- baselines ---------------------------------------------------------------------


def post_per_path(w: Workload, tick: Tick) -> float:
    """The naive port: one blocking POST of a one-result batch per path."""
    url = f"{w.results_url}/api/tasks/{w.taskid}/results/"
    headers = {**w.headers, "Content-Type": "application/json"}
    accepted = 0
    with httpx.Client(headers=headers, timeout=60) as client:
        start = time.perf_counter()
        for part in chunks(w.n):
            for i in part:
                body = {"jobid": 1, "task": "bench", "queue": QUEUE, "seq": i,
                        "items": {"processed": [{"path": POOL[i & MASK]}]}}  # fmt: skip
                key = {"Idempotency-Key": f"{w.taskid}:{i}"}
                response = client.post(url, content=encode_json(body), headers=key)
                accepted += response.raise_for_status().json()["accepted"]
            tick(len(part))
        seconds = time.perf_counter() - start
    check_delivered(w, accepted)
    return seconds


def add_per_call(w: Workload, tick: Tick) -> float:
    """A sync shim that hands every single ``add()`` to the loop thread."""
    start = time.perf_counter()
    core = _async_status(w)
    for part in chunks(w.n):
        for i in part:
            _portal.call(core.add, "processed", POOL[i & MASK])
        tick(len(part))
    _portal.call(_finish_async, w, core)
    return time.perf_counter() - start


def file_action_status(w: Workload, tick: Tick) -> float:
    """Everything held in memory until ``dump()``: the seed's non-streaming class."""
    start = time.perf_counter()
    status = FileActionStatus("bench", w.refs, 1, QUEUE)
    for part in chunks(w.n):
        for i in part:
            status.add("processed", POOL[i & MASK])
        tick(len(part))
    payload = status.dump()
    seconds = time.perf_counter() - start
    check_delivered(w, payload["status"]["summary"]["processed"])
    return seconds


WORKLOADS: dict[str, Callable[[Workload, Tick], float]] = {
    "raw_post": raw_post,
    "raw_get": raw_get,
    "sender_async": sender_async,
    "sender_sync": sender_sync,
    "sender_many_async": sender_many_async,
    "sender_many_sync": sender_many_sync,
    "expand": expand,
    "e2e_sync": e2e_sync,
    "e2e_async": e2e_async,
    "post_per_path": post_per_path,
    "add_per_call": add_per_call,
    "file_action_status": file_action_status,
}

# The file-work rows (``asyncstream bench --files``) run in the same children.
from ._filework import FILE_WORKLOADS  # noqa: E402

WORKLOADS.update(FILE_WORKLOADS)

# One task of 10k results, clean and with one invalid item (the SQLite rows).
from ._one_task import TASK_WORKLOADS  # noqa: E402

WORKLOADS.update(TASK_WORKLOADS)
