"""Find a custom task by ``MODULE:FUNCTION`` and call it the way a worker would.

Three kinds of task are run alike: a plain function and an ``async def`` of the
glue's shape ``fn(status, *, jobid, paths, **fields)`` get a status object made
here (streamed or in memory, as the task glue would choose); a Celery task (the
glue's ``custom_task`` or a plain ``@app.task(bind=True)``) runs eagerly with
``task.apply`` -- no broker, no worker -- under the given task id and queue.
Every kind is called from a worker thread, as Celery's threads pool would, so the
sync shims and the process's event-loop thread behave as in production.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _portal
from ._async_status import async_status_for_task, status_for_task
from ._context import TaskContext, task_context
from ._exceptions import InvalidInputError

TaskKind = Literal["sync", "async", "celery"]


class TaskLoadError(InvalidInputError):
    """``MODULE:FUNCTION`` does not name a callable task."""


class TaskRaisedError(Exception):
    """The task itself raised; ``__cause__`` is its exception."""


@dataclass(frozen=True, slots=True)
class TaskTarget:
    """A loaded task: what it is, how to call it, and the name it reports under."""

    spec: str
    obj: Any = field(repr=False)
    kind: TaskKind
    name: str


def _is_celery_task(obj: Any) -> bool:
    # Only a module that imported Celery can hold a Celery task.
    if "celery" not in sys.modules:
        return False
    from celery.app.task import Task

    return isinstance(obj, Task)


def load_task(spec: str) -> TaskTarget:
    """Import ``MODULE:FUNCTION`` (``FUNCTION`` may be dotted) and classify it."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TaskLoadError(
            f"{spec!r} is not MODULE:FUNCTION: write e.g. examples.checksum:file_sizes"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise TaskLoadError(
                f"no module named {exc.name!r}: run from the directory that contains"
                " it, or add that directory to PYTHONPATH"
            ) from exc
        raise TaskLoadError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:
        raise TaskLoadError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TaskLoadError(
                f"module {module_name!r} has no attribute {attr!r}: check the name"
                " after the colon"
            ) from None
    if _is_celery_task(obj):
        return TaskTarget(spec, obj, "celery", obj.name)
    if not callable(obj):
        raise TaskLoadError(
            f"{spec} is a {type(obj).__name__}, not a function or a Celery task"
        )
    kind: TaskKind = "async" if inspect.iscoroutinefunction(obj) else "sync"
    return TaskTarget(spec, obj, kind, getattr(obj, "__name__", attr))


@dataclass(frozen=True, slots=True)
class TaskCall:
    """Everything a task is called with, and where its streamed results go."""

    taskid: str
    jobid: Any
    queue_name: str
    paths: list[Any]
    stream_results: bool
    fields: dict[str, Any]
    hub_url: str
    api_key: str | None

    def context(self, taskname: str) -> TaskContext:
        """The task context the queue helpers read inside the task."""
        return TaskContext(self.taskid, self.queue_name, taskname, self.jobid)

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the contract."""
        return {
            **self.fields,
            "jobid": self.jobid,
            "paths": self.paths,
            "stream_results": self.stream_results,
        }

    def status_args(self, taskname: str) -> dict[str, Any]:
        """Arguments of ``status_for_task`` and its async twin."""
        options: dict[str, Any] = {}
        if self.stream_results:
            options = {"hub_url": self.hub_url, "api_key": self.api_key}
        return {
            "stream_results": self.stream_results,
            "taskname": taskname,
            "input_paths": self.paths,
            "jobid": self.jobid,
            "queue_name": self.queue_name,
            "taskid": self.taskid,
            **options,
        }


def call_task(target: TaskTarget, call: TaskCall) -> Any:
    """Run the task to its end in this (worker) thread and return what it returned.

    Its own exceptions come out as :class:`TaskRaisedError` from the original.
    """
    runners: dict[TaskKind, Callable[[TaskTarget, TaskCall], Any]] = {
        "sync": _call_sync,
        "async": lambda t, c: _portal.call(_call_async, t, c),
        "celery": _call_celery,
    }
    try:
        return runners[target.kind](target, call)
    except Exception as exc:
        raise TaskRaisedError(f"task raised {type(exc).__name__}: {exc}") from exc


def _call_sync(target: TaskTarget, call: TaskCall) -> Any:
    with task_context(call.context(target.name)):
        status = status_for_task(**call.status_args(target.name))
        try:
            result = target.obj(status, **call.kwargs())
        except BaseException:
            # What the task recorded before it failed is still worth delivering.
            if not status.dumped and hasattr(status, "close"):
                status.close()
            raise
        if not status.dumped:
            payload = status.dump()
            return payload if result is None else result
        return result


async def _call_async(target: TaskTarget, call: TaskCall) -> Any:
    # Runs on the process's event-loop thread, where the caller's context
    # variables are not set: the task context is set here.
    with task_context(call.context(target.name)):
        status = async_status_for_task(**call.status_args(target.name))
        try:
            result = await target.obj(status, **call.kwargs())
        except BaseException:
            if not status.dumped:
                await status.aclose()
            raise
        if not status.dumped:
            payload = await status.dump()
            return payload if result is None else result
        return result


def _call_celery(target: TaskTarget, call: TaskCall) -> Any:
    # apply() runs the task here, eagerly; routing_key becomes the request's
    # delivery info, which is where Celery tasks read their queue from.
    with task_context(call.context(target.name)):
        outcome = target.obj.apply(
            kwargs=call.kwargs(),
            task_id=call.taskid,
            throw=True,
            routing_key=call.queue_name,
        )
        return outcome.get(propagate=True)
