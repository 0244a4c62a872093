"""Find a custom task by ``MODULE:FUNCTION`` and call it the way a worker would.

Three kinds of task are run alike: a plain function and an ``async def`` of the
glue's shape ``fn(status, *, jobid, paths, **fields)`` are called by the same
task invoker as the Celery glue (:mod:`._task_invoker`: status choice, close or
abort on error, forgotten ``dump()``); a Celery task (the glue's ``custom_task``
or a plain ``@app.task(bind=True)``) runs eagerly with ``task.apply`` -- no
broker, no worker -- under the given task id and queue.
Every kind is called from a worker thread, as Celery's threads pool would, so the
sync shims and the process's event-loop thread behave as in production.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from ._context import task_context
from ._exceptions import InvalidInputError
from ._task_invoker import Invocation, TaskInvoker

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


_invoker = TaskInvoker()


def call_task(target: TaskTarget, invocation: Invocation) -> Any:
    """Run the task to its end in this (worker) thread and return what it returned.

    Its own exceptions come out as :class:`TaskRaisedError` from the original.
    """
    try:
        if target.kind == "celery":
            return _call_celery(target, invocation)
        return _invoker.invoke(target.obj, invocation)
    except Exception as exc:
        raise TaskRaisedError(f"task raised {type(exc).__name__}: {exc}") from exc


def _call_celery(target: TaskTarget, invocation: Invocation) -> Any:
    # apply() runs the task here, eagerly; routing_key becomes the request's
    # delivery info, which is where Celery tasks read their queue from. The
    # context set around it carries the run's hub into the task glue.
    with task_context(invocation.context):
        outcome = target.obj.apply(
            kwargs=invocation.kwargs(),
            task_id=invocation.context.taskid,
            throw=True,
            routing_key=invocation.context.queue_name,
        )
        return outcome.get(propagate=True)
