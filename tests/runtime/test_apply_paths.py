"""apply_paths on real files: chunked threads, bounded async concurrency, outcomes,
bounded memory, and workers that stop when the task stops."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import asyncstream._path_workers as path_workers
from asyncstream import (
    AsyncFileActionStatus,
    FileActionStatus,
    InvalidInputError,
    InvalidStateError,
    PathOutcome,
    UsageError,
    apply_paths,
)

WAIT = 10.0  # seconds a thread waits for a peer before the test fails


def files(root: Path, n: int) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        path = root / f"f{i:05d}"
        path.write_bytes(b"x" * (i % 7))
        names.append(str(path))
    return names


def remaining(root: Path) -> int:
    return len(os.listdir(root))


def unlink(item: dict[str, Any]) -> str:
    os.unlink(item["path"])
    return "processed"


class Tracker:
    """Counts calls of a blocking per-path function that is started and ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.in_flight = 0
        self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.started += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)

    def __exit__(self, *exc_info: object) -> None:
        with self.lock:
            self.in_flight -= 1


async def test_blocking_function_acts_on_every_file_and_adds_each_state(
    tmp_path: Path,
) -> None:
    names = files(tmp_path / "tree", 600)
    status = AsyncFileActionStatus("delete", names, 1, None)

    summary = await apply_paths(unlink, [*names, str(tmp_path / "absent")], status)

    assert summary["processed"] == 600
    assert summary["failures"] == 1
    assert remaining(tmp_path / "tree") == 0
    payload = await status.dump()
    assert payload["status"]["summary"]["processed"] == 600
    (failure,) = payload["status"]["details"]["failures"]
    assert failure["path"] == str(tmp_path / "absent")
    assert "No such file or directory" in failure["message"][0]


async def test_blocking_function_gets_chunks_of_paths_per_thread_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = files(tmp_path, 2000)
    hops: list[int] = []
    real = path_workers.run_chunk

    def counted(fn: Any, chunk: list[Any], stop: threading.Event) -> Any:
        hops.append(len(chunk))
        return real(fn, chunk, stop)

    monkeypatch.setattr(path_workers, "run_chunk", counted)
    summary = await apply_paths(unlink, names, concurrency=4)

    assert summary["processed"] == 2000
    assert sum(hops) == 2000
    assert len(hops) <= 2000 // 50, hops  # one hop per path would be 2000


async def test_outcome_returned_updates_the_path_object(tmp_path: Path) -> None:
    names = files(tmp_path, 20)

    def size(item: dict[str, Any]) -> PathOutcome:
        return PathOutcome("processed", {**item, "size": os.stat(item["path"]).st_size})

    status = FileActionStatus("sizes", names, 1, None)
    await apply_paths(size, names, status, ordered=True)

    details = status.dump()["status"]["details"]["processed"]
    assert [d["path"] for d in details] == names
    assert [d["size"] for d in details] == [i % 7 for i in range(20)]


async def test_return_value_that_is_no_state_stops_with_its_name(
    tmp_path: Path,
) -> None:
    def wrong(item: dict[str, Any]) -> Any:
        return "done"

    def nothing(item: dict[str, Any]) -> Any:
        return None

    with pytest.raises(InvalidStateError, match="'done'"):
        await apply_paths(wrong, files(tmp_path, 3))
    with pytest.raises(InvalidStateError, match="returned None"):
        await apply_paths(nothing, files(tmp_path, 3))


@pytest.mark.parametrize("sync", [True, False])
async def test_a_misspelt_state_names_the_function_and_the_path(sync: bool) -> None:
    def misspelt(item: dict[str, Any]) -> Any:
        return "procesed"

    async def misspelt_in_an_outcome(item: dict[str, Any]) -> Any:
        return PathOutcome("deleted", item)  # type: ignore[arg-type]

    fn = misspelt if sync else misspelt_in_an_outcome
    with pytest.raises(InvalidStateError) as caught:
        await apply_paths(fn, ["/data/a", "/data/b"])
    message = str(caught.value)
    assert fn.__qualname__ in message
    assert "'/data/a'" in message
    assert "expected one of processed, skipped" in message


async def test_async_function_runs_exactly_concurrency_paths_at_once() -> None:
    concurrency, active, most = 8, 0, 0
    full = anyio.Event()

    async def visit(item: dict[str, Any]) -> str:
        nonlocal active, most
        active += 1
        most = max(most, active)
        if active == concurrency:
            full.set()
        await full.wait()  # only returns once `concurrency` paths are in flight
        active -= 1
        return "skipped"

    names = [f"/data/{i}" for i in range(100)]
    with anyio.fail_after(WAIT):
        summary = await apply_paths(visit, names, concurrency=concurrency)
    assert summary["skipped"] == 100
    assert most == concurrency


async def test_blocking_function_runs_in_concurrency_threads_at_once(
    tmp_path: Path,
) -> None:
    concurrency = 4
    barrier = threading.Barrier(concurrency, timeout=WAIT)
    seen: set[int] = set()

    def visit(item: dict[str, Any]) -> str:
        if len(seen) < concurrency:
            seen.add(threading.get_ident())
            barrier.wait()  # breaks (fails the test) unless 4 threads meet here
        return "processed"

    summary = await apply_paths(visit, files(tmp_path, 40), concurrency=concurrency)
    assert summary["processed"] == 40
    assert len(seen) == concurrency


