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

Results are flushed at the end of every task, never at interpreter exit: prefork
children leave through ``os._exit``. A task that forgets ``dump()`` is dumped for
it, with a :class:`ForgottenDumpWarning`. A task that fails delivers what it
recorded without completing; one out of time (a soft time limit) stops at once
and spools what the hub did not acknowledge.

A streaming task may run more than once under one id (a message redelivered after
its worker died, ``self.retry()``). Its batch boundaries differ between runs, so
before the body runs the glue asks the hub: a task the hub has completed is not run
again (its stored payload is returned), and the batches of an incomplete earlier
run are dropped (``POST /api/tasks/{id}/reset``) so that nothing counts twice.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from celery import Celery, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import _portal
from ._async_status import async_status_for_task, status_for_task
from ._config import ENV_API_KEY, ENV_HUB_URL, HubSettings, lookup_setting
from ._context import TaskContext, task_context
from ._exceptions import HubRejectedError
from ._hub_client import HubClient

__all__ = ["TASK_NAME_PREFIX", "ForgottenDumpWarning", "custom_task"]

logger = logging.getLogger("asyncstream.celery")

TASK_NAME_PREFIX = "dynamo.custom."
# How long the check of an earlier run may retry an unavailable hub.
DEFAULT_RESUME_TIMEOUT = 60.0


class ForgottenDumpWarning(UserWarning):
    """A custom task returned without calling ``status.dump()``."""


def _queue_of(request: Any) -> str | None:
    # Read in the task's own thread: Celery's request is thread-local. With the
    # default exchange per queue, the routing key is the queue's name.
    info = getattr(request, "delivery_info", None) or {}
    name = info.get("routing_key") or info.get("queue")
    return name if isinstance(name, str) and name else None


def _out_of_time(exc: BaseException) -> bool:
    return isinstance(exc, SoftTimeLimitExceeded | KeyboardInterrupt)


def _close_after_error(status: Any, exc: BaseException) -> None:
    """Deliver what the failed task recorded, unless time has already run out."""
    if isinstance(exc, SoftTimeLimitExceeded | KeyboardInterrupt):
        # No time left to flush: stop sending; what the hub acknowledged stays,
        # what it did not is spooled by abort() for `asyncstream resend`.
        abort = getattr(status, "abort", None)
        if abort is not None:
            abort()
        return
    close = getattr(status, "close", None)
    if close is None:
        return  # a FileActionStatus: nothing was sent, nothing to deliver
    try:
        close()
    except Exception:
        logger.exception("could not deliver the results of a failed task")


async def _aclose_after_error(status: Any, exc: BaseException) -> None:
    if _out_of_time(exc) or isinstance(exc, anyio.get_cancelled_exc_class()):
        # Cancelled: the waiting worker thread hit its time limit. Spooling does
        # no network I/O, so it finishes even inside the cancelled scope.
        with anyio.CancelScope(shield=True):
            await status.aabort()
        return
    try:
        await status.aclose()
    except Exception:
        logger.exception("could not deliver the results of a failed task")


def _forgotten_dump(taskname: str) -> None:
    warnings.warn(
        f"custom task {taskname!r} returned without status.dump(); asyncstream"
        " dumped it so that no result is lost",
        ForgottenDumpWarning,
        stacklevel=2,
    )


@dataclass(frozen=True, slots=True)
class _EarlierRun:
    """What the hub knows of a task id before the body runs."""

    completed: bool
    payload: Any = None
    dropped: int = 0


async def _check_earlier_run(
    settings: HubSettings, taskid: str, deadline: float
) -> _EarlierRun:
    """Return a completed run's payload, or drop an incomplete run's batches.

    ``deadline`` (``time.monotonic()`` time) bounds retries of an unavailable hub.
    """
    async with HubClient(settings) as client:
        for _ in range(2):
            try:
                task = await client.request(
                    "GET", f"/api/tasks/{taskid}/", deadline=deadline
                )
            except HubRejectedError as exc:
                if exc.status_code == 404:
                    return _EarlierRun(completed=False)  # the first run
                raise
            if task.get("state") == "completed":
                return _EarlierRun(completed=True, payload=task.get("payload"))
            if not task.get("batches"):
                return _EarlierRun(completed=False)
            try:
                answer = await client.request(
                    "POST",
                    f"/api/tasks/{taskid}/reset",
                    content=b"{}",
                    deadline=deadline,
                )
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


