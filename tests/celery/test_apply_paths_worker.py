"""A plain (sync) Celery task doing its file work through apply_paths, on a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.celery._workers import Broker
from tests.celery.conftest import HubView, WorkerFactory, queue_for

pytestmark = pytest.mark.celery


def test_sync_handlers_delete_and_move_real_files_on_a_worker(
    examples_app: Any,
    start_worker: WorkerFactory,
    celery_app: Celery,
    broker: Broker,
    hub_view: HubView,
    session_tag: str,
    tmp_path: Path,
) -> None:
    queue = queue_for(session_tag, "apply-sync")
    start_worker(
        "apply-sync",
        [queue],
        app_module="examples.celery_app",
        CELERY_BROKER_URL=broker.url,
        CELERY_RESULT_BACKEND=broker.backend,
        ASYNCSTREAM_PATH_CONCURRENCY="8",
    )
    source, replica = tmp_path / "source", tmp_path / "replica"
    names = [f"d{i % 7}/f{i}.txt" for i in range(1200)]
    for name in names:
        (replica / name).parent.mkdir(parents=True, exist_ok=True)
        (replica / name).write_text(name)
    fields = {"source_root": str(source), "replica_root": str(replica)}

    # Streamed: the input from a hub stream, the results to the hub in batches.
    deleted = names[:1000]
    stream = hub_view.stream([str(source / name) for name in deleted])
    deleting = examples_app.snapdiff_delete_sync.apply_async(
        kwargs={"jobid": 21, "paths": [stream], "stream_results": True, **fields},
        queue=queue,
    )
    gone = deleting.get(timeout=90)
    assert gone["status"]["summary"]["processed"] == 1000
    assert all(not (replica / name).exists() for name in deleted)
    assert len(hub_view.results(deleting.id)) == 1000
    assert hub_view.task(deleting.id)["state"] == "completed"  # type: ignore[index]

    # In memory: the payload keeps the input's order in "paths".
    moves = [
        {"path": str(source / f"moved/{i}.txt"), "from": str(source / name)}
        for i, name in enumerate(names[1000:])
    ]
    moved = examples_app.snapdiff_move_sync.apply_async(
        kwargs={"jobid": 21, "paths": [*moves, {"path": str(source / "x")}], **fields},
        queue=queue,
    ).get(timeout=90)
    summary = moved["status"]["summary"]
    assert (summary["processed"], summary["failures"]) == (200, 1)
    assert [p["path"] for p in moved["paths"]] == [m["path"] for m in moves]
    assert (replica / "moved/0.txt").read_text() == names[1000]
    failure = moved["status"]["details"]["failures"][0]
    assert failure["message"] == ["moved path has no 'from'"]
