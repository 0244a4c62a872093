"""A run of ``apply_paths`` that stops early still reports every path worked on.

Each test deletes real files and stops the run half-way (a cancellation, an
interrupt of the sync face, a hub that stops answering), then counts: every file
deleted is a result at the hub or in the spool, once; or, for the in-memory
status, a result in it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asyncstream import (
    AsyncStreamTaskResults,
    DeliveryError,
    FileActionStatus,
    StreamTaskResults,
    _portal,
    apply_paths,
)
from asyncstream.hub import RunningHub, running_hub
from tests.guarantees._support import hub_paths

FILES = 3000


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite") as running:
        yield running


def make_files(root: Path, n: int = FILES) -> list[str]:
    root.mkdir()
    for i in range(n):
        (root / f"f{i:05d}").write_bytes(b"")
    return [str(root / f"f{i:05d}") for i in range(n)]


def deleted(paths: list[str]) -> set[str]:
    return {p for p in paths if not os.path.exists(p)}


class Deleting:
    """Delete each path; count them, so that a test stops the run half-way."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, item: dict[str, Any]) -> str:
        os.unlink(item["path"])
        self.count += 1
        time.sleep(0.0002)  # a file server's pace: the stop comes mid-run
        return "processed"


class DeletingAsync(Deleting):
    async def __call__(self, item: dict[str, Any]) -> str:  # type: ignore[override]
        # The await first: a path cancelled there was not worked on (one
        # cancelled after its work and before its return has no outcome).
        await anyio.lowlevel.checkpoint()
        os.unlink(item["path"])
        self.count += 1
        return "processed"


KINDS = pytest.mark.parametrize(
    "kind", [Deleting, DeletingAsync], ids=["threads", "async"]
)


async def stop_when(fn: Deleting, scope: anyio.CancelScope, count: int) -> None:
    while fn.count < count:  # noqa: ASYNC110 (a count kept by worker threads)
        await anyio.sleep(0.001)
    scope.cancel()


def spooled_paths(folder: Path) -> list[str]:
    found: list[str] = []
    for spool in sorted(folder.glob("*.jsonl")):
        for line in spool.read_text().splitlines()[1:]:
            body = json.loads(json.loads(line)["body"])
            for objs in body["items"].values():
                found += [o if isinstance(o, str) else o["path"] for o in objs]
    return found


def options(hub: RunningHub, spool: Path, **more: Any) -> dict[str, Any]:
    # Small batches and a small budget: adds wait for the hub, so that the
    # stop also comes while the status is taking a chunk's outcomes.
    return {
        "hub_url": hub.url,
        "api_key": hub.api_key,
        "batch_size": 50,
        "max_pending_items": 200,
        "spool_dir": str(spool),
        "delivery_timeout": 1.0,
    } | more


def assert_each_deleted_file_reported_once(
    paths: list[str], reported: list[str]
) -> None:
    gone = deleted(paths)
    assert 0 < len(gone) < len(paths), "the run was meant to stop half-way"
    assert len(reported) == len(set(reported)), "a result was reported twice"
    assert set(reported) == gone


@KINDS
async def test_a_cancelled_run_reports_every_file_it_deleted(
    hub: RunningHub, tmp_path: Path, kind: type[Deleting]
) -> None:
    paths = make_files(tmp_path / "tree")
    spool = tmp_path / "spool"
    status = AsyncStreamTaskResults(
        "delete", [], 1, "q", "cancelled", **options(hub, spool)
    )
    fn = kind()
    async with status:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(stop_when, fn, scope, FILES // 3)
                await apply_paths(fn, paths, status, concurrency=4)
        assert scope.cancelled_caught
        await status.aclose()  # as a failed task's status is closed
    reported = await hub_paths(hub, "cancelled") + spooled_paths(spool)
    assert_each_deleted_file_reported_once(paths, reported)


async def test_an_interrupted_sync_run_reports_every_file_it_deleted(
    hub: RunningHub, tmp_path: Path
) -> None:
    paths = make_files(tmp_path / "tree")
    spool = tmp_path / "spool"
    outcome: list[BaseException] = []

    def task_body() -> None:
        status = StreamTaskResults(
            "delete", [], 1, "q", "interrupted", **options(hub, spool)
        )
        try:
            apply_paths(fn, paths, status, concurrency=4).run()
        except BaseException as exc:
            outcome.append(exc)
            status.close()

    def interrupt() -> None:
        thread = threading.Thread(target=task_body)
        thread.start()
        while fn.count < FILES // 3:
            time.sleep(0.001)
        _portal.interrupt_thread(thread.ident or 0)
        thread.join(5)
        assert not thread.is_alive()

    fn = Deleting()
    await anyio.to_thread.run_sync(interrupt)
    assert isinstance(outcome[0], KeyboardInterrupt)
    reported = await hub_paths(hub, "interrupted") + spooled_paths(spool)
    assert_each_deleted_file_reported_once(paths, reported)


@KINDS
async def test_a_hub_that_stops_answering_leaves_every_deleted_file_reported(
    hub: RunningHub, tmp_path: Path, kind: type[Deleting]
) -> None:
    paths = make_files(tmp_path / "tree")
    spool = tmp_path / "spool"
    taskid = "hub-fails"
    fn = kind()
    failing = threading.Event()

    def failing_soon(item: dict[str, Any]) -> Any:
        if fn.count >= FILES // 3 and not failing.is_set():
            failing.set()  # from here on, every request of the task fails
            hub.faults.fail_next(
                100_000,
                status=503,
                retry_after=0.01,
                path_prefix=f"/api/tasks/{taskid}/",
            )
        return fn(item)

    async def failing_soon_async(item: dict[str, Any]) -> Any:
        return await failing_soon(item)

    work = failing_soon if kind is Deleting else failing_soon_async
    status = AsyncStreamTaskResults("delete", [], 1, "q", taskid, **options(hub, spool))
    with pytest.raises(DeliveryError):
        async with status:
            await apply_paths(work, paths, status, concurrency=4)
    hub.faults.reset()
    reported = await hub_paths(hub, taskid) + spooled_paths(spool)
    assert_each_deleted_file_reported_once(paths, reported)


@KINDS
@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "as-completed"])
async def test_the_in_memory_status_holds_every_file_a_cancelled_run_deleted(
    tmp_path: Path, kind: type[Deleting], ordered: bool
) -> None:
    paths = make_files(tmp_path / "tree")
    status = FileActionStatus("delete", [], 1, "q")
    fn = kind()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(stop_when, fn, scope, FILES // 3)
            await apply_paths(fn, paths, status, concurrency=4, ordered=ordered)
    details = status.dump()["status"]["details"]
    recorded = [obj["path"] for obj in details["processed"]]
    assert_each_deleted_file_reported_once(paths, recorded)


async def test_a_sync_loop_left_early_reports_every_file_it_deleted(
    hub: RunningHub, tmp_path: Path
) -> None:
    paths = make_files(tmp_path / "tree")
    spool = tmp_path / "spool"

    def task_body() -> None:
        status = StreamTaskResults("delete", [], 1, "q", "left", **options(hub, spool))
        for seen, _ in enumerate(apply_paths(Deleting(), paths, status), 1):
            if seen == 500:
                break
        status.dump()

    await anyio.to_thread.run_sync(task_body)
    reported = await hub_paths(hub, "left") + spooled_paths(spool)
    assert_each_deleted_file_reported_once(paths, reported)
