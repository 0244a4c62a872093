"""``expand_paths``: a task's ``paths`` as a flat stream of path objects.

The port of ``arcapix.dynamo.server.utils.inputs.expand_paths``. Inline path
objects pass through (strings become ``{"path": s}``) and each stream reference
``{"stream": url, "count": n}`` is read from the hub page by page, a bounded number
of pages ahead, so memory never grows with the length of a stream::

    for path in expand_paths(paths):            # in a Celery task body
        ...
    async with expand_paths(paths) as inputs:   # in async code
        async for path in inputs:
            ...
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import AbstractContextManager, aclosing
from typing import Any, Literal, Self

import httpx
from anyio.abc import AsyncResource

from .. import _portal
from .._config import HubSettings
from .._detached import DetachedContext
from .._exceptions import InvalidPathError, PathTypeError, UsageError
from .._hub_client import HubClient
from .._pager import PrefetchStatistics
from .._paths import PathObject, check_stream_reference, is_stream_reference
from .._paths import to_path_object as _to_path_object
from .._prefetch_policy import DEFAULT_PAGE_SIZE, PrefetchOptions
from .._retry import RetryPolicy
from ._expansion import PathExpansion, Segment

__all__ = ["ExpandedPaths", "expand_paths"]

_Mode = Literal["unopened", "async", "detached", "sync", "closed"]


class ExpandedPaths(AsyncResource):
    """The path objects of a task's inputs, for ``async for`` or plain ``for``.

    Use it as ``async with``/``with`` to close it deterministically; a bare loop
    closes it when the loop ends, breaks or raises. Closing cancels the prefetch
    and closes the connections it opened. Sync iteration hands whole pages from
    the process's event-loop thread, never single paths.
    """

    def __init__(self, expansion: PathExpansion) -> None:
        self._expansion = expansion
        self._mode: _Mode = "unopened"
        self._sync_cm: AbstractContextManager[PathExpansion] | None = None
        self._detached: DetachedContext | None = None

    def __repr__(self) -> str:
        stats = self._expansion.statistics()
        text = f"<ExpandedPaths {self._mode} streams={self._expansion.streams_read}"
        if stats is not None:
            text += f" reading={stats.url} pages={stats.pages_fetched}"
        return text + ">"

    def statistics(self) -> PrefetchStatistics | None:
        """The prefetch statistics of the stream read last, if any."""
        return self._expansion.statistics()

    def _check_unopened(self) -> None:
        if self._mode != "unopened":
            raise UsageError(f"{self!r} was already opened: it can be iterated once")

    # -- async ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_unopened()
        await self._expansion.__aenter__()
        self._mode = "async"
        return self

    async def aclose(self) -> None:
        """Stop reading: cancel the prefetch, close connections. Idempotent."""
        mode, self._mode = self._mode, "closed"
        if mode == "async":
            await self._expansion.aclose()
        elif mode == "detached" and self._detached is not None:
            await self._detached.close()
        elif mode == "sync":
            self._mode = mode
            raise UsageError(f"{self!r} was opened for sync iteration: use close()")

    def __aiter__(self) -> AsyncIterator[PathObject]:
        return self._iterate_async()

    async def _iterate_async(self) -> AsyncIterator[PathObject]:
        async with aclosing(self._pages_async()) as pages:
            async for page in pages:
                for item in page:
                    yield item

    async def _pages_async(self) -> AsyncGenerator[list[PathObject], None]:
        """The path objects a page at a time, for a reader that takes them in
        bulk (``apply_paths``); opened and closed as ``async for`` would."""
        detached = self._mode == "unopened"
        try:
            if detached:
                await self._open_detached()
            elif self._mode not in ("async", "detached"):
                raise UsageError(f"{self!r} cannot be iterated with 'async for'")
            while (page := await self._expansion.next_page()) is not None:
                yield page
        finally:
            if detached:
                await self.aclose()

    async def _open_detached(self) -> None:
        # A bare 'async for' gives no block to host the prefetch task group, and
        # its iterator may be finalised by another task: the group lives in a host
        # task of its own, which aclose() stops and waits for.
        self._mode = "detached"
        self._detached = DetachedContext(self._expansion, repr(self))
        await self._detached.open()

    # -- sync ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._check_unopened()
        if self._expansion.has_streams:
            cm = _portal.wrap_async_context(self._expansion)
            cm.__enter__()
            self._sync_cm = cm
        self._mode = "sync"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading from sync code; blocks until the loop side has unwound."""
        mode, self._mode = self._mode, "closed"
        if mode in ("async", "detached"):
            self._mode = mode
            raise UsageError(f"{self!r} was opened for async iteration: use aclose()")
        cm, self._sync_cm = self._sync_cm, None
        if cm is not None:
            cm.__exit__(None, None, None)

    def __iter__(self) -> Iterator[PathObject]:
        return self._iterate_sync()

    def _iterate_sync(self) -> Iterator[PathObject]:
        own = self._mode == "unopened"
        if own:
            self.__enter__()
        elif self._mode != "sync":
            raise UsageError(f"{self!r} cannot be iterated with 'for'")
        try:
            if self._sync_cm is None:  # inline paths only: no hub, no loop thread
                for segment in self._expansion.inline_segments():
                    yield from segment
                return
            while (page := _portal.call(self._expansion.next_page)) is not None:
                yield from page
        finally:
            # Also on GeneratorExit (a break): the loop side is closed before the
            # consumer's next statement runs.
            if own:
                self.close()