async def test_outcomes_keep_input_order_unless_told_otherwise() -> None:
    async def uneven(item: dict[str, Any]) -> str:
        for _ in range(int(item["path"].rsplit("/", 1)[1]) % 5):
            await anyio.lowlevel.checkpoint()
        return "processed"

    names = [f"/data/{i}" for i in range(300)]
    ordered = [o.path["path"] async for o in apply_paths(uneven, names, concurrency=4)]
    completed = [
        o.path["path"]
        async for o in apply_paths(uneven, names, concurrency=4, ordered=False)
    ]
    assert ordered == names
    assert sorted(completed) == sorted(names)
    assert completed != names  # the later cheap ones overtake the dear ones


async def test_paths_in_work_stay_bounded_for_a_long_input() -> None:
    produced = taken = most = 0

    def inputs() -> Iterator[str]:
        nonlocal produced
        for i in range(200_000):
            produced += 1
            yield f"/data/{i}"

    def touch(item: dict[str, Any]) -> str:
        return "processed"

    async for _ in apply_paths(touch, inputs(), concurrency=16):
        taken += 1
        most = max(most, produced - taken)
    assert taken == 200_000
    assert most <= 4 * path_workers.BUFFER_PATHS, most


def test_sync_loop_that_breaks_leaves_no_thread_working(tmp_path: Path) -> None:
    names = files(tmp_path, 3000)
    track = Tracker()

    def slow_unlink(item: dict[str, Any]) -> str:
        with track:
            return unlink(item)

    work = apply_paths(slow_unlink, names, concurrency=4, chunk_size=8)
    for seen, outcome in enumerate(work, 1):
        assert outcome.state == "processed"
        if seen == 50:
            break
    assert track.in_flight == 0
    started = track.started
    assert started < 3000
    assert remaining(tmp_path) == 3000 - started


async def test_exception_in_the_task_body_stops_the_workers(tmp_path: Path) -> None:
    names = files(tmp_path, 3000)
    track = Tracker()

    def tracked(item: dict[str, Any]) -> str:
        with track:
            return unlink(item)

    async def task_body() -> None:
        async with apply_paths(tracked, names, chunk_size=8) as work:
            async for _ in work:
                raise KeyError("task body")

    with pytest.raises(KeyError, match="task body"):
        await task_body()
    assert track.in_flight == 0
    assert track.started < 3000


async def test_cancelling_the_task_stops_the_workers_mid_chunk(tmp_path: Path) -> None:
    names = files(tmp_path, 500)
    track = Tracker()
    first = threading.Event()
    work = apply_paths(lambda item: held(item), names, concurrency=2)

    def held(item: dict[str, Any]) -> str:
        with track:
            first.set()
            # Hold the path until the engine is told to stop: each thread must
            # then return without starting the next path of its chunk.
            assert work._workers is not None
            work._workers._stop.wait(WAIT)
            return unlink(item)

    async def task_body() -> None:
        await work

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(task_body)
            await anyio.to_thread.run_sync(first.wait, WAIT)
            scope.cancel()
    assert scope.cancelled_caught
    assert track.in_flight == 0
    assert 1 <= track.started <= 2  # one path per thread, then they stopped
    assert remaining(tmp_path) == 500 - track.started


def test_sync_face_refuses_an_async_status() -> None:
    status = AsyncFileActionStatus("t", [], 1, None)
    with pytest.raises(UsageError, match="coroutine"):
        apply_paths(unlink, ["/x"], status).run()


async def test_sync_face_on_the_event_loop_thread_is_refused() -> None:
    from asyncstream import _portal

    def on_loop() -> None:
        apply_paths(unlink, ["/x"]).run()

    async def call() -> None:
        on_loop()

    with pytest.raises(UsageError, match="deadlock"):
        await anyio.to_thread.run_sync(_portal.call, call)


async def test_applied_paths_run_once() -> None:
    work = apply_paths(unlink, [])
    await work
    with pytest.raises(UsageError, match="runs once"):
        await work


def test_concurrency_comes_from_the_setting_and_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCSTREAM_PATH_CONCURRENCY", "64")
    work = apply_paths(unlink, [])
    assert work.run() == work.summary
    assert "concurrency=64" in repr(work)
    monkeypatch.setenv("ASYNCSTREAM_PATH_CONCURRENCY", "many")
    with pytest.raises(InvalidInputError, match="ASYNCSTREAM_PATH_CONCURRENCY"):
        apply_paths(unlink, [])
    monkeypatch.delenv("ASYNCSTREAM_PATH_CONCURRENCY")
    with pytest.raises(InvalidInputError, match="concurrency must be"):
        apply_paths(unlink, [], concurrency=0)
    with pytest.raises(InvalidInputError, match="chunk_size must be"):
        apply_paths(unlink, [], chunk_size=-1)


def test_local_disk_default_is_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # More threads only contend on a local disk, for the GIL after each system
    # call (see _path_settings).
    monkeypatch.delenv("ASYNCSTREAM_PATH_CONCURRENCY", raising=False)
    work = apply_paths(unlink, [])
    assert work.run() == work.summary
    assert "concurrency=1" in repr(work)
