"""Custom tasks that the CLI tests run with ``asyncstream run runtasks:NAME``.

This directory goes on the child process's PYTHONPATH. Every task records the
size of each file it is given; a file whose name ends in ``.bad`` is a failure, so
the tests can see the exit status for failed paths. When the field
``expect_queue`` is given, the task checks that the queue helpers see it.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from asyncstream.celery import custom_task
from asyncstream.queue import get_current_task_queue_name
from asyncstream.status import FileActionStatus
from asyncstream.streamstatus import StreamTaskResults
from asyncstream.utils.inputs import expand_paths

# No broker is ever contacted: the runner calls task.apply() eagerly.
app = Celery("asyncstream-cli-tests", broker="memory://", backend="cache+memory://")


def _check_queue(expect_queue: str | None) -> None:
    if expect_queue is not None and get_current_task_queue_name() != expect_queue:
        raise RuntimeError(
            f"queue is {get_current_task_queue_name()!r}, expected {expect_queue!r}"
        )


def _result(item: dict[str, Any]) -> tuple[str, dict[str, Any], str | None]:
    if item["path"].endswith(".bad"):
        return "failures", item, "bad by name"
    return "processed", {**item, "size": os.path.getsize(item["path"])}, None


def sizes_sync(
    status: Any, *, paths: list[Any], expect_queue: str | None = None, **_: Any
) -> dict[str, Any]:
    """A plain function of the glue's shape, using the sync shims."""
    _check_queue(expect_queue)
    for item in expand_paths(paths):
        state, obj, message = _result(item)
        status.add(state, obj, message=message)
    result: dict[str, Any] = status.dump()
    return result


async def sizes_async(
    status: Any, *, paths: list[Any], expect_queue: str | None = None, **_: Any
) -> dict[str, Any]:
    """An ``async def`` of the glue's shape."""
    _check_queue(expect_queue)
    async for item in expand_paths(paths):
        state, obj, message = _result(item)
        await status.add(state, obj, message=message)
    result: dict[str, Any] = await status.dump()
    return result


def raises(status: Any, **_: Any) -> None:
    """A task that fails before doing anything."""
    raise ValueError("boom on purpose")


celery_sizes = custom_task(app, name="celery_sizes")(sizes_sync)


@app.task(bind=True, name="plain_celery_sizes")
def plain_celery_sizes(
    self: Any,
    *,
    jobid: Any = None,
    paths: list[Any] | None = None,
    stream_results: bool = False,
    **_: Any,
) -> dict[str, Any]:
    """A task written as the seed shows, with no glue at all."""
    queue = get_current_task_queue_name()
    status: Any
    if stream_results:
        status = StreamTaskResults("plain", paths or [], jobid, queue, self.request.id)
    else:
        status = FileActionStatus("plain", paths or [], jobid, queue)
    for item in expand_paths(paths or []):
        state, obj, message = _result(item)
        status.add(state, obj, message=message)
    result: dict[str, Any] = status.dump()
    return result


@app.task(bind=True, name="forgets_payload")
def forgets_payload(self: Any, **_: Any) -> None:
    """A Celery task that neither streams nor returns a payload."""


async def unlinks(status: Any, *, paths: list[Any], **_: Any) -> dict[str, Any]:
    """Delete every file it is given: what it got must name the file exactly."""
    async for item in expand_paths(paths):
        os.unlink(item["path"])
        await status.add("processed", item)
    result: dict[str, Any] = await status.dump()
    return result
