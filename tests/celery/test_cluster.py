"""A cluster's shape: many Celery workers streaming at once into a multi-process hub.

Three prefork workers (concurrency 2) on the real broker run twelve streaming tasks
of 10,000 results each at the same time, all into one hub served by two processes
over PostgreSQL. Every result must be stored once, under its own task, and every
task's payload must agree with what the hub holds.

Twenty batches a task (240 in all, from six task slots at once) keep all three
workers and both hub processes busy at the same time; more results per task add
time, not another kind of interleaving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from celery import Celery

from asyncstream.hub import HubProcess
from tests.celery import worker_app
from tests.celery.conftest import API_KEY, HubView, WorkerFactory, queue_for
from tests.celery.test_workers import (
    assert_contract_payload,
    assert_hub_holds_once,
    expected_paths,
)
from tests.conftest import postgres_schema

pytestmark = [pytest.mark.celery, pytest.mark.slow, pytest.mark.timeout(600)]

WORKERS = 3
TASKS = 12
RESULTS_PER_TASK = 10_000


@pytest.fixture
def cluster_hub(postgres_server: str) -> Iterator[HubProcess]:
    """``asyncstream hub serve --workers 2`` over a PostgreSQL schema of its own."""
    with postgres_schema(postgres_server) as dsn:
        hub = HubProcess(None, store="postgres", dsn=dsn, workers=2, api_key=API_KEY)
        hub.start(timeout=90)
        try:
            yield hub
        finally:
            hub.kill()


def test_three_workers_stream_twelve_tasks_into_a_two_process_hub_exactly_once(
    cluster_hub: HubProcess,
    start_worker: WorkerFactory,
    celery_app: Celery,
    session_tag: str,
) -> None:
    queue = queue_for(session_tag, "cluster")
    names = [f"cluster{n}-{session_tag}" for n in range(WORKERS)]
    for name in names:
        start_worker(
            name,
            [queue],
            pool="prefork",
            concurrency=2,
            ASYNCSTREAM_HUB_URL=cluster_hub.url,
        )
    began = time.monotonic()
    sent = []
    for n in range(TASKS):
        task = worker_app.stream_sync if n % 2 else worker_app.stream_async
        prefix = f"/cluster/{session_tag}/{n}"
        kwargs = {"jobid": 1000 + n, "paths": [], "stream_results": True}
        kwargs |= {"count": RESULTS_PER_TASK, "prefix": prefix}
        sent.append((n, prefix, task.apply_async(kwargs=kwargs, queue=queue)))

    view = HubView(cluster_hub)
    try:
        ran_on = set()
        for n, prefix, result in sent:
            payload = result.get(timeout=400)
            ran_on.add(payload["seen"]["worker"])
            assert payload["seen"]["taskid"] == result.id
            assert_contract_payload(payload, 1000 + n, RESULTS_PER_TASK)
            results = assert_hub_holds_once(
                view, result.id, payload, expected_paths(prefix, RESULTS_PER_TASK)
            )
            # None crossed between tasks: each stored result is this task's own.
            assert all(r["path"].startswith(prefix + "/") for r in results)
        elapsed = time.monotonic() - began
        total = TASKS * RESULTS_PER_TASK
        print(f"cluster: {total} results in {elapsed:.1f}s, {total / elapsed:,.0f}/s")
        assert ran_on == set(names)
    finally:
        view.client.close()
