"""Calling a custom task with its status object: one path for every caller.

The Celery glue and ``asyncstream run`` both call a task body
``fn(status, *args, jobid=..., paths=..., stream_results=..., **fields)`` through
:class:`TaskInvoker`, which owns what happens around it:

- the task context (who the task is, where its hub is) is set where the body
  runs: the caller's thread for a plain function, the process's event-loop
  thread for an ``async def``;
- the hub's shared connection pool is held for the whole call, so the status,
  ``expand_paths`` and the caller's own requests share it;
- the status: a ``StreamTaskResults`` when ``stream_results`` is true, else a
  ``FileActionStatus`` (their ``Async*`` faces for an ``async def``);
- a body that raises has its status closed (what it recorded is delivered, the
  task is not completed); one interrupted or out of time (``KeyboardInterrupt``,
  a cancellation, the caller's ``out_of_time`` errors) is aborted instead: the
  sending stops and what the hub did not acknowledge is spooled;
- a body that returns without ``dump()`` is dumped, with a
  :class:`ForgottenDumpWarning` for every call that forgot.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from . import _portal
from ._async_status import async_status_for_task, status_for_task
from ._context import TaskContext, task_context
from ._hub_client import HubClient
from ._paths import is_stream_reference

__all__ = ["ForgottenDumpWarning", "Invocation", "TaskInvoker"]

logger = logging.getLogger("asyncstream.invoker")

# Runs before the body, with the task's hub held; a value other than None is
# returned instead of running the body (the Celery glue: a task already done).
Prelude = Callable[[HubClient], Any]


class ForgottenDumpWarning(UserWarning):
    """A custom task returned without calling ``status.dump()``."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of a task: who it is (and its hub), what it is called with."""

    context: TaskContext
    paths: list[Any]
    stream_results: bool = False
    args: tuple[Any, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    status_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def uses_hub(self) -> bool:
        """True when the task streams its results or reads an input stream."""
        return self.stream_results or any(is_stream_reference(p) for p in self.paths)

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the contract."""
        return {
            **self.fields,
            "jobid": self.context.jobid,
            "paths": self.paths,
            "stream_results": self.stream_results,
        }

    def status_args(self) -> dict[str, Any]:
        """Arguments of ``status_for_task`` and its async twin."""
        ctx = self.context
        return {
            "stream_results": self.stream_results,
            "taskname": ctx.taskname,
            "input_paths": self.paths,
            "jobid": ctx.jobid,
            "queue_name": ctx.queue_name,
            "taskid": ctx.taskid,
            **(self.status_options if self.stream_results else {}),
        }


class TaskInvoker:
    """Call task bodies with a status object, the same way for every caller.

    ``out_of_time`` are the exceptions, besides ``KeyboardInterrupt``, that mean
    there is no time left to deliver (Celery's ``SoftTimeLimitExceeded``).
    """

    def __init__(self, *, out_of_time: tuple[type[BaseException], ...] = ()) -> None:
        self.out_of_time: tuple[type[BaseException], ...] = (
            KeyboardInterrupt,
            *out_of_time,
        )

    def invoke(
        self,
        fn: Callable[..., Any],
        invocation: Invocation,
        *,
        prelude: Prelude | None = None,
    ) -> Any:
        """Run ``fn`` to its end from this (worker) thread; return its result."""
        with task_context(invocation.context), self._hub(invocation) as hub:
            if prelude is not None and hub is not None:
                done = prelude(hub)
                if done is not None:
                    return done
            if inspect.iscoroutinefunction(fn):
                return _portal.call(self._invoke_async, fn, invocation)
            return self._invoke_sync(fn, invocation)

    @contextlib.contextmanager
    def _hub(self, invocation: Invocation) -> Iterator[HubClient | None]:
        hub = invocation.context.hub
        if hub is None or not invocation.uses_hub:
            yield None
            return
        with _portal.wrap_async_context(HubClient(hub)) as client:
            yield client

    def _invoke_sync(self, fn: Callable[..., Any], invocation: Invocation) -> Any:
        status = status_for_task(**invocation.status_args())
        try:
            result = fn(status, *invocation.args, **invocation.kwargs())
        except BaseException as exc:
            self._close_after_error(status, exc)
            raise
        if not status.dumped:
            _warn_forgotten_dump(fn, invocation.context)
            dumped = status.dump()
            return dumped if result is None else result
        return result

    async def _invoke_async(
        self, fn: Callable[..., Any], invocation: Invocation
    ) -> Any:
        # The portal runs this on the loop thread, where the caller's context
        # variables are not set: set the task context again here.
        with task_context(invocation.context):
            status = async_status_for_task(**invocation.status_args())
            try:
                result = await fn(status, *invocation.args, **invocation.kwargs())
            except BaseException as exc:
                await self._aclose_after_error(status, exc)
                raise
            if not status.dumped:
                _warn_forgotten_dump(fn, invocation.context)
                dumped = await status.dump()
                return dumped if result is None else result
            return result

    def _close_after_error(self, status: Any, exc: BaseException) -> None:
        """Deliver what the failed task recorded, unless time has already run out."""
        if isinstance(exc, self.out_of_time):
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

    async def _aclose_after_error(self, status: Any, exc: BaseException) -> None:
        if isinstance(exc, (*self.out_of_time, anyio.get_cancelled_exc_class())):
            # Cancelled: the waiting worker thread was interrupted or hit its
            # time limit. Spooling does no network I/O, so it finishes even
            # inside the cancelled scope.
            with anyio.CancelScope(shield=True):
                await status.aabort()
            return
        try:
            await status.aclose()
        except Exception:
            logger.exception("could not deliver the results of a failed task")


def _warn_forgotten_dump(fn: Callable[..., Any], context: TaskContext) -> None:
    # Pointed at the task's own definition, and with a fresh registry: Python's
    # default filter would otherwise show it once per process, and every task
    # that forgets must be told.
    target = inspect.unwrap(fn.func if isinstance(fn, functools.partial) else fn)
    code = getattr(target, "__code__", None)
    warnings.warn_explicit(
        f"custom task {context.taskname!r} (task id {context.taskid}) returned"
        " without status.dump(); asyncstream dumped it so that no result is lost",
        ForgottenDumpWarning,
        filename=code.co_filename if code is not None else "<task>",
        lineno=code.co_firstlineno if code is not None else 0,
        module=getattr(target, "__module__", None) or "asyncstream",
        registry={},
    )
