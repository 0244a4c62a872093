"""Reading one input stream page by page, with a bounded budget of pages ahead.

:class:`~._prefetch_policy.PrefetchPolicy` decides (no I/O): may another request
start, is the stream done, idle too long, going round in circles, how long to pause
after an empty page. :class:`PagePrefetcher` only does the I/O: one fetch task
requests pages with the policy's blessing and hands them to the consumer over a
memory stream.

A page counts against the budget from the moment its request starts until the
consumer asks for the page after it, so a slow consumer throttles the fetching
and at most ``prefetch`` pages are ever held, whatever the stream's length.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from typing import Literal, Self

import anyio
from anyio.abc import AsyncResource, TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._exceptions import UsageError
from ._hub_client import HubClient
from ._paths import PathObject
from ._prefetch_policy import PrefetchOptions, PrefetchPolicy, parse_page
from ._retry import Clock, Sleep

PrefetcherState = Literal["unopened", "open", "closed"]

# Retry budget of one page on top of its long-poll wait: past it the hub is down.
DEFAULT_PAGE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class PrefetchStatistics:
    """A snapshot of a :class:`PagePrefetcher`."""

    url: str
    state: PrefetcherState
    prefetch_limit: int
    pages_outstanding: int
    max_outstanding: int
    pages_buffered: int
    pages_fetched: int
    paths_fetched: int
    requests: int
    empty_polls: int
    retries: int


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


_Item = list[PathObject] | _Failed


class PagePrefetcher(AsyncResource):
    """Iterate the pages of one input stream, at most ``prefetch`` pages ahead.

    ``async with PagePrefetcher(client, url) as pages: async for page in pages``.
    Closing it (or leaving the block) cancels an in-flight request. ``start()``
    runs the fetch task in a task group the caller owns instead.
    """

    def __init__(
        self,
        client: HubClient,
        url: str,
        *,
        page_size: int = 1000,
        prefetch: int = 2,
        wait: float = 5.0,
        idle_timeout: float = 300.0,
        page_timeout: float = DEFAULT_PAGE_TIMEOUT,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        PrefetchOptions(page_size, prefetch, wait, idle_timeout)  # validates
        self.url = url
        self._client = client
        self._page_size, self._page_timeout = page_size, page_timeout
        self._clock, self._sleep = clock, sleep
        self._policy = PrefetchPolicy(prefetch, idle_timeout, wait, idle_since=clock())
        self._state: PrefetcherState = "unopened"
        self._holding = False
        self._stack: AsyncExitStack | None = None
        self._pages = self._paths = self._requests = self._retries = 0

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<PagePrefetcher {s.url} {s.state} outstanding={s.pages_outstanding}"
            f"/{s.prefetch_limit} pages={s.pages_fetched} paths={s.paths_fetched}"
            f" retries={s.retries}>"
        )

    def statistics(self) -> PrefetchStatistics:
        """What the prefetcher holds and has done so far."""
        buffered = 0
        if self._state == "open":
            buffered = self._receive.statistics().current_buffer_used
        return PrefetchStatistics(
            url=self.url,
            state=self._state,
            prefetch_limit=self._policy.limit,
            pages_outstanding=self._policy.outstanding,
            max_outstanding=self._policy.max_outstanding,
            pages_buffered=buffered,
            pages_fetched=self._pages,
            paths_fetched=self._paths,
            requests=self._requests,
            empty_polls=self._policy.empty_polls,
            retries=self._retries,
        )

    async def start(self, task_group: TaskGroup) -> None:
        """Start the fetch task in ``task_group``; the prefetcher is then open."""
        if self._state != "unopened":
            raise UsageError(f"{self!r} was already started")
        # Pages are bounded by the policy, plus one slot for a failure.
        self._send: MemoryObjectSendStream[_Item]
        self._receive: MemoryObjectReceiveStream[_Item]
        self._send, self._receive = anyio.create_memory_object_stream[_Item](
            self._policy.limit + 1
        )
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()
        self._wakeup = anyio.Event()
        self._state = "open"
        await task_group.start(self._run)

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            task_group = await stack.enter_async_context(anyio.create_task_group())
            await self.start(task_group)
            self._stack = stack.pop_all()
        return self

    async def aclose(self) -> None:
        """Cancel the fetching and drop buffered pages; a second call does nothing."""
        state, self._state = self._state, "closed"
        if state != "open":
            return
        with anyio.CancelScope(shield=True):
            self._scope.cancel()
            await self._finished.wait()
        self._receive.close()
        if self._holding:
            self._holding = False
            self._policy.page_released()
        if self._stack is not None:
            await self._stack.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[PathObject]:
        if self._state != "open":
            raise UsageError(f"{self!r} is not open: use 'async with' or start()")
        if self._holding:  # the consumer has moved past the page it held
            self._holding = False
            self._policy.page_released()
            self._wakeup.set()
        try:
            item = await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        if isinstance(item, _Failed):
            raise item.error
        self._holding = True
        return item

    async def _run(self, *, task_status: TaskStatus[None]) -> None:
        try:
            with self._scope:
                task_status.started()
                await self._fetch_all()
        except Exception as exc:
            # Errors go to the consumer in order, after the pages before them;
            # raising here would cancel whoever hosts the task group.
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._send.send_nowait(_Failed(exc))
        finally:
            self._send.close()
            self._finished.set()

    async def _fetch_all(self) -> None:
        policy, cursor = self._policy, None
        while True:
            while not policy.may_fetch():
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
            policy.fetch_started()
            started = self._clock()
            self._requests += 1
            answer = await self._client.get_page(
                self.url,
                cursor=cursor,
                page_size=self._page_size,
                wait=policy.poll_wait(started),
                deadline=time.monotonic() + policy.wait + self._page_timeout,
                on_retry=self._count_retry,
            )
            page = parse_page(answer, self.url)
            now = self._clock()
            pause = policy.after_page(cursor, page, now=now, elapsed=now - started)
            if page.results:
                self._pages += 1
                self._paths += len(page.results)
                self._send.send_nowait(page.results)
            if pause is None:
                return
            cursor = page.next
            if pause > 0:
                await self._sleep(pause)

    def _count_retry(self, exc: Exception, delay: float) -> None:
        self._retries += 1
