"""Where undelivered results go, held line by line (what mutation testing found loose).

Each test here holds a line that carries "nothing lost: undelivered batches are
spooled once": the sync shim's abort spools what its thread still buffers, the
spool lands in the configured folder (or a documented default), and only a 409
answer to a completion is read as a list of missing batches.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import anyio
import pytest

from asyncstream import (
    AsyncStreamTaskResults,
    BackpressureTimeout,
    StreamTaskResults,
)
from asyncstream._delivery import lost_batches_error
from asyncstream._exceptions import HubRejectedError
from asyncstream._spool import missing_seqs
from asyncstream._spool_dir import ENV_SPOOL_DIR, default_spool_dir
from asyncstream.hub import RunningHub
from tests.guarantees._support import RESULTS, hub_paths, knobs, spools_of


async def test_sync_abort_spools_what_the_thread_still_buffers(
    hub: RunningHub, tmp_path: Path
) -> None:
    # batch_size 10 and a long linger: 25 adds hand two batches over and keep
    # five in the task's thread, where only abort() can still reach them.
    added = [f"/abort/{i}" for i in range(25)]
    status = StreamTaskResults(
        "p", [], 1, "q", "sync-abort", **knobs(hub, spool_dir=str(tmp_path))
    )
    for path in added:
        await anyio.to_thread.run_sync(status.add, "processed", path)

    stored: list[str] = []
    with anyio.fail_after(10):  # the two whole batches reach the hub
        while len(stored) < 20:
            stored = await hub_paths(hub, "sync-abort")
            await anyio.sleep(0.02)
    await anyio.to_thread.run_sync(status.abort)

    (spool,) = spools_of(tmp_path, "sync-abort")
    assert sorted(spool.paths) == sorted(added[20:])  # the five still buffered
    assert sorted(stored + spool.paths) == sorted(added)  # none lost, none twice
    assert spool.header.get("payload") is None  # aborted: resend won't complete it


async def test_sync_abort_after_an_interrupted_hand_over_spools_it_and_the_rest(
    hub: RunningHub, tmp_path: Path
) -> None:
    # The hub refuses every batch (but the deadline is far): batch 0 fills the
    # budget, so the next hand-over waits for room until add_timeout and the
    # add() raises. That hand-over is still the thread's; abort() must spool it
    # together with what was buffered after it, and whatever the core holds.
    hub.faults.fail_next(10_000, status=503, retry_after=0.05, path_prefix=RESULTS)
    options = knobs(
        hub,
        max_pending_items=10,
        max_inflight_batches=1,
        add_timeout=0.3,
        spool_dir=str(tmp_path),
    )
    status = StreamTaskResults("p", [], 1, "q", "sync-interrupted", **options)
    recorded: list[str] = []
    with anyio.fail_after(20):
        for i in range(40):
            try:
                await anyio.to_thread.run_sync(status.add, "processed", f"/int/{i}")
            except BackpressureTimeout:
                break
            recorded.append(f"/int/{i}")
    assert 10 < len(recorded) < 40  # the hand-over after the first batch timed out
    await anyio.to_thread.run_sync(status.abort)
    hub.faults.reset()

    (spool,) = spools_of(tmp_path, "sync-interrupted")
    assert sorted(spool.paths) == sorted(recorded)  # none lost, none twice
    assert await hub_paths(hub, "sync-interrupted") == []


async def test_sync_close_with_a_full_budget_spools_the_buffer_without_waiting(
    hub: RunningHub, tmp_path: Path
) -> None:
    # Batch 0 fills the budget at a hub that refuses everything; five more wait
    # in the thread. close() takes them over the budget (it must not wait for
    # room, nor give up after add_timeout) and spools all fifteen.
    hub.faults.fail_next(10_000, status=503, retry_after=0.05, path_prefix=RESULTS)
    options = knobs(
        hub,
        max_pending_items=10,
        add_timeout=0.2,
        delivery_timeout=1.0,
        spool_dir=str(tmp_path),
    )
    status = StreamTaskResults("p", [], 1, "q", "sync-close-full", **options)
    added = [f"/close/{i}" for i in range(15)]
    for path in added:
        await anyio.to_thread.run_sync(status.add, "processed", path)
    with anyio.fail_after(20):
        await anyio.to_thread.run_sync(status.close)
    hub.faults.reset()

    (spool,) = spools_of(tmp_path, "sync-close-full")
    assert sorted(spool.paths) == sorted(added)
    assert await hub_paths(hub, "sync-close-full") == []


def test_the_spool_folder_is_the_configured_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_SPOOL_DIR, str(tmp_path / "configured"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_spool_dir() == tmp_path / "configured"


def test_the_default_spool_folder_is_in_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_SPOOL_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_spool_dir() == tmp_path / "asyncstream" / "spool"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".cache").mkdir(parents=True)
    assert default_spool_dir() == tmp_path / "home" / ".cache" / "asyncstream" / "spool"


def test_without_a_writable_cache_the_spool_folder_is_per_user_in_tmp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_SPOOL_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-such-cache"))
    expected = Path(tempfile.gettempdir()) / f"asyncstream-spool-{os.getuid()}"
    assert default_spool_dir() == expected

    if os.getuid() != 0:  # root writes anywhere: the access check cannot refuse
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        monkeypatch.setenv("XDG_CACHE_HOME", str(read_only))
        assert default_spool_dir() == expected


def test_only_a_409_to_a_completion_lists_missing_batches() -> None:
    detail = {"missing": [3, 5, "x"]}
    conflict = HubRejectedError("conflict", status_code=409, detail=detail)
    assert missing_seqs(conflict) == [3, 5]
    for status in (400, 404, 422):
        other = HubRejectedError("refused", status_code=status, detail=detail)
        assert missing_seqs(other) == []
    assert missing_seqs(HubRejectedError("x", status_code=409, detail=["3"])) == []
    no_list = HubRejectedError("x", status_code=409, detail={"missing": 3})
    assert missing_seqs(no_list) == []


def test_a_completion_refused_for_lost_batches_names_the_task_and_the_batches() -> None:
    refused = HubRejectedError("conflict", status_code=409, detail={"missing": [2, 7]})
    error = lost_batches_error("task-9", refused)
    assert error is not None
    assert str(error) == (
        "task 'task-9': the hub acknowledged but no longer holds batches [2, 7];"
        " they cannot be re-sent from here"
    )
    assert error.undelivered_seqs == (2, 7)
    assert lost_batches_error("task-9", HubRejectedError("x", status_code=422)) is None


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("taskid", "name"),
    [("../escape me", "_escape_me.jsonl"), ("...", "task.jsonl"), ("a/b", "a_b.jsonl")],
)
async def test_a_spool_file_stays_in_its_folder_whatever_the_task_id(
    hub: RunningHub, tmp_path: Path, taskid: str, name: str
) -> None:
    folder = tmp_path / "spool"
    status = AsyncStreamTaskResults(
        "p", [], 1, "q", taskid, **knobs(hub, spool_dir=str(folder))
    )
    hub.faults.fail_next(10_000, status=503, retry_after=0.05, path_prefix=RESULTS)
    await status.add("processed", "/named/0")
    await status.aabort()
    hub.faults.reset()
    assert _names(folder) == [name]
    assert _names(tmp_path) == ["spool"]  # nothing escaped the folder


async def test_sync_close_after_a_refusal_it_did_not_see_spools_every_result(
    hub: RunningHub, tmp_path: Path
) -> None:
    # Batch 0 is refused for good while five more results wait in the task's
    # thread (batches of 10, a long linger); the task then fails with its own
    # error, before any hand-over told it of the refusal. close() must spool
    # the five with batch 0, and raise nothing of its own: in a failed task's
    # 'with' block the task's error is the one to propagate.
    hub.faults.fail_next(10_000, status=403, path_prefix=RESULTS)
    options = knobs(hub, delivery_timeout=5.0, spool_dir=str(tmp_path))
    status = StreamTaskResults("p", [], 1, "q", "sync-close-refused", **options)
    added = [f"/refused/{i}" for i in range(15)]
    for path in added[:11]:  # the eleventh add hands batch 0 over
        await anyio.to_thread.run_sync(status.add, "processed", path)
    with anyio.fail_after(10):  # the hub has refused batch 0
        while status.statistics().last_error is None:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    for path in added[11:]:
        await anyio.to_thread.run_sync(status.add, "processed", path)
    with anyio.fail_after(20):
        await anyio.to_thread.run_sync(status.close)
    hub.faults.reset()

    spooled = [p for s in spools_of(tmp_path, "sync-close-refused") for p in s.paths]
    assert sorted(spooled) == sorted(added)  # none lost, none twice
    assert await hub_paths(hub, "sync-close-refused") == []
