"""One task of 10,000 results to the SQLite hub: clean, and with one invalid item.

The hub refuses a batch holding a result it cannot store (422 naming it); the
sender takes that result out and posts the rest of the batch again under the
same key (:mod:`asyncstream._batch_split`). These two workloads put a number on
that: the same task, with and without one such result, timed from construction
to the return of ``dump()``. After the timing, each reads the task's results
back from the hub and checks that every valid result is stored exactly once and
that the invalid one, and only it, was reported refused: a fast figure is never
a lost or doubled result.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import httpx

from ..streamstatus import AsyncStreamTaskResults
from ._workload import POOL, POOL_SIZE, QUEUE, Tick, Workload, chunks

__all__ = ["TASK_SIZE", "TASK_WORKLOADS"]

TASK_SIZE: Final = 10_000
# Where in the task the invalid result comes: inside a batch, not at its edge.
BAD_AT: Final = 0.4321
REFUSED_PATH: Final = "/bench/refused-by-the-hub"


def invalid_item() -> dict[str, Any]:
    """A result the client takes and the hub refuses: nested past its 64 levels."""
    value: dict[str, Any] = {"v": 1}
    for _ in range(100):
        value = {"n": value}
    return {"path": REFUSED_PATH, "deep": value}


async def stored_paths(w: Workload) -> list[str]:
    """Every result path the hub stores for the task, duplicates kept."""
    found: list[str] = []
    params: dict[str, Any] = {"page_size": 1000}
    url = f"/api/tasks/{w.taskid}/results/"
    async with httpx.AsyncClient(
        base_url=w.results_url or "", headers=w.headers, timeout=60
    ) as client:
        while True:
            response = await client.get(url, params=params)
            page = response.raise_for_status().json()
            found += [result["path"] for result in page["results"]]
            if page["next"] is None:
                return found
            params["cursor"] = page["next"]


def check_stored(w: Workload, stored: list[str], bad_at: int | None) -> None:
    """Every valid result stored exactly once, nothing else."""
    expected = Counter(POOL[i % POOL_SIZE] for i in range(w.n) if i != bad_at)
    if Counter(stored) != expected:
        missing = sum((expected - Counter(stored)).values())
        extra = sum((Counter(stored) - expected).values())
        raise RuntimeError(
            f"{w.taskid}: {len(stored)} results stored, {missing} missing,"
            f" {extra} extra or doubled"
        )


def check_refused(w: Workload, refused: list[str], bad_at: int | None) -> None:
    """The invalid result, and only it, reported refused."""
    if refused != ([] if bad_at is None else [REFUSED_PATH]):
        raise RuntimeError(f"{w.taskid}: refused {refused!r}")


def run_task(w: Workload, tick: Tick, bad_at: int | None) -> float:
    """``await status.add()`` per result; the one at ``bad_at`` is invalid."""
    bad = invalid_item()

    async def main() -> float:
        start = time.perf_counter()
        status = AsyncStreamTaskResults(
            "bench", w.refs, 1, QUEUE, w.taskid, **w.stream_options()
        )
        async with status:
            for part in chunks(w.n):
                for i in part:
                    # The same comparison in the clean task: the same loop timed.
                    if i == bad_at:
                        await status.add("processed", bad)
                    else:
                        await status.add("processed", POOL[i % POOL_SIZE])
                tick(len(part))
            await status.dump()
        seconds = time.perf_counter() - start
        check_stored(w, await stored_paths(w), bad_at)
        check_refused(w, [r.item["path"] for r in status.report.refused], bad_at)
        return seconds

    return asyncio.run(main())


def task_clean(w: Workload, tick: Tick) -> float:
    """A task of ``n`` valid results, every one stored once."""
    return run_task(w, tick, None)


def task_one_bad(w: Workload, tick: Tick) -> float:
    """The same task with one invalid result: the rest stored once, it reported."""
    return run_task(w, tick, int(w.n * BAD_AT))


TASK_WORKLOADS: dict[str, Callable[[Workload, Tick], float]] = {
    "task_clean": task_clean,
    "task_one_bad": task_one_bad,
}
