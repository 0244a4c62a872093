"""How ``apply_paths`` cuts its input: a buffer and chunks sized for the workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from asyncstream import apply_paths
from asyncstream._path_settings import BUFFER_PATHS, MIN_SHARE
from asyncstream._path_workers import PathWorkers


def _touch(item: dict[str, Any]) -> str:
    return "processed"


def _workers(concurrency: int) -> PathWorkers:
    return PathWorkers(
        _touch, [], is_async=False, concurrency=concurrency, chunk_size=256,
        ordered=True,
    )  # fmt: skip


def test_few_workers_share_the_buffer_in_big_chunks() -> None:
    workers = _workers(4)
    assert workers.buffer_paths == BUFFER_PATHS
    assert workers.chunk_size == 256


def test_many_workers_get_a_buffer_with_room_for_a_full_share_each() -> None:
    # 64 workers of a 1,024-path buffer would get 16 paths per hand-off.
    workers = _workers(64)
    assert workers.chunk_size == MIN_SHARE == 64
    assert workers.buffer_paths == 64 * MIN_SHARE


async def test_paths_in_work_stay_bounded_at_high_concurrency() -> None:
    produced = taken = most = 0

    def inputs() -> Iterator[str]:
        nonlocal produced
        for i in range(100_000):
            produced += 1
            yield f"/data/{i}"

    async for _ in apply_paths(_touch, inputs(), concurrency=64):
        taken += 1
        most = max(most, produced - taken)
    assert taken == 100_000
    assert most <= 4 * 64 * MIN_SHARE, most