def _earlier_run(
    app: Any, taskid: str, options: dict[str, Any], timeout: float
) -> _EarlierRun:
    settings = HubSettings.resolve(
        hub_url=options.get("hub_url"),
        api_key=options.get("api_key"),
        verify_tls=options.get("verify_tls"),
        app=app,
    )
    earlier = _portal.call(
        _check_earlier_run, settings, taskid, time.monotonic() + timeout
    )
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


def custom_task(
    app: Celery | None = None,
    *,
    name: str | None = None,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Register ``fn`` as the bound Celery task ``dynamo.custom.<name>``.

    ``name`` defaults to the function's name; ``task_options`` go to
    ``app.task`` (``acks_late``, ``soft_time_limit``...). Without ``app`` the
    task is a ``shared_task``. Knobs of the stream status (``batch_size``,
    ``spool_dir``...) may be given as ``status_options={...}``; the hub URL and
    key come from there, else from the app's configuration (``asyncstream_hub_url``,
    ``asyncstream_api_key``), else from the environment.
    """
    status_options: dict[str, Any] = dict(task_options.pop("status_options", {}))
    resume_timeout = float(task_options.pop("resume_timeout", DEFAULT_RESUME_TIMEOUT))

    def decorate(fn: Callable[..., Any]) -> Any:
        taskname = name or fn.__name__
        is_async = inspect.iscoroutinefunction(fn)

        def run(
            self: Any,
            *args: Any,
            jobid: Any = None,
            paths: list[Any] | None = None,
            stream_results: bool = False,
            **fields: Any,
        ) -> Any:
            request = self.request
            paths = paths or []
            context = TaskContext(
                taskid=request.id,
                queue_name=_queue_of(request),
                taskname=taskname,
                jobid=jobid,
            )
            options: dict[str, Any] = {}
            if stream_results:
                options = {
                    "hub_url": lookup_setting(ENV_HUB_URL, app=self.app),
                    "api_key": lookup_setting(ENV_API_KEY, app=self.app),
                    **status_options,
                }
            call = functools.partial(
                fn,
                *args,
                jobid=jobid,
                paths=paths,
                stream_results=stream_results,
                **fields,
            )
            status_args = (stream_results, taskname, paths, jobid, context.queue_name)
            with task_context(context):
                if stream_results:
                    earlier = _earlier_run(
                        self.app, request.id, options, resume_timeout
                    )
                    if earlier.completed:
                        return earlier.payload
                if is_async:
                    return _portal.call(_run_async, context, call, status_args, options)
                return _run_sync(context, call, status_args, options)

        run.__name__ = fn.__name__
        run.__qualname__ = fn.__qualname__
        run.__module__ = fn.__module__
        run.__doc__ = fn.__doc__
        register = app.task if app is not None else shared_task
        return register(bind=True, name=TASK_NAME_PREFIX + taskname, **task_options)(
            run
        )

    return decorate


def _run_sync(
    context: TaskContext,
    call: Callable[[Any], Any],
    status_args: tuple[Any, ...],
    options: dict[str, Any],
) -> Any:
    status = status_for_task(*status_args, taskid=context.taskid, **options)
    try:
        result = call(status)
    except BaseException as exc:
        _close_after_error(status, exc)
        raise
    if not status.dumped:
        _forgotten_dump(context.taskname or "?")
        dumped = status.dump()
        return dumped if result is None else result
    return result


async def _run_async(
    context: TaskContext,
    call: Callable[[Any], Any],
    status_args: tuple[Any, ...],
    options: dict[str, Any],
) -> Any:
    # The portal runs this on the loop thread, where the caller's context
    # variables are not set: set the task context again here.
    with task_context(context):
        status = async_status_for_task(*status_args, taskid=context.taskid, **options)
        try:
            result = await call(status)
        except BaseException as exc:
            await _aclose_after_error(status, exc)
            raise
        if not status.dumped:
            _forgotten_dump(context.taskname or "?")
            dumped = await status.dump()
            return dumped if result is None else result
        return result
