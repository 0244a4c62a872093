"""Custom tasks on real Celery workers against the real broker and a hub process."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from asyncstream._spool import read_spool
from tests.celery import worker_app
from tests.celery._workers import Broker, CeleryWorker
from tests.celery.conftest import SITE, HubView, WorkerFactory, queue_for

pytestmark = pytest.mark.celery

STATES = ("processed", "skipped", "aborted", "failures", "inprogress")


def expected_paths(prefix: str, count: int) -> set[str]:
    return {f"{prefix}/{i}" for i in range(count)}


def assert_hub_holds_once(
    hub_view: HubView, taskid: str, payload: dict[str, Any], paths: set[str]
) -> list[dict[str, Any]]:
    """The hub completed the task and holds every result exactly once."""
    task = hub_view.task(taskid)
    assert task is not None
    assert task["state"] == "completed"
    results = hub_view.results(taskid)
    stored = [r["path"] for r in results]
    assert len(stored) == len(paths)
    assert set(stored) == paths
    assert task["summary"] == payload["status"]["summary"]
    assert task["batches"] == payload["status"]["streamed"]["batches"]
    return results


def assert_contract_payload(payload: dict[str, Any], jobid: int, total: int) -> None:
    assert set(payload) >= {"jobid", "paths", "status"}
    assert payload["jobid"] == jobid
    assert payload["paths"] == []  # streamed: the results are at the hub
    status = payload["status"]
    assert set(status["summary"]) == set(STATES)
    assert set(status["details"]) == set(STATES)
    assert sum(status["summary"].values()) == total
    assert status["streamed"]["items"] == total
    assert datetime.fromisoformat(status["started"]).tzinfo is not None


@pytest.mark.parametrize("pool", ["prefork", "threads"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_streaming_task_delivers_every_result_once(
    pool: str,
    flavour: str,
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    session_tag: str,
) -> None:
    queue = queue_for(session_tag, pool)
    inputs = [f"/in/{pool}-{flavour}/{i}" for i in range(1000)]
    prefix = f"/out/{pool}-{flavour}"
    task = worker_app.stream_sync if flavour == "sync" else worker_app.stream_async
    began = time.monotonic()
    result = task.apply_async(
        kwargs={
            "jobid": 42,
            "paths": [{"path": "/in/first"}, hub_view.stream(inputs)],
            "stream_results": True,
            "count": 3000,
            "prefix": prefix,
            "workflow_field": "ignored",
        },
        queue=queue,
    )
    payload = result.get(timeout=60)
    elapsed = time.monotonic() - began
    assert_contract_payload(payload, 42, 4001)
    assert payload["status"]["task"] == task.name.removeprefix("dynamo.custom.")
    assert payload["status"]["input_total"] == 1001
    assert payload["status"]["summary"]["failures"] == 300
    assert payload["seen"]["queue"] == queue
    assert payload["seen"]["site"] == SITE
    assert payload["seen"]["taskid"] == result.id
    assert payload["seen"]["worker"] == pool
    paths = {"/in/first", *inputs} | expected_paths(prefix, 3000)
    assert_hub_holds_once(hub_view, result.id, payload, paths)
    print(f"{pool}/{flavour}: 4001 results in {elapsed:.2f}s")


def test_two_workers_running_at_once_keep_results_apart(
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    session_tag: str,
) -> None:
    queue = queue_for(session_tag, "shared")
    sent = []
    for n in range(6):
        task = worker_app.stream_sync if n % 2 else worker_app.stream_async
        prefix = f"/shared/{n}"
        kwargs = {"jobid": 7, "paths": [], "stream_results": True}
        kwargs |= {"count": 2500, "prefix": prefix}
        sent.append((prefix, task.apply_async(kwargs=kwargs, queue=queue)))
    workers = set()
    for prefix, result in sent:
        payload = result.get(timeout=90)
        workers.add(payload["seen"]["worker"])
        assert payload["seen"]["taskid"] == result.id
        results = assert_hub_holds_once(
            hub_view, result.id, payload, expected_paths(prefix, 2500)
        )
        assert all(r["path"].startswith(prefix + "/") for r in results)
    assert workers == {"prefork", "threads"}


def _wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.slow
def test_redelivered_task_after_sigkill_does_not_double_count(
    start_worker: WorkerFactory,
    broker: Broker,
    celery_app: Celery,
    hub_view: HubView,
    session_tag: str,
    tmp_path: Path,
) -> None:
    if broker.kind == "filesystem":
        pytest.skip("filesystem:// has no acknowledgements: a killed task is lost")
    queue = queue_for(session_tag, "redeliver")
    gate = tmp_path / "gate"
    first = start_worker("doomed", [queue])
    result = worker_app.stream_sync.apply_async(
        kwargs={
            "jobid": 9,
            "paths": [],
            "stream_results": True,
            "count": 3000,
            "prefix": "/redeliver",
            "gate": str(gate),
            "stall_after": 1700,
        },
        queue=queue,
    )

    def partial_at_hub() -> dict[str, Any] | None:
        task = hub_view.task(result.id)
        return task if task and task["batches"] >= 3 else None

    before = _wait_until(partial_at_hub, 30, "the first run's batches at the hub")
    first.kill()  # SIGKILL, whole process group, mid-stream
    assert before["state"] == "running"
    assert sum(before["summary"].values()) >= 1500
    gate.touch()
    # Redis gives an unacknowledged message back after its visibility timeout,
    # RabbitMQ as soon as the dead worker's connection closes.
    second = start_worker(
        "rescuer",
        [queue],
        transport_options={
            "visibility_timeout": 2,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )
    payload = result.get(timeout=60)
    assert payload["seen"]["worker"] == "rescuer"
    assert_contract_payload(payload, 9, 3000)
    assert_hub_holds_once(
        hub_view, result.id, payload, expected_paths("/redeliver", 3000)
    )
    assert "dropped the" in second.log(200)
    print(
        f"redelivered via {broker.kind}: first run left {before['batches']} batches"
        f" ({sum(before['summary'].values())} results), re-run stored 3000 once"
    )


def _settled(hub_view: HubView, taskid: str) -> dict[str, Any]:
    """The hub's view of a task once it stopped changing for half a second."""
    last = hub_view.task(taskid)
    stable_since = time.monotonic()
    deadline = stable_since + 20
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = hub_view.task(taskid)
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= 0.5:
            break
    assert last is not None
    return last


