"""The failure paths of streamed results, against the real hub over loopback.

Each test names the guarantee it holds: a failed task's results are delivered or
spooled (never dropped), a task that failed is never completed, a completion the
hub refused stays resendable, the sync shim hands a lingering batch over, the
delivery deadline counts while a batch waits for a send slot, and ``resend``
keeps every batch's original sequence number.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from asyncstream import AsyncStreamTaskResults, DeliveryError, StreamTaskResults
from asyncstream.hub import RunningHub
from tests.guarantees._support import (
    RESULTS,
    hub_paths,
    hub_task,
    knobs,
    resend,
    spools_of,
    wait_until,
)


def paths(prefix: str, n: int) -> list[str]:
    return [f"{prefix}/{i}" for i in range(n)]


class TaskFailed(Exception):
    pass


# -- a task that fails: its results are delivered or spooled, it is not completed


async def test_sync_block_that_raises_delivers_its_results_without_completing(
    hub: RunningHub,
) -> None:
    def task() -> None:
        with StreamTaskResults("p", [], 1, "q", "sync-raises", **knobs(hub)) as s:
            for path in paths("/sync", 25):
                s.add("processed", path)
            raise TaskFailed("the body failed")

    with pytest.raises(TaskFailed):
        await anyio.to_thread.run_sync(task)
    stored = await hub_task(hub, "sync-raises")
    assert stored is not None
    assert stored["state"] == "running"  # closed as failed, never completed
    assert stored["finished"] is None
    assert sorted(await hub_paths(hub, "sync-raises")) == sorted(paths("/sync", 25))


async def test_async_block_that_raises_delivers_its_results_without_completing(
    hub: RunningHub,
) -> None:
    async def task() -> None:
        async with AsyncStreamTaskResults(
            "p", [], 1, "q", "async-raises", **knobs(hub)
        ) as status:
            for path in paths("/async", 25):
                await status.add("processed", path)
            raise TaskFailed("the body failed")

    with pytest.raises(TaskFailed):
        await task()
    stored = await hub_task(hub, "async-raises")
    assert stored is not None
    assert stored["state"] == "running"
    assert sorted(await hub_paths(hub, "async-raises")) == sorted(paths("/async", 25))


async def test_sync_task_failing_while_the_hub_is_down_spools_every_result(
    hub: RunningHub, tmp_path: Path
) -> None:
    hub.faults.fail_next(10_000, status=503, retry_after=0.01, path_prefix=RESULTS)
    options = knobs(hub, delivery_timeout=2.0, spool_dir=str(tmp_path))

    def task() -> None:
        with StreamTaskResults("p", [], 1, "q", "sync-down", **options) as s:
            for path in paths("/down", 25):
                s.add("processed", path)
            raise TaskFailed("the body failed")

    with pytest.raises(TaskFailed):  # the task's own error, not a delivery error
        await anyio.to_thread.run_sync(task)
    (spool,) = spools_of(tmp_path, "sync-down")
    assert sorted(spool.paths) == sorted(paths("/down", 25))
    assert spool.header["payload"] is None  # a failed task is not to be completed
    hub.faults.reset()
    assert await hub_paths(hub, "sync-down") == []


async def test_async_task_failing_while_the_hub_is_down_spools_every_result(
    hub: RunningHub, tmp_path: Path
) -> None:
    hub.faults.fail_next(10_000, status=503, retry_after=0.01, path_prefix=RESULTS)
    options = knobs(hub, delivery_timeout=2.0, spool_dir=str(tmp_path))

    async def task() -> None:
        async with AsyncStreamTaskResults(
            "p", [], 1, "q", "async-down", **options
        ) as status:
            for path in paths("/down", 25):
                await status.add("processed", path)
            raise TaskFailed("the body failed")

    with pytest.raises(TaskFailed):
        await task()
    (spool,) = spools_of(tmp_path, "async-down")
    assert sorted(spool.paths) == sorted(paths("/down", 25))
    assert spool.header["payload"] is None


# -- a completion the hub refuses -------------------------------------------------


async def test_refused_completion_spools_the_payload_and_resend_completes(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "refused-completion"
    hub.faults.fail_next(
        10_000,
        status=503,
        retry_after=0.01,
        path_prefix=f"/api/tasks/{taskid}/complete",
    )
    options = knobs(hub, delivery_timeout=2.0, spool_dir=str(tmp_path))
    status = AsyncStreamTaskResults("p", [], 4, "q", taskid, **options)
    for path in paths("/done", 25):
        await status.add("processed", path)
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    error = info.value
    assert error.undelivered_seqs == ()  # every batch was acknowledged
    assert error.spool_path is not None
    hub.faults.reset()
    (spool,) = spools_of(tmp_path, taskid)
    assert spool.batches == []
    assert spool.header["batches"] == 3
    payload = spool.header["payload"]
    assert payload is not None
    assert payload["status"]["summary"]["processed"] == 25
    before = await hub_task(hub, taskid)
    assert before is not None
    assert before["state"] == "running"

    result = await resend(error.spool_path, hub)
    assert result.exit_code == 0, result.output
    assert "task completed" in result.output
    after = await hub_task(hub, taskid)
    assert after is not None
    assert after["state"] == "completed"
    assert after["payload"] == payload
    assert sorted(await hub_paths(hub, taskid)) == sorted(paths("/done", 25))
    assert not await anyio.Path(error.spool_path).exists()


# -- the sync shim's linger -------------------------------------------------------


async def test_sync_shim_hands_over_a_partial_batch_once_it_is_linger_old(
    hub: RunningHub,
) -> None:
    now = [0.0]
    options = knobs(hub, batch_size=100, linger=1.0, clock=lambda: now[0])

    def task() -> tuple[int, int, int]:
        status = StreamTaskResults("p", [], 1, "q", "linger", **options)
        for path in paths("/old", 3):
            status.add("processed", path)
        cut_young = status.statistics().batches_cut
        now[0] += 0.5
        status.add("processed", "/young/0")
        cut_half = status.statistics().batches_cut
        now[0] += 0.5  # the oldest buffered result is now linger old
        status.add("processed", "/young/1")
        cut_old = status.statistics().batches_cut
        status.close()
        return cut_young, cut_half, cut_old

    handed: list[int] = []

    async def run() -> None:
        handed.extend(await anyio.to_thread.run_sync(task))

    await run()
    assert handed == [0, 0, 1]
    # The batch handed over held what was buffered before the lingering add.
    stored = sorted(await hub_paths(hub, "linger"))
    assert stored == sorted([*paths("/old", 3), "/young/0", "/young/1"])
    task_at_hub = await hub_task(hub, "linger")
    assert task_at_hub is not None
    assert task_at_hub["batches"] == 2


# -- the delivery deadline while a batch waits for a send slot ----------------------
#
# A batch fails once the hub has acknowledged nothing of its task for
# ``delivery_timeout`` since the batch was cut: queueing behind acknowledged
# batches is progress, a hub that acknowledges nothing is not.


def _one_slot_status(
    hub: RunningHub, tmp_path: Path, taskid: str, now: list[float]
) -> AsyncStreamTaskResults:
    return AsyncStreamTaskResults(
        "p",
        [],
        1,
        "q",
        taskid,
        **knobs(
            hub,
            max_inflight_batches=1,
            delivery_timeout=5.0,
            spool_dir=str(tmp_path),
            clock=lambda: now[0],
        ),
    )


async def _second_batch_waits_for_the_slot(status: AsyncStreamTaskResults) -> None:
    for path in paths("/first", 10):
        await status.add("processed", path)
    await wait_until(
        lambda: status.statistics().batches_in_flight == 1, "batch 0 in flight"
    )
    for path in paths("/second", 10):
        await status.add("processed", path)
    assert status.statistics().batches_queued == 1  # waiting for the slot


async def test_a_batch_queued_behind_acknowledged_batches_outlives_its_timeout(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "slot-progress"
    now = [0.0]
    # The first batch is held at the hub while the second waits for the only slot.
    hub.faults.delay(0.5, n=1, path_prefix=RESULTS)
    status = _one_slot_status(hub, tmp_path, taskid, now)
    await _second_batch_waits_for_the_slot(status)
    now[0] += 100.0  # batch 1 was cut at 0; batch 0 is acknowledged at 100
    await status.dump()
    stored = sorted(await hub_paths(hub, taskid))
    assert stored == sorted([*paths("/first", 10), *paths("/second", 10)])
    assert spools_of(tmp_path, taskid) == []


async def test_a_batch_waiting_for_a_slot_at_a_hub_that_acknowledges_nothing_is_spooled(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "slot-deadline"
    now = [0.0]
    # The hub refuses batch 0 until its deadline passes; batch 1 waits behind it.
    hub.faults.fail_next(1000, status=503, retry_after=0.05, path_prefix=RESULTS)
    status = _one_slot_status(hub, tmp_path, taskid, now)
    await _second_batch_waits_for_the_slot(status)
    now[0] += 100.0
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    hub.faults.reset()
    error = info.value
    assert error.undelivered_seqs == (0, 1)
    assert await hub_paths(hub, taskid) == []
    (spool,) = spools_of(tmp_path, taskid)
    assert spool.seqs == [0, 1]
    assert sorted(spool.paths) == sorted([*paths("/first", 10), *paths("/second", 10)])


# -- resend keeps each batch's sequence number ------------------------------------


async def test_resend_of_a_spool_with_gaps_posts_each_batch_under_its_own_seq(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "gaps"
    status = AsyncStreamTaskResults(
        "p",
        [],
        1,
        "q",
        taskid,
        **knobs(
            hub,
            max_inflight_batches=2,
            delivery_timeout=1.0,
            spool_dir=str(tmp_path),
        ),
    )
    for path in paths("/gap", 20):
        await status.add("processed", path)
    await wait_until(
        lambda: status.statistics().batches_acked == 2, "batches 0 and 1 acknowledged"
    )
    # A mid-stream outage: the next batch posted is refused until its deadline
    # (Retry-After outlasts it); the batches around it go through.
    hub.faults.fail_next(
        1, status=503, retry_after=30, path_prefix=f"/api/tasks/{taskid}/results/"
    )
    for path in paths("/gap", 50)[20:]:
        await status.add("processed", path)
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    error = info.value
    assert error.spool_path is not None
    (spool,) = spools_of(tmp_path, taskid)
    assert len(spool.seqs) == 1
    assert spool.seqs[0] in (2, 3)  # not 0: the spool has gaps on both sides
    assert list(error.undelivered_seqs) == spool.seqs
    assert spool.header["batches"] == 5
    assert spool.header["payload"] is not None
    assert len(await hub_paths(hub, taskid)) == 40

    result = await resend(error.spool_path, hub)
    assert result.exit_code == 0, result.output
    assert "resent 1 batches (10 results, 0 already at the hub)" in result.output
    assert "task completed" in result.output
    task = await hub_task(hub, taskid)
    assert task is not None
    assert task["state"] == "completed"
    assert task["batches"] == 5
    stored = await hub_paths(hub, taskid)
    assert sorted(stored) == sorted(paths("/gap", 50))  # each result exactly once


async def test_resend_posts_under_the_original_idempotency_keys(
    hub: RunningHub, tmp_path: Path
) -> None:
    """A batch resent that the hub already holds is a duplicate, not a conflict."""
    taskid = "same-keys"
    hub.faults.fail_next(
        10_000, status=503, retry_after=0.01, path_prefix=f"/api/tasks/{taskid}/"
    )
    options = knobs(hub, delivery_timeout=2.0, spool_dir=str(tmp_path))
    status = AsyncStreamTaskResults("p", [], 1, "q", taskid, **options)
    for path in paths("/keys", 30):
        await status.add("processed", path)
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    hub.faults.reset()
    (spool,) = spools_of(tmp_path, taskid)
    assert spool.seqs == [0, 1, 2]
    # Batch 2 reached the hub after all (say, its answer was lost).
    async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client:
        answer = await client.post(
            f"/api/tasks/{taskid}/results/",
            content=spool.batches[2]["body"].encode(),
            headers={"Idempotency-Key": f"{taskid}:2"},
        )
        assert answer.status_code == 200, answer.text
    assert info.value.spool_path is not None
    result = await resend(info.value.spool_path, hub)
    assert result.exit_code == 0, result.output
    assert "resent 3 batches (30 results, 1 already at the hub)" in result.output
    assert sorted(await hub_paths(hub, taskid)) == sorted(paths("/keys", 30))
