"""Celery task glue: write a custom task as a plain or ``async def`` function.

::

    from celery import Celery
    from asyncstream.celery import custom_task
    from asyncstream.utils.inputs import expand_paths

    app = Celery("plugins", broker="redis://127.0.0.1:6379/0")

    @custom_task(app)
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
the sync shims; an ``async def`` runs on the process's event-loop thread.

Results are flushed at the end of every task, never at interpreter exit: prefork
children leave through ``os._exit``. A task that forgets ``dump()`` is dumped for
it, with a warning.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Callable
from typing import Any

from celery import Celery, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from . import _portal
from ._async_status import async_status_for_task, status_for_task
from ._config import ENV_API_KEY, ENV_HUB_URL, lookup_setting
from ._context import TaskContext, task_context

__all__ = ["TASK_NAME_PREFIX", "ForgottenDumpWarning", "custom_task"]

logger = logging.getLogger("asyncstream.celery")

TASK_NAME_PREFIX = "dynamo.custom."


class ForgottenDumpWarning(UserWarning):
    """A custom task returned without calling ``status.dump()``."""


def _queue_of(request: Any) -> str | None:
    # Read in the task's own thread: Celery's request is thread-local.
    info = getattr(request, "delivery_info", None) or {}
    name = info.get("routing_key") or info.get("queue")
    return name if isinstance(name, str) and name else None


def _close_after_error(status: Any, exc: BaseException) -> None:
    """Deliver what the failed task recorded, unless time has already run out."""
    abort = getattr(status, "abort", None)
    if isinstance(exc, SoftTimeLimitExceeded | KeyboardInterrupt) or abort is None:
        # No time left to flush: stop sending; what the hub acknowledged stays,
        # what it did not is spooled by abort() for `asyncstream resend`.
        if abort is not None:
            abort()
        return
    try:
        status.close()
    except Exception:
        logger.exception("could not deliver the results of a failed task")


async def _aclose_after_error(status: Any, exc: BaseException) -> None:
    abort = getattr(status, "aabort", None)
    if abort is None:
        return
    if isinstance(exc, SoftTimeLimitExceeded | KeyboardInterrupt):
        await abort()
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
        stacklevel=3,
    )


def custom_task(
    app: Celery | None = None,
    *,
    name: str | None = None,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Register ``fn`` as the bound Celery task ``dynamo.custom.<name>``.

    ``name`` defaults to the function's name; ``task_options`` go to
    ``app.task`` (``acks_late``, ``soft_time_limit``...). Without ``app`` the
    task is a ``shared_task``. Status knobs (``batch_size``...) may be given in
    ``task_options["status_options"]``.
    """
    status_options: dict[str, Any] = dict(task_options.pop("status_options", {}))

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
            context = TaskContext(
                taskid=request.id,
                queue_name=_queue_of(request),
                taskname=taskname,
                jobid=jobid,
            )
            options = {
                "hub_url": lookup_setting(ENV_HUB_URL, app=self.app),
                "api_key": lookup_setting(ENV_API_KEY, app=self.app),
                **status_options,
            }
            call = functools.partial(
                fn, *args, jobid=jobid, paths=paths or [], stream_results=stream_results, **fields
            )
            status_args = (stream_results, taskname, paths or [], jobid, context.queue_name)
            with task_context(context):
                if is_async:
                    return _portal.call(
                        _run_async, context, call, status_args, request.id, options
                    )
                status = status_for_task(
                    *status_args, taskid=request.id, **(options if stream_results else {})
                )
                try:
                    result = call(status)
                except BaseException as exc:
                    _close_after_error(status, exc)
                    raise
                if not status.dumped:
                    _forgotten_dump(taskname)
                    dumped = status.dump()
                    return dumped if result is None else result
                return result

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        register = app.task if app is not None else shared_task
        return register(bind=True, name=TASK_NAME_PREFIX + taskname, **task_options)(run)

    return decorate


async def _run_async(
    context: TaskContext,
    call: Callable[[Any], Any],
    status_args: tuple[Any, ...],
    taskid: str,
    options: dict[str, Any],
) -> Any:
    # The portal runs this on the loop thread, where the caller's context
    # variables are not set: set the task context again here.
    with task_context(context):
        stream_results = status_args[0]
        status = async_status_for_task(
            *status_args, taskid=taskid, **(options if stream_results else {})
        )
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
