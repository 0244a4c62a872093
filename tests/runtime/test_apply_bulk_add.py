"""apply_paths records a chunk's results with one add_many per run of one state,
in input order, and a path with a message or a changed path object on its own."""

from __future__ import annotations

from typing import Any

from asyncstream import (
    AsyncFileActionStatus,
    FileActionStatus,
    PathOutcome,
    apply_paths,
)
from asyncstream._path_outcomes import ChunkOutcomes, state_runs


def odd_fails(item: dict[str, Any]) -> str | PathOutcome:
    n = int(item["path"].rsplit("/", 1)[1])
    if n % 100 == 99:
        return PathOutcome("failures", item, message="ninety-nine")
    return "skipped" if n % 10 == 0 else "processed"


class Recording:
    """Wraps a status and records the calls apply_paths makes."""

    def __init__(self, status: Any) -> None:
        self.status = status
        self.calls: list[tuple[str, str, int]] = []

    def add(self, key: str, item: Any, message: Any = None) -> None:
        self.calls.append(("add", key, 1))
        self.status.add(key, item, message=message)

    def add_many(self, key: str, items: list[Any]) -> None:
        self.calls.append(("add_many", key, len(items)))
        self.status.add_many(key, items)


class AsyncRecording(Recording):
    async def add(self, key: str, item: Any, message: Any = None) -> None:  # type: ignore[override]
        self.calls.append(("add", key, 1))
        await self.status.add(key, item, message=message)

    async def add_many(self, key: str, items: list[Any]) -> None:  # type: ignore[override]
        self.calls.append(("add_many", key, len(items)))
        await self.status.add_many(key, items)


def test_runs_keep_order_and_put_outcomes_apart() -> None:
    paths = [{"path": f"/p/{i}"} for i in range(6)]
    message = PathOutcome("failures", paths[3], message="m")
    chunk = ChunkOutcomes(
        paths, ["processed", "processed", "skipped", message, "skipped", "skipped"]
    )

    runs = list(state_runs(chunk))

    assert runs == [
        ("processed", paths[:2]),
        ("skipped", [paths[2]]),
        message,
        ("skipped", paths[4:6]),
    ]


def test_a_stopped_chunk_records_only_what_settled() -> None:
    paths = [{"path": f"/p/{i}"} for i in range(4)]
    assert list(state_runs(ChunkOutcomes(paths, ["processed"]))) == [
        ("processed", paths[:1])
    ]


def test_sync_status_gets_one_add_many_per_run() -> None:
    names = [f"/p/{i}" for i in range(1000)]
    inner = FileActionStatus("t", names, 1, None)
    status = Recording(inner)

    summary = apply_paths(odd_fails, names, status, chunk_size=250).run()

    assert summary == {
        "processed": 890,
        "skipped": 100,
        "aborted": 0,
        "failures": 10,
        "inprogress": 0,
    }
    singles = [c for c in status.calls if c[0] == "add"]
    assert singles == [("add", "failures", 1)] * 10  # the outcomes with a message
    bulk = [c for c in status.calls if c[0] == "add_many"]
    assert sum(n for _, _, n in bulk) == 990
    assert len(bulk) < 990 // 4  # runs, not a call per path
    payload = inner.dump()
    assert payload["status"]["summary"] == summary
    assert [d["path"] for d in payload["status"]["details"]["failures"]] == [
        f"/p/{i}" for i in range(99, 1000, 100)
    ]


async def test_async_status_gets_one_add_many_per_run() -> None:
    names = [f"/p/{i}" for i in range(1000)]
    inner = AsyncFileActionStatus("t", names, 1, None)
    status = AsyncRecording(inner)

    summary = await apply_paths(odd_fails, names, status, chunk_size=250)

    assert summary["processed"] == 890
    assert summary["failures"] == 10
    assert sum(n for kind, _, n in status.calls if kind == "add_many") == 990
    assert len(status.calls) < 990 // 4 + 10
    payload = await inner.dump()
    assert payload["status"]["summary"] == summary
    skipped = [d["path"] for d in payload["status"]["details"]["skipped"]]
    assert skipped == [f"/p/{i}" for i in range(0, 1000, 10)]
