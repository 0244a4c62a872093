"""The runtime's own notion of "the task running here".

Celery keeps its request thread-local; async code runs on another thread (the
process's event-loop thread), so the task glue and the local runner copy what they
know into a context variable, which follows the task into every coroutine it awaits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["TaskContext", "current_task_context", "task_context"]


@dataclass(frozen=True, slots=True)
class TaskContext:
    """Who is running: the task's id, its celery queue and its job."""

    taskid: str | None = None
    queue_name: str | None = None
    taskname: str | None = None
    jobid: Any = None


_current: ContextVar[TaskContext | None] = ContextVar(
    "asyncstream_task_context", default=None
)


def current_task_context() -> TaskContext | None:
    """The context set by the innermost :func:`task_context`, if any."""
    return _current.get()


@contextmanager
def task_context(context: TaskContext) -> Iterator[TaskContext]:
    """Make ``context`` the current task context for the duration of the block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
