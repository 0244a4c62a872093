"""The runtime's own notion of "the task running here".

Celery keeps its request thread-local; async code runs on another thread (the
process's event-loop thread), so the task invoker copies what it knows into a
context variable, which follows the task into every coroutine it awaits. The
context says who the task is and where its hub is: the status, ``expand_paths``
and the queue helpers read it there, never from a changed environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ._config import HubSettings, task_hub
from ._identity import TaskIdentity

__all__ = ["TaskContext", "current_task_context", "task_context"]


@dataclass(frozen=True, slots=True)
class TaskContext(TaskIdentity):
    """Who is running (the task's id, its queue, its name and job) and its hub.

    ``hub`` is the hub the task's results and input streams belong to; a
    setting passed as an argument still wins over it.
    """

    hub: HubSettings | None = field(default=None, repr=False)

    @property
    def identity(self) -> TaskIdentity:
        """The task's identity alone."""
        return TaskIdentity(self.taskid, self.queue_name, self.taskname, self.jobid)


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
        with task_hub(context.hub):
            yield context
    finally:
        _current.reset(token)
