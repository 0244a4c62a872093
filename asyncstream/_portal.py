"""The one event-loop thread of a process, the bridge sync code crosses.

Async is the implementation; a sync caller (a Celery task body) hands coroutines to
a per-process loop thread through anyio's blocking portal. The thread starts on
first use, is a daemon (results are flushed at the end of each task, never at
interpreter exit), and is forgotten in a forked child, which starts its own: a
prefork Celery child inherits no running thread.

:func:`call` is the crossing every sync shim makes, so it is kept to one round
trip: the coroutine is handed to the loop as a task of its own
(``asyncio.run_coroutine_threadsafe``) rather than spawned through the portal's
task group, which waits for the spawn and then for the result, two hops of the
loop thread instead of one. :func:`post` is the crossing without a wait, for
work that cannot fail in a way its caller must hear of at once (the sync
``StreamTaskResults`` posts a batch that it knows fits the send budget): the
thread goes on adding instead of sleeping until the loop thread has its turn.
Both are queued in order: what a thread posted runs before what it calls next.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from . import _event_loop
from ._exceptions import UsageError

T = TypeVar("T")

# How long a waiting thread interrupted by an exception waits for the loop side to
# unwind before it lets the exception propagate anyway.
CANCEL_GRACE = 10.0
# A signal sent to the process may land on any thread, the loop's included, and
# then does not wake the main thread from its wait: its Python handler (Ctrl-C,
# a Celery soft time limit) runs only once the main thread runs code again. A
# caller waiting on the loop wakes this often to let it run.
SIGNAL_POLL = 0.1

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# The call each thread is waiting on, so that an interrupt can end it. Its own
# re-entrant lock: a signal handler on a thread that holds it may take it again.
_waiting: dict[int, _CallHandle] = {}
_waiting_lock = threading.RLock()


async def _serve(ready: Future[BlockingPortal]) -> None:
    global _loop
    _loop = asyncio.get_running_loop()
    async with BlockingPortal() as portal:
        ready.set_result(portal)
        await portal.sleep_until_stopped()


def _run_loop(ready: Future[BlockingPortal]) -> None:
    """The loop thread's body: the loop (uvloop where it is installed) serving
    the portal; if it fails before the portal is up, the caller waiting for the
    portal gets the error instead of waiting forever."""
    try:
        _event_loop.run(_serve, ready)
    except BaseException as exc:
        if ready.done():
            raise
        ready.set_exception(exc)


def _forget_after_fork() -> None:
    global _portal, _loop, _thread, _lock
    _portal = None
    _loop = None
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
                target=_run_loop,
                args=(ready,),
                name="asyncstream-loop",
                daemon=True,
            )
            _thread.start()
            _portal = ready.result()
        return _portal


def in_loop_thread() -> bool:
    """True when called on the process's event-loop thread."""
    return _thread is not None and threading.current_thread() is _thread


def _refuse_on_loop_thread(what: object) -> None:
    if in_loop_thread():
        raise UsageError(
            f"sync call of {getattr(what, '__qualname__', what)!r} on the asyncstream"
            " event loop thread would deadlock: await the async API instead"
        )


class _Abandoned(Exception):
    """Ends the loop side of a call whose caller stopped waiting."""


class _CallHandle:
    """What the waiting thread needs to cancel the loop side of one call.

    The waiting thread may be interrupted even before the portal hands it a
    future (the task can start first), so cancellation goes through this handle
    rather than the future: ``scope`` is set by the task when it starts, and a
    task that starts after the caller gave up cancels itself.
    """

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.abandoned = False
        self.interrupted = False
        self.interrupted_at = 0.0  # time.monotonic() of the interrupt
        self.unwound = threading.Event()

    def abandon(self, portal: BlockingPortal) -> None:
        self.abandoned = True
        scope = self.scope
        if scope is None:  # not started yet: it will see `abandoned` and stop
            return
        if not self.unwound.is_set():
            portal.start_task_soon(scope.cancel)
        # Wait for the loop side to stop, so that what the caller does next
        # (close, retry) never races the work it abandoned.
        self.unwound.wait(CANCEL_GRACE)


