"""A file name that is not UTF-8 through a real worker and Celery's JSON."""

from __future__ import annotations

import os

import pytest
from celery import Celery

from tests.celery import worker_app
from tests.celery._workers import CeleryWorker
from tests.celery.conftest import HubView, queue_for

pytestmark = pytest.mark.celery

ODD = os.fsdecode(b"/fs/\xffbad-\xe9.txt")  # as os.scandir would give it


@pytest.mark.parametrize("stream_results", [False, True])
def test_a_name_that_is_not_utf8_survives_the_worker_round_trip(
    stream_results: bool,
    session_workers: dict[str, CeleryWorker],
    celery_app: Celery,
    hub_view: HubView,
    session_tag: str,
) -> None:
    result = worker_app.stream_sync.apply_async(
        kwargs={
            "jobid": 5,
            "paths": [ODD, {"path": "/fs/café", "origin": ODD}],
            "stream_results": stream_results,
            "count": 2,
            "prefix": ODD,
        },
        queue=queue_for(session_tag, "prefork"),
    )
    payload = result.get(timeout=60)
    expected = [
        {"path": ODD},
        {"path": "/fs/café", "origin": ODD},
        {"path": f"{ODD}/0"},
        {"path": f"{ODD}/1"},
    ]
    if stream_results:
        results = hub_view.results(result.id)
        assert [{k: v for k, v in r.items() if k != "state"} for r in results] == (
            expected
        )
        task = hub_view.task(result.id)
        assert task is not None
        assert task["state"] == "completed"
    else:
        assert payload["paths"] == expected
        assert payload["status"]["input_paths"][0] == {"path": ODD}
