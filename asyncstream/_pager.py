"""Reading one input stream page by page, with a bounded budget of pages ahead.

:class:`PrefetchPolicy` decides (no I/O): may another request start, is the stream
done, idle too long, going round in circles, how long to pause after an empty
page. :class:`PagePrefetcher` only does the I/O: one fetch task requests pages
with the policy's blessing and hands them to the consumer over a memory stream.

A page counts against the budget from the moment its request starts until the
consumer asks for the page after it, so a slow consumer throttles the fetching
and at most ``prefetch`` pages are ever held, whatever the stream's length.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._exceptions import HubProtocolError, StreamError, StreamIdleTimeout, UsageError
from ._hub_client import HubClient
from ._paths import PathObject

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
PrefetcherState = Literal["unopened", "open", "closed"]

# Retry budget of one page on top of its long-poll wait: past it the hub is down.
DEFAULT_PAGE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Page:
    """One validated page of an input stream."""

    results: list[PathObject]
    next: str | None
    count: int
    closed: bool


def parse_page(answer: dict[str, Any], url: str) -> Page:
    """Check a page answer against protocol v1; raise :class:`HubProtocolError`."""
    results, nxt = answer.get("results"), answer.get("next")
    count, closed = answer.get("count"), answer.get("closed")
    problem = None
    if not isinstance(results, list):
        problem = "'results' is not a list"
    elif nxt is not None and (not isinstance(nxt, str) or not nxt):
        problem = f"'next' must be a non-empty string or null, got {nxt!r:.100}"
    elif not isinstance(count, int) or isinstance(count, bool) or count < 0:
        problem = f"'count' must be a non-negative integer, got {count!r:.100}"
    elif not isinstance(closed, bool):
        problem = f"'closed' must be a boolean, got {closed!r:.100}"
    elif nxt is None and not closed:
        problem = "'next' is null but the stream is not closed"
    elif nxt is not None and closed and not results:
        problem = "an empty page of a closed stream still has a 'next' cursor"
    else:
        for index, item in enumerate(results):
            path = item.get("path") if isinstance(item, dict) else None
            if not isinstance(path, str) or not path:
                problem = f"results[{index}] is not a path object: {item!r:.200}"
                break
    if problem is not None:
        raise HubProtocolError(f"stream page from {url}: {problem}")
    return Page(results, nxt, count, closed)  # type: ignore[arg-type]


@dataclass(slots=True)
class PrefetchPolicy:
    """The decisions of a page fetch loop, as a small state machine without I/O.

    ``limit`` pages may be outstanding (requested, buffered or held by the
    consumer). An open stream with nothing new is polled with ``wait`` seconds of
    long-poll, paced by exponential backoff when the hub answers sooner, until
    ``idle_timeout`` seconds have passed without a new path.
    """

    limit: int
    idle_timeout: float
    wait: float
    idle_since: float
    backoff_initial: float = 0.05
    outstanding: int = 0
    max_outstanding: int = 0
    empty_polls: int = 0
    _recent_cursors: deque[str | None] = field(default_factory=lambda: deque(maxlen=8))

    def may_fetch(self) -> bool:
        """True if the budget allows one more page request to start now."""
        return self.outstanding < self.limit

    def fetch_started(self) -> None:
        """Count a page from the moment its request starts."""
        if not self.may_fetch():
            raise UsageError(f"prefetch budget of {self.limit} pages exceeded")
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)

    def page_released(self) -> None:
        """The consumer moved past a page: its slot is free again."""
        self.outstanding -= 1

    def poll_wait(self, now: float) -> float:
        """The long-poll ``wait`` to ask for: never past the idle deadline."""
        return max(0.0, min(self.wait, self.idle_since + self.idle_timeout - now))

    def after_page(
        self, cursor: str | None, page: Page, *, now: float, elapsed: float
    ) -> float | None:
        """Account for ``page``; ``None`` if the stream is done, else a pause.

        Raises :class:`StreamError` on a cursor that goes back to one already used
        for results, :class:`StreamIdleTimeout` once the stream idled too long.
        """
        self._recent_cursors.append(cursor)
        if page.results:
            if page.next is not None and page.next in self._recent_cursors:
                raise StreamError(
                    f"the hub answered cursor {cursor!r} with {len(page.results)}"
                    f" paths and next cursor {page.next!r}, already read: reading"
                    " on would repeat paths forever"
                )
            self.idle_since, self.empty_polls = now, 0
            return None if page.next is None else 0.0
        self.page_released()  # an empty page is never handed to the consumer
        if page.next is None:
            return None
        idle = now - self.idle_since
        if idle >= self.idle_timeout:
            raise StreamIdleTimeout(
                f"the open stream delivered nothing new for {idle:.1f}s"
                f" (idle timeout {self.idle_timeout:g}s, {page.count} paths so far)"
            )
        self.empty_polls += 1
        ceiling = self.wait if self.wait > 0 else 1.0
        backoff = min(ceiling, self.backoff_initial * 2.0 ** (self.empty_polls - 1))
        # A hub that long-polled has already waited; one that answered at once
        # is paced here so that an idle stream is not polled in a hot loop.
        return max(0.0, min(backoff - elapsed, self.idle_timeout - idle))


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


class PagePrefetcher:
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
        if page_size < 1 or prefetch < 1 or wait < 0 or idle_timeout <= 0:
            raise ValueError(
                "need page_size >= 1, prefetch >= 1, wait >= 0 and idle_timeout > 0,"
                f" got {page_size=}, {prefetch=}, {wait=}, {idle_timeout=}"
            )
        self.url = url
        self._client, self._page_size, self._page_timeout = (
            client,
            page_size,
            page_timeout,
        )
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

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
