"""apply_paths hands the status the outcomes of every chunk already done at once,
and a path object that is nothing but its path as the path string."""

from __future__ import annotations

from typing import Any

from asyncstream import AsyncFileActionStatus, apply_paths


class Recording:
    """Wraps an async status and keeps what each add_many was given."""

    def __init__(self, status: Any) -> None:
        self.status = status
        self.batches: list[list[Any]] = []

    async def add(self, key: str, item: Any, message: Any = None) -> None:
        self.batches.append([item])
        await self.status.add(key, item, message=message)

    async def add_many(self, key: str, items: list[Any]) -> None:
        self.batches.append(list(items))
        await self.status.add_many(key, items)


async def at_once(item: dict[str, Any]) -> str:
    return "processed"  # done without a wait: every worker's chunks pile up


async def test_chunks_done_together_reach_the_status_in_one_add_many() -> None:
    names = [f"/p/{i}" for i in range(4000)]
    inner = AsyncFileActionStatus("t", names, 1, None)
    status = Recording(inner)
    applied = apply_paths(at_once, names, status, concurrency=64)

    summary = await applied

    chunks = applied._workers._taken  # type: ignore[union-attr]
    assert summary["processed"] == 4000
    assert len(status.batches) < chunks / 2
    payload = await inner.dump()
    assert [d["path"] for d in payload["status"]["details"]["processed"]] == names


async def test_plain_path_objects_reach_add_many_as_path_strings() -> None:
    paths: list[Any] = ["/a", {"path": "/b"}, {"path": "/c", "size": 3}]
    inner = AsyncFileActionStatus("t", [], 1, None)
    status = Recording(inner)

    await apply_paths(at_once, paths, status)

    assert [item for batch in status.batches for item in batch] == [
        "/a",
        "/b",
        {"path": "/c", "size": 3},
    ]
    payload = await inner.dump()
    assert payload["status"]["details"]["processed"] == [
        {"path": "/a"},
        {"path": "/b"},
        {"path": "/c", "size": 3},
    ]
