"""The decisions of reading one input stream, as small objects without I/O.

:func:`parse_page` checks a page answer against protocol v1; :class:`PrefetchPolicy`
says whether another request may start, whether the stream is done, idle too long
or going round in circles, and how long to pause after an empty page. The async
:class:`~._pager.PagePrefetcher` asks and only does the I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import (
    HubProtocolError,
    InvalidInputError,
    StreamError,
    StreamIdleTimeout,
    UsageError,
)
from ._paths import PathObject


@dataclass(frozen=True, slots=True)
class PrefetchOptions:
    """How an input stream is read: ``page_size`` paths a page, at most
    ``prefetch`` pages ahead, long-polled ``wait`` seconds at a time, given up
    after ``idle_timeout`` seconds without a new path."""

    page_size: int = 1000
    prefetch: int = 2
    wait: float = 5.0
    idle_timeout: float = 300.0

    def __post_init__(self) -> None:
        page_size, prefetch = self.page_size, self.prefetch
        wait, idle_timeout = self.wait, self.idle_timeout
        if page_size < 1 or prefetch < 1 or wait < 0 or idle_timeout <= 0:
            raise InvalidInputError(
                "need page_size >= 1, prefetch >= 1, wait >= 0 and idle_timeout > 0,"
                f" got {page_size=}, {prefetch=}, {wait=}, {idle_timeout=}"
            )


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
