"""The example tasks on a real worker, over a real scratch tree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.celery._workers import Broker
from tests.celery.conftest import HubView, WorkerFactory, queue_for

pytestmark = pytest.mark.celery


def _tree(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_example_tasks_act_on_real_files_on_a_worker(
    examples_app: Any,
    start_worker: WorkerFactory,
    celery_app: Celery,
    broker: Broker,
    hub_view: HubView,
    session_tag: str,
    tmp_path: Path,
) -> None:
    queue = queue_for(session_tag, "examples")
    start_worker(
        "examples",
        [queue],
        app_module="examples.celery_app",
        CELERY_BROKER_URL=broker.url,
        CELERY_RESULT_BACKEND=broker.backend,
    )
    source, replica = tmp_path / "source", tmp_path / "replica"
    deleted = [f"gone/{i}.txt" for i in range(300)]
    _tree(replica, [*deleted, "keep.txt", "old/a.txt", "old/b.txt"])
    fields = {"source_root": str(source), "replica_root": str(replica)}

    # Delete handler, streamed: input as a hub stream plus one already-gone path.
    stream = hub_view.stream([str(source / name) for name in deleted])
    deleting = examples_app.snapdiff_delete.apply_async(
        kwargs={
            "jobid": 11,
            "paths": [stream, {"path": str(source / "never-there")}],
            "stream_results": True,
            **fields,
        },
        queue=queue,
    )
    gone = deleting.get(timeout=60)
    assert gone["status"]["summary"]["processed"] == 300
    assert gone["status"]["summary"]["skipped"] == 1
    assert not (replica / "gone").exists() or not any((replica / "gone").iterdir())
    assert (replica / "keep.txt").exists()
    at_hub = hub_view.results(deleting.id)
    assert len(at_hub) == 301
    assert {r["state"] for r in at_hub} == {"processed", "skipped"}
    assert hub_view.task(deleting.id)["state"] == "completed"  # type: ignore[index]

    moved = examples_app.snapdiff_move.apply_async(
        kwargs={
            "jobid": 11,
            "paths": [
                {"path": str(source / "new/a.txt"), "from": str(source / "old/a.txt")},
                {"path": str(source / "new/b.txt"), "from": str(source / "old/b.txt")},
                {"path": str(source / "new/c.txt")},  # no "from": a failure
            ],
            **fields,
        },
        queue=queue,
    ).get(timeout=60)
    assert moved["status"]["summary"]["processed"] == 2
    assert moved["status"]["summary"]["failures"] == 1
    assert (replica / "new/a.txt").read_text() == "old/a.txt"
    assert not (replica / "old/a.txt").exists()
    assert [p["path"] for p in moved["paths"]] == [
        str(source / "new/a.txt"),
        str(source / "new/b.txt"),
    ]

    sizes = examples_app.file_sizes_task.apply_async(
        kwargs={
            "jobid": 12,
            "paths": [str(replica / "keep.txt"), str(replica / "new"), "/nonexistent"],
        },
        queue=queue,
    ).get(timeout=60)
    summary = sizes["status"]["summary"]
    assert (summary["processed"], summary["skipped"], summary["failures"]) == (1, 1, 1)
    assert sizes["paths"][0] == {
        "path": str(replica / "keep.txt"),
        "size": os.path.getsize(replica / "keep.txt"),
    }