def call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn(*args)`` on the loop thread and block until it returns.

    An exception raised in the waiting thread while it blocks (a Celery soft time
    limit, a KeyboardInterrupt) cancels the work it was waiting for and, once that
    work has unwound (or after ``CANCEL_GRACE`` seconds), propagates.
    """
    _refuse_on_loop_thread(fn)
    portal = loop_portal()
    handle = _CallHandle()

    async def run() -> T:
        try:
            with anyio.CancelScope() as scope:
                handle.scope = scope
                if handle.abandoned:
                    scope.cancel()
                return await fn(*args)
            raise _Abandoned
        finally:
            handle.unwound.set()

    me = threading.get_ident()
    with _waiting_lock:
        outer = _waiting.get(me)
        _waiting[me] = handle
    try:
        assert _loop is not None
        # In an empty context, as a task the portal spawns would run: the
        # caller's context variables stay the caller's.
        future = contextvars.Context().run(
            asyncio.run_coroutine_threadsafe, run(), _loop
        )
        result = _wait_for(future, handle)
    except BaseException:
        if handle.interrupted:
            raise KeyboardInterrupt from None
        handle.abandon(portal)
        raise
    finally:
        with _waiting_lock:
            if outer is None:
                _waiting.pop(me, None)
            else:
                _waiting[me] = outer
    if handle.interrupted:
        raise KeyboardInterrupt
    return result


def post(fn: Callable[..., object], *args: Any) -> bool:
    """Have the loop thread run ``fn(*args)`` soon, in a task of its own; do not
    wait for it.

    False, and nothing queued, when the loop thread is not running (not started
    yet, or gone): the caller then crosses with :func:`call`, which starts it.
    ``fn`` runs in an empty context, before anything this thread hands to the
    loop afterwards; what it raises goes to the loop's exception handler, so it
    must deal with its own failures.
    """
    loop = _loop
    if loop is None or _portal is None:
        return False
    try:
        loop.call_soon_threadsafe(_start, fn, args, context=contextvars.Context())
    except RuntimeError:  # the loop is closed
        return False
    return True


def _start(fn: Callable[..., object], args: tuple[Any, ...]) -> None:
    # A task, not a bare callback: anyio (a task group's start_soon, an Event)
    # finds its backend from the current task.
    asyncio.get_running_loop().create_task(_run_posted(fn, args))


async def _run_posted(fn: Callable[..., object], args: tuple[Any, ...]) -> None:
    fn(*args)


def _wait_for(future: Future[T], handle: _CallHandle) -> T:
    """``future.result()``, waking every :data:`SIGNAL_POLL` seconds.

    Interrupted, it waits for the work to unwind for ``CANCEL_GRACE`` seconds at
    most, as an exception in this thread does: work that cannot unwind (a
    worker thread stuck in a system call on a dead file server) must not keep
    the interrupt from the task.
    """
    while True:
        try:
            return future.result(SIGNAL_POLL)
        except TimeoutError:
            if future.done():
                raise  # the work's own TimeoutError
            # Not done: a pending signal handler runs here, or the wait goes on.
            if (
                handle.interrupted
                and time.monotonic() - handle.interrupted_at >= CANCEL_GRACE
            ):
                raise KeyboardInterrupt from None


def interrupt_thread(thread_id: int) -> None:
    """Interrupt another thread as Ctrl-C interrupts the main one.

    A thread blocked on the loop cannot take an exception until it wakes: the
    call it waits for is cancelled, and it raises ``KeyboardInterrupt`` once that
    has unwound (or after ``CANCEL_GRACE`` seconds). A thread running Python
    code gets ``KeyboardInterrupt`` at its next instruction.
    """
    with _waiting_lock:
        handle = _waiting.get(thread_id)
        if handle is not None:
            handle.interrupted_at = time.monotonic()  # first: read once set
            handle.interrupted = True
            handle.abandoned = True  # a call not started yet cancels itself
            scope, portal = handle.scope, _portal
            if scope is not None and portal is not None:
                portal.start_task_soon(scope.cancel)
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread_id), ctypes.py_object(KeyboardInterrupt)
        )


def wrap_async_context(cm: AbstractAsyncContextManager[T]) -> AbstractContextManager[T]:
    """Use an async context manager from sync code, through the loop thread.

    Its ``__aenter__`` and ``__aexit__`` run in one task on the loop thread, so
    task groups and cancel scopes inside it are entered and left by the same task.
    """
    _refuse_on_loop_thread(cm)
    return loop_portal().wrap_async_context_manager(cm)
