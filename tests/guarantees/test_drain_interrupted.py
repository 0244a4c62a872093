"""A failed task's results being delivered when the task is cancelled (its
worker thread interrupted, a time limit): the cancellation goes on as itself,
and what the hub had not acknowledged is spooled, once.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from asyncstream import AsyncStreamTaskResults
from asyncstream.hub import RunningHub
from tests.guarantees._support import knobs, spools_of, wait_until


async def test_a_drain_cancelled_after_a_failure_spools_and_stays_a_cancellation(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "drain-cancelled"
    # The hub holds every request of the task: nothing is acknowledged while
    # the failed task's results drain.
    hub.faults.delay(3.0, path_prefix=f"/api/tasks/{taskid}/")
    options = knobs(hub, spool_dir=str(tmp_path), delivery_timeout=60.0)
    failed = anyio.Event()
    status = AsyncStreamTaskResults("p", [], 1, "q", taskid, **options)

    async def task() -> None:
        async with status:
            for i in range(25):
                await status.add("processed", f"/drain/{i}")
            failed.set()
            raise ValueError("the body failed")  # the block now drains

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(task)
            await failed.wait()
            await wait_until(
                lambda: hub.faults.injected["delay"] >= 1, "a batch at the hub"
            )
            scope.cancel()
    # Cancelled as asked: no other error came out of the interrupted drain.
    assert scope.cancelled_caught
    # The failure is recorded: aborting now (what a time limit does next)
    # spools nothing a second time.
    await status.aabort()
    (spool,) = spools_of(tmp_path, taskid)
    assert sorted(spool.paths) == sorted(f"/drain/{i}" for i in range(25))
