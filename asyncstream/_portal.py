"""The one event-loop thread of a process, the bridge sync code crosses.

Async is the implementation; a sync caller (a Celery task body) hands coroutines to
a per-process loop thread through anyio's blocking portal. The thread starts on
first use, is a daemon (results are flushed at the end of each task, never at
interpreter exit), and is forgotten in a forked child, which starts its own: a
prefork Celery child inherits no running thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._exceptions import UsageError

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_thread: threading.Thread | None = None


async def _serve(ready: Future[BlockingPortal]) -> None:
    async with BlockingPortal() as portal:
        ready.set_result(portal)
        await portal.sleep_until_stopped()


def _forget_after_fork() -> None:
    global _portal, _thread, _lock
    _portal = None
    _thread = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def loop_portal() -> BlockingPortal:
    """The process's portal into its event-loop thread, started on first use."""
    global _portal, _thread
    portal = _portal
    if portal is not None:
        return portal
    with _lock:
        if _portal is None:
            ready: Future[BlockingPortal] = Future()
            _thread = threading.Thread(
                target=anyio.run,
                args=(_serve, ready),
                name="asyncstream-loop",
                daemon=True,
            )
            _thread.start()
            _portal = ready.result()
        return _portal


def in_loop_thread() -> bool:
    """True when called on the process's event-loop thread."""
    return _thread is not None and threading.current_thread() is _thread


def call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn(*args)`` on the loop thread and block until it returns.

    An exception raised in the waiting thread while it blocks (a Celery soft time
    limit, a KeyboardInterrupt) cancels the work it was waiting for, then propagates.
    """
    if in_loop_thread():
        raise UsageError(
            f"sync call of {getattr(fn, '__qualname__', fn)!r} on the asyncstream event"
            " loop thread would deadlock: await the async API instead"
        )
    future = loop_portal().start_task_soon(fn, *args)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise
