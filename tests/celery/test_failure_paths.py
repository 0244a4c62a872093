"""Failure paths of the task glue on real workers, the real broker and a hub process:
an ``async def`` task that raises, a soft time limit while the sync shim still
buffers, a redelivered task whose reset the hub answers with 409.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from tests.celery import worker_app
from tests.celery._workers import CeleryWorker
from tests.celery.conftest import HubView, queue_for

pytestmark = pytest.mark.celery


def spooled_paths(spool: Path) -> list[str]:
    """The result paths a spool file holds (its documented JSON-lines format)."""
    found: list[str] = []
    for line in spool.read_text().splitlines()[1:]:
        for objs in json.loads(json.loads(line)["body"])["items"].values():
            found += [o["path"] for o in objs]
    return found


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_async_task_that_raises_delivers_its_results_before_failing(
    pool: str,
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    session_tag: str,
) -> None:
    result = worker_app.fails_midway_async.apply_async(
        kwargs={"jobid": 2, "paths": [], "stream_results": True, "count": 7},
        queue=queue_for(session_tag, pool),
    )
    with pytest.raises(ValueError, match="async disk is on fire"):
        result.get(timeout=30)
    # Read as soon as the failure is known: the results were flushed before it.
    task = hub_view.task(result.id)
    assert task is not None
    assert task["state"] == "running"  # delivered, never completed
    assert sorted(r["path"] for r in hub_view.results(result.id)) == sorted(
        f"/failed-async/{i}" for i in range(7)
    )


def test_soft_time_limit_while_the_sync_shim_buffers_spools_the_buffer(
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    spool_dir: Path,
    session_tag: str,
) -> None:
    taskid = f"buffered-limit-{uuid.uuid4().hex[:8]}"
    result = worker_app.buffers_then_stalls.apply_async(
        kwargs={"jobid": 6, "paths": [], "stream_results": True, "count": 30},
        queue=queue_for(session_tag, "prefork"),  # soft limits need prefork
        task_id=taskid,
        soft_time_limit=1,
        time_limit=60,
    )
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(timeout=30)
    spools = sorted(spool_dir.glob(f"{taskid}*.jsonl"))
    assert len(spools) == 1, spools
    # Nothing had crossed to the hub: every buffered result is in the spool.
    assert sorted(spooled_paths(spools[0])) == sorted(
        f"/buffered/{i}" for i in range(30)
    )
    assert hub_view.task(taskid) is None


def test_redelivered_task_whose_reset_is_answered_409_reads_again_and_runs(
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    faults: Any,
    session_tag: str,
) -> None:
    taskid = f"reset-409-{uuid.uuid4().hex[:8]}"
    # An earlier, unfinished run left a batch at the hub.
    earlier = {
        "jobid": 8,
        "task": "stream_sync",
        "queue": None,
        "seq": 0,
        "items": {"processed": [{"path": "/earlier/0"}]},
    }
    posted = hub_view.client.post(
        f"/api/tasks/{taskid}/results/",
        json=earlier,
        headers={"Idempotency-Key": f"{taskid}:0"},
    )
    assert posted.status_code == 200, posted.text
    # The reset is refused once, as when another run completed the task
    # meanwhile: the glue must read the task again rather than fail.
    faults.fail_next(1, status=409, path_prefix=f"/api/tasks/{taskid}/reset")
    result = worker_app.stream_sync.apply_async(
        kwargs={
            "jobid": 8,
            "paths": [],
            "stream_results": True,
            "count": 20,
            "prefix": "/again",
        },
        queue=queue_for(session_tag, "threads"),
        task_id=taskid,
    )
    payload = result.get(timeout=30)
    assert payload["status"]["summary"]["processed"] == 18
    task = hub_view.task(taskid)
    assert task is not None
    assert task["state"] == "completed"
    stored = sorted(r["path"] for r in hub_view.results(taskid))
    assert stored == sorted(f"/again/{i}" for i in range(20))  # earlier run dropped
