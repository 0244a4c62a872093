"""The Celery app the tests' workers run: ``celery -A tests.celery.worker_app``.

Broker, result backend and transport options come from the environment the test
session sets for the worker (and applies to its own copy of the app), so the
worker and the test process always agree.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange

from asyncstream import (
    ConfigurationError,
    current_task_context,
    get_current_site,
    get_current_task_queue_name,
)
from asyncstream.celery import custom_task
from asyncstream.utils.inputs import expand_paths

ENV_BROKER = "ASYNCSTREAM_TEST_CELERY_BROKER"
ENV_BACKEND = "ASYNCSTREAM_TEST_CELERY_BACKEND"
ENV_TRANSPORT_OPTIONS = "ASYNCSTREAM_TEST_TRANSPORT_OPTIONS"  # JSON
ENV_WORKER_NAME = "ASYNCSTREAM_TEST_WORKER"


def configure(app: Celery, broker: str, backend: str, options: dict[str, Any]) -> None:
    """The settings every test app and worker share."""
    app.conf.update(
        broker_url=broker,
        result_backend=backend,
        broker_transport_options=options,
        result_backend_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
    )
    if broker.startswith("filesystem://"):
        # kombu's filesystem transport refuses '#' in exchange names, and Celery
        # names a queue's exchange after the queue: route through one exchange.
        app.amqp.autoexchange = lambda name: Exchange("asyncstream-tests", "direct")


app = Celery("asyncstream-tests")
configure(
    app,
    os.environ.get(ENV_BROKER, "memory://"),
    os.environ.get(ENV_BACKEND, "cache+memory://"),
    json.loads(os.environ.get(ENV_TRANSPORT_OPTIONS) or "{}"),
)


def _seen() -> dict[str, Any]:
    """What the running task knows about itself, read where the body runs."""
    context = current_task_context()
    try:
        queue: str | None = get_current_task_queue_name()
        site: str | None = get_current_site()
    except ConfigurationError:  # run eagerly without a queue
        queue = site = None
    return {
        "queue": queue,
        "site": site,
        "taskid": context.taskid if context else None,
        "worker": os.environ.get(ENV_WORKER_NAME),
        "pid": os.getpid(),
    }


def _wait_for(gate: str | None, after: int, index: int) -> None:
    # Stall (so that the test can kill the worker mid-stream) until the test
    # creates the gate file.
    if gate is not None and index == after:
        while not Path(gate).exists():
            time.sleep(0.05)


# Batches of 500, not the default: the worker tests count the batches a run of a
# few thousand paths leaves at the hub (several, before a kill or a time limit).
@custom_task(app, status_options={"batch_size": 500})
def stream_sync(
    status: Any,
    *,
    paths: list[Any],
    count: int = 0,
    prefix: str = "/fs",
    gate: str | None = None,
    stall_after: int = -1,
    **fields: Any,
) -> dict[str, Any]:
    """Record every input path, then ``count`` generated ones, as processed."""
    seen = _seen()
    for item in expand_paths(paths):
        status.add("processed", item)
    for i in range(count):
        _wait_for(gate, stall_after, i)
        status.add("failures" if i % 10 == 9 else "processed", f"{prefix}/{i}")
    payload: dict[str, Any] = status.dump()
    return {**payload, "seen": seen}


@custom_task(app)
async def stream_async(
    status: Any,
    *,
    paths: list[Any],
    count: int = 0,
    prefix: str = "/fs",
    **fields: Any,
) -> dict[str, Any]:
    """``stream_sync`` as an ``async def``: it runs on the event-loop thread."""
    seen = _seen()
    async for item in expand_paths(paths):
        await status.add("processed", item)
    for i in range(count):
        await status.add("failures" if i % 10 == 9 else "processed", f"{prefix}/{i}")
    payload: dict[str, Any] = await status.dump()
    return {**payload, "seen": seen}


@custom_task(app)
def forgets_dump(status: Any, *, count: int = 3, **fields: Any) -> None:
    """Adds results and returns nothing: the glue must dump for it."""
    for i in range(count):
        status.add("processed", f"/forgot/{i}")


@custom_task(app)
async def forgets_dump_async(status: Any, *, count: int = 3, **fields: Any) -> None:
    for i in range(count):
        await status.add("processed", f"/forgot/{i}")


@custom_task(app)
def fails_midway(status: Any, *, count: int = 5, **fields: Any) -> None:
    for i in range(count):
        status.add("processed", f"/failed/{i}")
    raise ValueError("the disk is on fire")


@custom_task(app, name="context")
async def context_async(status: Any, **fields: Any) -> dict[str, Any]:
    """The task context as async code sees it, and the fields it was given."""
    await status.dump()
    context = current_task_context()
    return {
        "status": type(status).__name__,
        "taskid": context.taskid if context else None,
        "queue": context.queue_name if context else None,
        "fields": sorted(fields),
    }


@custom_task(app)
def ping(status: Any, **fields: Any) -> dict[str, Any]:
    """The smallest task: proves a worker still runs tasks."""
    payload: dict[str, Any] = status.dump()
    return {**payload, "seen": _seen()}


@custom_task(app, status_options={"linger": 60.0})
async def fails_midway_async(status: Any, *, count: int = 5, **fields: Any) -> None:
    """``fails_midway`` as an ``async def``. The linger is long, so only the glue's
    close at the failure can deliver the results before the task ends."""
    for i in range(count):
        await status.add("processed", f"/failed-async/{i}")
    raise ValueError("the async disk is on fire")


@custom_task(app)
def buffers_then_stalls(
    status: Any, *, count: int = 30, stall: float = 30.0, **fields: Any
) -> None:
    """Add fewer results than a batch (they stay in the task thread's buffer), then
    stall until a soft time limit interrupts; ``stall`` bounds it otherwise."""
    for i in range(count):
        status.add("processed", f"/buffered/{i}")
    deadline = time.monotonic() + stall
    while time.monotonic() < deadline:
        time.sleep(0.02)
