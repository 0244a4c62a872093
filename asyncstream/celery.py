"""Celery task glue: write a custom task as a plain or ``async def`` function.

::

    from celery import Celery
    from asyncstream.celery import custom_task
    from asyncstream.utils.inputs import expand_paths

    app = Celery("plugins", broker="redis://127.0.0.1:6379/0")

    @custom_task(app, acks_late=True)
    async def delete_handler(status, *, jobid, paths, **fields):
        async for item in expand_paths(paths):
            ...  # act on item["path"]
            await status.add("processed", item)
        return await status.dump()

registers ``dynamo.custom.delete_handler`` as a bound Celery task that accepts
``jobid``, ``paths``, workflow fields and any unknown keyword. The function gets a
status object first: a ``StreamTaskResults`` keyed by the Celery task id when the
hub passes ``stream_results=True``, else a ``FileActionStatus`` (their ``Async*``
faces for an ``async def``). A plain function runs in the worker's thread and uses
the sync shims; an ``async def`` runs on the process's event-loop thread. Either
way the task's id, queue and job are in :func:`asyncstream.current_task_context`
and the queue helpers see the task's queue.

The body is called by the runtime's task invoker (:mod:`._task_invoker`, the
same as ``asyncstream run``'s). Results are flushed at the end of every task,
never at interpreter exit: prefork children leave through ``os._exit``. A task
that forgets ``dump()`` is dumped for it, with a :class:`ForgottenDumpWarning`
each time. A task that fails delivers what it recorded without completing; one
out of time (a soft time limit, an interrupt) stops at once and spools what the
hub did not acknowledge. The hub's settings (the app's configuration, else the
environment) travel with the task context, and one connection pool to the hub
serves the whole task.

A streaming task may run more than once under one id (a message redelivered after
its worker died, ``self.retry()``). Its batch boundaries differ between runs, so
before the body runs the glue asks the hub: a task the hub has completed is not run
again (its stored payload is returned), and the batches of an incomplete earlier
run are dropped (``POST /api/tasks/{id}/reset``) so that nothing counts twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import _portal
from ._config import HubSettings
from ._context import TaskContext
from ._exceptions import ConfigurationError, HubRejectedError
from ._hub_client import HubClient
from ._task_invoker import ForgottenDumpWarning, Invocation, TaskInvoker

__all__ = ["TASK_NAME_PREFIX", "ForgottenDumpWarning", "custom_task"]

logger = logging.getLogger("asyncstream.celery")

TASK_NAME_PREFIX = "dynamo.custom."
# How long the check of an earlier run may retry an unavailable hub.
DEFAULT_RESUME_TIMEOUT = 60.0

_invoker = TaskInvoker(out_of_time=(SoftTimeLimitExceeded,))


def _queue_of(request: Any) -> str | None:
    # Read in the task's own thread: Celery's request is thread-local. With the
    # default exchange per queue, the routing key is the queue's name.
    info = getattr(request, "delivery_info", None) or {}
    name = info.get("routing_key") or info.get("queue")
    return name if isinstance(name, str) and name else None


def _hub_of(app: Any, options: dict[str, Any]) -> HubSettings | None:
    """The task's hub: the status options, else the app's configuration or the
    environment (or the hub of a task context already set, as by
    ``asyncstream run``); ``None`` when none is configured."""
    try:
        return HubSettings.resolve(
            hub_url=options.get("hub_url"),
            api_key=options.get("api_key"),
            verify_tls=options.get("verify_tls"),
            app=app,
        )
    except ConfigurationError:
        return None  # a task that needs a hub says so when it asks for one


@dataclass(frozen=True, slots=True)
class _EarlierRun:
    """What the hub knows of a task id before the body runs."""

    completed: bool
    payload: Any = None
    dropped: int = 0


async def _check_earlier_run(
    client: HubClient, taskid: str, retry_for: float
) -> _EarlierRun:
    """Return a completed run's payload, or drop an incomplete run's batches.

    ``retry_for`` (seconds) bounds the retries of an unavailable hub.
    """
    deadline = client.deadline(retry_for)
    for _ in range(2):
        try:
            task = await client.get_task(taskid, deadline=deadline)
        except HubRejectedError as exc:
            if exc.status_code == 404:
                return _EarlierRun(completed=False)  # the first run
            raise
        if task.get("state") == "completed":
            return _EarlierRun(completed=True, payload=task.get("payload"))
        if not task.get("batches"):
            return _EarlierRun(completed=False)
        try:
            answer = await client.reset_task(taskid, deadline=deadline)
        except HubRejectedError as exc:
            if exc.status_code == 409:
                continue  # completed meanwhile by another run: read it again
            exc.add_note(
                "the hub must support POST /api/tasks/{taskid}/reset"
                " (protocol v1 extension, docs/protocol.md)"
            )
            raise
        return _EarlierRun(completed=False, dropped=int(answer.get("dropped", 0)))
    raise AssertionError("unreachable: a reset answered 409 twice")  # pragma: no cover


def _earlier_run(client: HubClient, taskid: str, timeout: float) -> _EarlierRun:
    earlier = _portal.call(_check_earlier_run, client, taskid, timeout)
    if earlier.completed:
        logger.warning(
            "task %s was completed at the hub by an earlier run: returning its"
            " stored payload without running it again",
            taskid,
        )
    elif earlier.dropped:
        logger.warning(
            "task %s is run again: dropped the %d batches its earlier, unfinished"
            " run left at the hub",
            taskid,
            earlier.dropped,
        )
    return earlier


class _Completed:
    """The stored payload of a run the hub has completed (returned as is)."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


