"""The engine behind ``expand_paths``: a task's inputs as a flat sequence of pages.

:class:`PathExpansion` chains the task's inline path objects and its input streams
(each read by a :class:`PagePrefetcher`) with aiostream, whose stream context closes
every source deterministically. It is an async context manager because the
prefetchers run in a task group that must be entered and left by one task: the
consumer's own task (``async with``), a host task of its own (bare ``async for``),
or a task on the process's loop thread (sync iteration, through the portal).

Streams are read one after the other within one budget of pages: the next
stream's prefetcher starts once at most a budget's worth of the current one's
pages is left to request, with one page lent, so its first page is answered, and
the pages that page announces are known, by the time the current one has every
page requested: they are on their way before the current stream ends instead of
two round trips after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self

import anyio
from aiostream import operator, stream
from anyio.abc import AsyncResource, TaskGroup

from .._exceptions import StreamError, UsageError
from .._hub_client import HubClient
from .._pager import PagePrefetcher, PrefetchStatistics
from .._paths import PathObject
from .._prefetch_depth import PrefetchDepth
from .._prefetch_policy import PrefetchOptions

# A run of inline path objects, already normalised, or one stream reference.
Segment = list[PathObject] | dict[str, Any]


@operator
async def _stream_pages(
    expansion: PathExpansion, index: int, reference: dict[str, Any]
) -> AsyncIterator[list[PathObject]]:
    prefetcher = await expansion.open_stream(index, reference)
    read = 0
    try:
        async for page in prefetcher:
            read += len(page)
            yield page
    finally:
        await prefetcher.aclose()
    announced = reference.get("count")
    if isinstance(announced, int) and read < announced:
        # The stream was closed short of what its reference announced: its
        # writer failed. Ending quietly would let the task complete at the hub
        # as if it had seen its whole input.
        raise StreamError(
            f"input stream {reference['stream']} ended after {read} of the"
            f" {announced} paths its reference announced: it was cut short"
        )


class PathExpansion(AsyncResource):
    """The pages of a task's ``paths``, inline runs and streams, in order.

    ``client_factory`` is called once, on entry, and only if there is a stream;
    ``owns_client`` says whether the client is closed on exit.
    """

    def __init__(
        self,
        segments: Sequence[Segment],
        *,
        client_factory: Callable[[], HubClient] | None,
        owns_client: bool,
        options: PrefetchOptions,
    ) -> None:
        self._segments = list(segments)
        self._client_factory = client_factory
        self._owns_client = owns_client
        self.options = options
        self._client: HubClient | None = None
        self._task_group: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self.current: PagePrefetcher | None = None
        self._current_index = -1
        # The next stream, started while the current one's last pages are on
        # their way: its first page comes within the same budget of pages,
        # instead of one round trip (and one more for the pages it announces)
        # after the current stream ends.
        self._next: tuple[int, PagePrefetcher] | None = None
        self.streams_read = 0
        # One adaptive depth for every stream: streams are read one after the
        # other, and the next starts at the depth the last one settled at.
        self._depth = PrefetchDepth(options.prefetch)

    @property
    def has_streams(self) -> bool:
        """True if any segment is a stream reference (a hub client is needed)."""
        return any(isinstance(s, dict) for s in self._segments)

    def inline_segments(self) -> Iterator[list[PathObject]]:
        """The runs of inline path objects, when there is no stream to read."""
        for segment in self._segments:
            if not isinstance(segment, list):
                raise UsageError("this expansion reads streams: enter it first")
            yield segment

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            if self.has_streams and self._client_factory is not None:
                self._client = self._client_factory()
                if self._owns_client:
                    stack.push_async_callback(_close_shielded, self._client)
            self._task_group = await stack.enter_async_context(
                anyio.create_task_group()
            )
            # Streams close themselves when the chain is closed; cancelling the
            # group as well covers a prefetcher that was started but never read.
            stack.callback(self._task_group.cancel_scope.cancel)
            sources = [
                stream.just(s) if isinstance(s, list) else _stream_pages(self, i, s)
                for i, s in enumerate(self._segments)
            ]
            self._pages = await stack.enter_async_context(
                stream.chain(*sources).stream()
            )
            stack.push_async_callback(self._close_next)
            self._stack = stack.pop_all()
        return self

    async def aclose(self) -> None:
        """Close the open stream (cancelling its prefetch) and an owned client."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def next_page(self) -> list[PathObject] | None:
        """The next page of path objects, or ``None`` at the end."""
        if self._stack is None:
            return None
        try:
            return await anext(self._pages)
        except StopAsyncIteration:
            return None

    async def open_stream(
        self, index: int, reference: dict[str, Any]
    ) -> PagePrefetcher:
        """The prefetcher of segment ``index``, the stream ``reference`` points
        to: started already if the stream before it had every page requested."""
        assert self._task_group is not None
        started, self._next = self._next, None
        if started is not None and started[0] == index:
            prefetcher = started[1]
            prefetcher.hand_over()
        else:
            if started is not None:  # not reached: segments are read in order
                await started[1].aclose()
            prefetcher = self._prefetcher(index, reference)
            await prefetcher.start(self._task_group)
        self.current, self._current_index = prefetcher, index
        self.streams_read += 1
        if prefetcher.near_end:  # told while it was not current yet
            self._start_after(index)
        return prefetcher

    def _prefetcher(self, index: int, reference: dict[str, Any]) -> PagePrefetcher:
        assert self._client is not None
        options = self.options
        return PagePrefetcher(
            self._client,
            reference["stream"],
            page_size=options.page_size,
            prefetch=options.prefetch,
            wait=options.wait,
            idle_timeout=options.idle_timeout,
            depth=self._depth,
            on_near_end=lambda: self._start_after(index),
        )

    def _start_after(self, index: int) -> None:
        """Segment ``index`` has at most a budget's worth of pages left to
        request: if it is the stream being read, start the next stream with
        what it leaves of the budget."""
        current = self.current
        if index != self._current_index or current is None or self._next is not None:
            return
        segments = self._segments
        following = range(index + 1, len(segments))
        next_index = next((i for i in following if isinstance(segments[i], dict)), -1)
        if next_index < 0 or self._task_group is None:
            return
        reference = segments[next_index]
        assert isinstance(reference, dict)
        prefetcher = self._prefetcher(next_index, reference)
        prefetcher.lend(0)
        prefetcher.start_soon(self._task_group)
        current.successor = prefetcher
        current.share_budget()
        self._next = (next_index, prefetcher)

    async def _close_next(self) -> None:
        started, self._next = self._next, None
        if started is not None:
            await started[1].aclose()

    def statistics(self) -> PrefetchStatistics | None:
        """The statistics of the stream read last, if any."""
        return None if self.current is None else self.current.statistics()


async def _close_shielded(client: HubClient) -> None:
    # Closing runs while the consumer may be cancelled; the pool must still close.
    with anyio.CancelScope(shield=True):
        await client.aclose()