def _segments(paths: Sequence[Any], page_size: int) -> list[Segment]:
    segments: list[Segment] = []
    run: list[PathObject] = []
    for index, item in enumerate(paths):
        try:
            if is_stream_reference(item):
                if run:
                    segments.append(run)
                    run = []
                segments.append(check_stream_reference(item))
                continue
            run.append(_to_path_object(item))
        except InvalidPathError as exc:
            raise type(exc)(f"paths[{index}]: {exc}") from None
        if len(run) >= page_size:
            segments.append(run)
            run = []
    if run:
        segments.append(run)
    return segments


def expand_paths(
    paths: Sequence[Any],
    *,
    hub_url: str | None = None,
    api_key: str | None = None,
    client: HubClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    prefetch: int | None = None,
    idle_timeout: float = 300.0,
    wait: float = 5.0,
    retry_policy: RetryPolicy | None = None,
) -> ExpandedPaths:
    """Yield the path objects of a task's ``paths``, expanding stream references.

    ``paths`` holds path strings, path objects and stream references in any mix;
    path objects come out in order, each stream's paths where its reference was.
    A hub is only contacted, and its settings (``hub_url``/``api_key``, else
    ``ASYNCSTREAM_HUB_URL``/``ASYNCSTREAM_API_KEY``) only needed, if there is a
    stream. ``client`` reuses an open :class:`HubClient` of the caller's event loop
    (async iteration only); ``transport`` is an ``httpx`` transport for tests.

    Each stream is read ``page_size`` paths a page, at most ``prefetch`` pages
    ahead of the consumer (up to ``prefetch`` requests at once from a hub that
    announces the pages it can serve ahead). ``None``, the default, adapts: the
    depth grows while the task waits on the network and shrinks while the task
    is the slower side, up to 28 pages within a 32 MiB budget. An open stream is
    long-polled ``wait`` seconds at a time and fails with
    :class:`StreamIdleTimeout` after ``idle_timeout`` seconds without a new path.
    Bad items raise :class:`InvalidPathError` or :class:`PathTypeError` naming
    their index.
    """
    if not isinstance(paths, list | tuple):
        raise PathTypeError(
            "paths must be a list of paths, path objects or stream references,"
            f" got {type(paths).__name__} {paths!r:.200}"
        )
    options = PrefetchOptions(page_size, prefetch, wait, idle_timeout)
    segments = _segments(paths, page_size)
    factory = None
    if client is not None:
        factory = lambda: client  # noqa: E731
    elif any(isinstance(s, dict) for s in segments):
        settings = HubSettings.resolve(hub_url=hub_url, api_key=api_key)
        factory = lambda: HubClient(  # noqa: E731
            settings, transport=transport, retry_policy=retry_policy
        )
    expansion = PathExpansion(
        segments, client_factory=factory, owns_client=client is None, options=options
    )
    return ExpandedPaths(expansion)