@dataclass(frozen=True, slots=True)
class _TaskBody:
    """What a registered task runs, once per call of the task.

    Built by :func:`custom_task` at registration; the work of every call is in
    :meth:`run`, a function of this module rather than a closure made at
    registration, so that the code that runs a task is the code this module
    holds when the task is called.
    """

    fn: Callable[..., Any]
    taskname: str
    status_options: dict[str, Any]
    resume_timeout: float

    def run(
        self,
        task: Any,
        *args: Any,
        jobid: Any = None,
        paths: list[Any] | None = None,
        stream_results: bool = False,
        **fields: Any,
    ) -> Any:
        """Run the body for the bound Celery ``task``; return its payload."""
        request = task.request
        context = TaskContext(
            taskid=request.id,
            queue_name=_queue_of(request),
            taskname=self.taskname,
            jobid=jobid,
            hub=_hub_of(task.app, self.status_options),
        )
        invocation = Invocation(
            context,
            paths or [],
            stream_results=stream_results,
            args=args,
            fields=fields,
            status_options=self.status_options,
        )
        # Only a streaming task has results at the hub an earlier run could
        # have left there.
        prelude = (
            functools.partial(self._completed_run, request.id)
            if stream_results
            else None
        )
        result = _invoker.invoke(self.fn, invocation, prelude=prelude)
        return result.payload if isinstance(result, _Completed) else result

    def _completed_run(self, taskid: str, client: HubClient) -> _Completed | None:
        """The payload of an earlier run the hub completed, else ``None`` (run)."""
        earlier = _earlier_run(client, taskid, self.resume_timeout)
        return _Completed(earlier.payload) if earlier.completed else None


def custom_task(
    app: Celery | None = None,
    *,
    name: str | None = None,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Register ``fn`` as the bound Celery task ``dynamo.custom.<name>``.

    ``name`` defaults to the function's name; ``task_options`` go to
    ``app.task`` (``acks_late``, ``soft_time_limit``...). With ``app`` the task
    is that app's only; without, it is a ``shared_task``. Knobs of the stream
    status (``batch_size``, ``spool_dir``...) may be given as
    ``status_options={...}``; the hub URL and key come from there, else from the
    app's configuration (``asyncstream_hub_url``, ``asyncstream_api_key``), else
    from the environment.
    """
    status_options: dict[str, Any] = dict(task_options.pop("status_options", {}))
    resume_timeout = float(task_options.pop("resume_timeout", DEFAULT_RESUME_TIMEOUT))

    def decorate(fn: Callable[..., Any]) -> Any:
        body = _TaskBody(fn, name or fn.__name__, status_options, resume_timeout)

        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            return body.run(self, *args, **kwargs)

        run.__name__ = fn.__name__
        run.__qualname__ = fn.__qualname__
        run.__module__ = fn.__module__
        run.__doc__ = fn.__doc__
        if app is None:
            register = shared_task
        else:
            # The task belongs to the app it was given, not to every app made
            # after it too (Celery's ``app.task`` shares by default).
            task_options.setdefault("shared", False)
            register = app.task
        return register(
            bind=True, name=TASK_NAME_PREFIX + body.taskname, **task_options
        )(run)

    return decorate