@pytest.mark.slow
def test_soft_time_limit_during_dump_ends_task_and_keeps_batches_consistent(
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    faults: Any,
    spool_dir: Path,
    session_tag: str,
) -> None:
    queue = queue_for(session_tag, "prefork")
    taskid = f"soft-limit-{session_tag}"
    # Every results POST of this task is held 1.5s: 10 batches, 4 in flight at
    # once, take ~4.5s to deliver, and the limit is 2s.
    faults.delay(1.5, path_prefix=f"/api/tasks/{taskid}/results/")
    began = time.monotonic()
    result = worker_app.stream_sync.apply_async(
        kwargs={
            "jobid": 5,
            "paths": [],
            "stream_results": True,
            "count": 5000,
            "prefix": "/limited",
        },
        queue=queue,
        task_id=taskid,
        soft_time_limit=2,
        time_limit=60,
    )
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(timeout=60)
    ended = time.monotonic() - began
    assert ended < 20, f"the task took {ended:.1f}s to end after its 2s soft limit"
    faults.reset()

    task = _settled(hub_view, taskid)
    assert task["state"] == "running"  # never completed: dump() did not finish
    stored = [r["path"] for r in hub_view.results(taskid)]
    assert len(stored) == len(set(stored))
    assert sum(task["summary"].values()) == len(stored)
    spools = list(spool_dir.glob(f"{taskid}*"))
    assert len(spools) == 1, spools
    spool = read_spool(spools[0])
    spooled = set()
    for batch in spool.batches:
        body = json.loads(batch.body)
        for objs in body["items"].values():
            spooled |= {o["path"] for o in objs}
    # Nothing lost: every result is at the hub or in the spool for `resend`.
    assert set(stored) | spooled == expected_paths("/limited", 5000)

    # The worker is not hung: it runs the next task at once.
    ping = worker_app.ping.apply_async(kwargs={"jobid": 1, "paths": []}, queue=queue)
    assert ping.get(timeout=15)["seen"]["worker"] == "prefork"
    print(
        f"soft limit: task ended {ended:.1f}s after start; hub holds"
        f" {len(stored)} results in {task['batches']} batches,"
        f" {spool.items} spooled in {len(spool.batches)} batches"
    )


@pytest.mark.slow
def test_warm_shutdown_waits_for_inflight_flush(
    start_worker: WorkerFactory,
    celery_app: Celery,
    hub_view: HubView,
    faults: Any,
    session_tag: str,
    tmp_path: Path,
) -> None:
    queue = queue_for(session_tag, "shutdown")
    taskid = f"warm-shutdown-{session_tag}"
    gate = tmp_path / "gate"
    worker = start_worker("stopping", [queue])
    faults.delay(1.0, path_prefix=f"/api/tasks/{taskid}/")
    result = worker_app.stream_sync.apply_async(
        kwargs={
            "jobid": 3,
            "paths": [],
            "stream_results": True,
            "count": 2000,
            "prefix": "/shutdown",
            "gate": str(gate),
            "stall_after": 0,
        },
        queue=queue,
        task_id=taskid,
    )
    inspector = celery_app.control.inspect(destination=[worker.nodename], timeout=1)

    def running() -> bool:
        active = inspector.active() or {}
        return any(t["id"] == taskid for ts in active.values() for t in ts)

    _wait_until(running, 30, "the task to start")
    began = time.monotonic()
    worker.terminate()  # SIGTERM: warm shutdown
    gate.touch()
    code = worker.wait(60)
    took = time.monotonic() - began
    assert code == 0, worker.log()
    payload = result.get(timeout=10)
    assert_contract_payload(payload, 3, 2000)
    assert_hub_holds_once(hub_view, taskid, payload, expected_paths("/shutdown", 2000))
    assert took >= 1.0  # it waited for the delayed acknowledgements
    print(f"warm shutdown: worker exited {took:.1f}s after SIGTERM, task complete")


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_workers_stream_to_the_hub_their_environment_names(
    pool: str,
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    session_tag: str,
) -> None:
    result = worker_app.ping.apply_async(
        kwargs={"jobid": 1, "paths": [], "stream_results": True},
        queue=queue_for(session_tag, pool),
    )
    payload = result.get(timeout=30)
    assert payload["seen"]["worker"] == pool
    task = hub_view.task(result.id)
    assert task is not None
    assert task["state"] == "completed"
    del payload["seen"]
    assert task["payload"] == payload
