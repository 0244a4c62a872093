"""Keep an async context open in a task of its own, for objects used without ``with``.

anyio's task groups must be entered and left by the same task. The seed's usage
(``status = ...; await status.add(...); return await status.dump()``) has no block
to host the sender's task group, so :class:`DetachedContext` enters the context in
a host task and leaves it, in that same task, when :meth:`DetachedContext.close`
is awaited — the in-loop twin of anyio's ``BlockingPortal.wrap_async_context_manager``.

:class:`OpenedOnce` is the lifecycle of an object opened either way.

Needs asyncio (the backend asyncstream runs on): anyio has no detached tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import anyio

from ._exceptions import UsageError


class DetachedContext:
    """An async context entered and, on :meth:`close`, left by a host task."""

    def __init__(self, context: AbstractAsyncContextManager[Any], name: str) -> None:
        self._context = context
        self._name = name
        self._release = anyio.Event()
        self._done = anyio.Event()
        self._entered = anyio.Event()
        self._enter_error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._done.is_set() else "open"
        return f"<DetachedContext {self._name} {state}>"

    @property
    def closed(self) -> bool:
        """True once the host task has left the context."""
        return self._done.is_set()

    async def open(self) -> None:
        """Start the host task and wait until it has entered the context."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                f"{self._name} needs 'async with' outside asyncio"
            ) from None
        # Keep a reference: the loop only holds tasks weakly.
        self._task = loop.create_task(self._host(), name=self._name)
        with anyio.CancelScope(shield=True):  # entering does no I/O
            await self._entered.wait()
        if self._enter_error is not None:
            raise self._enter_error

    async def _host(self) -> None:
        try:
            try:
                await self._context.__aenter__()
            except BaseException as exc:
                self._enter_error = exc
                return
            finally:
                self._entered.set()
            # Leave the context in this very task, also when it is cancelled (the
            # loop shutting down); not from inside another cancel scope, which
            # anyio would refuse.
            try:
                await self._release.wait()
            except BaseException as exc:
                if not await self._context.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                await self._context.__aexit__(None, None, None)
        finally:
            self._done.set()

    async def close(self) -> None:
        """Let the host task leave the context; wait until it has. Idempotent."""
        self._release.set()
        if self._task is not None:
            with anyio.CancelScope(shield=True):
                await self._done.wait()


Lifecycle = Literal["unopened", "opening", "open", "closed"]


class OpenedOnce:
    """The lifecycle of an object that opens its resources once, with or without
    a block: unopened → open → closed.

    ``async with`` the owner enters ``resources()`` in the caller's task
    (:meth:`enter`, :meth:`exit`); used without a block, the owner opens them in
    a :class:`DetachedContext` (:meth:`open_detached`) and :meth:`shutdown`
    leaves them. ``name`` says who the owner is in errors.
    """

    def __init__(
        self,
        resources: Callable[[], AbstractAsyncContextManager[Any]],
        name: Callable[[], str],
    ) -> None:
        self._resources = resources
        self._name = name
        self.state: Lifecycle = "unopened"
        self._managed: AbstractAsyncContextManager[None] | None = None
        self.detached: DetachedContext | None = None

    @asynccontextmanager
    async def _opened(self) -> AsyncIterator[None]:
        async with self._resources():
            self.state = "open"
            try:
                yield
            finally:
                self.state = "closed"

    async def enter(self) -> None:
        """Open in the caller's task (``async with`` the owner)."""
        if self.state != "unopened":
            raise UsageError(f"{self._name()} can only be opened once")
        self._managed = self._opened()
        await self._managed.__aenter__()

    async def exit(self) -> None:
        """Leave what :meth:`enter` opened."""
        assert self._managed is not None
        await self._managed.__aexit__(None, None, None)

    async def open_detached(self) -> None:
        """Open in a host task of its own, until :meth:`shutdown`."""
        self.state = "opening"
        self.detached = DetachedContext(self._opened(), self._name())
        await self.detached.open()

    async def shutdown(self) -> None:
        """Close now if opened without a block (else the block's exit closes)."""
        if self.detached is not None:
            await self.detached.close()
        elif self._managed is None:
            self.state = "closed"
