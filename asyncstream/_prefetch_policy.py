"""The decisions of reading one input stream, as small objects without I/O.

:class:`PrefetchPolicy` says which page may be requested now
(:meth:`~PrefetchPolicy.next_request`), whether the stream is done, idle too long
or going round in circles, and how long to pause after an empty page. The async
:class:`~._pager.PagePrefetcher` asks and only does the I/O; pages are checked
against the protocol in :mod:`._stream_page`.

A page's cursor normally comes from the answer before it, which allows one request
at a time. A hub that also announces the cursors of full pages further on (the
``ahead`` extension of the protocol) lets up to ``limit`` requests run at once; the
policy keeps the known cursors in stream order and checks that later answers agree.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from ._exceptions import (
    HubProtocolError,
    InvalidInputError,
    StreamError,
    StreamIdleTimeout,
    UsageError,
)
from ._stream_page import MAX_AHEAD, Page
from ._stream_page import parse_page as parse_page

# A page of plain path objects costs roughly 250-400 bytes a path once decoded
# (dict + str), so 5000 paths hold 1.5-2 MB, and the default budget of 2 pages
# 3-4 MB (the JSON text adds about as much again while one page is decoded).
# Each request round trip moves prefetch * page_size paths: with 20 ms of latency
# 2 x 5000 paths allow 500k paths/s, above what one reader consumes, where 1000
# paths a page capped it at 100k/s. The hub's own cap is 10_000.
DEFAULT_PAGE_SIZE = 5000


@dataclass(frozen=True, slots=True)
class PrefetchOptions:
    """How an input stream is read: ``page_size`` paths a page, at most
    ``prefetch`` pages ahead (``None``: as many as help, within the memory
    budget), long-polled ``wait`` seconds at a time, given up after
    ``idle_timeout`` seconds without a new path."""

    page_size: int = DEFAULT_PAGE_SIZE
    prefetch: int | None = None
    wait: float = 5.0
    idle_timeout: float = 300.0

    def __post_init__(self) -> None:
        page_size, prefetch = self.page_size, self.prefetch
        wait, idle_timeout = self.wait, self.idle_timeout
        bad_prefetch = prefetch is not None and prefetch < 1
        if page_size < 1 or bad_prefetch or wait < 0 or idle_timeout <= 0:
            raise InvalidInputError(
                "need page_size >= 1, prefetch >= 1 (or None), wait >= 0 and"
                " idle_timeout > 0,"
                f" got {page_size=}, {prefetch=}, {wait=}, {idle_timeout=}"
            )


PrefetcherState = Literal["unopened", "open", "closed"]


@dataclass(frozen=True, slots=True)
class PrefetchStatistics:
    """A snapshot of a :class:`PagePrefetcher`."""

    url: str
    state: PrefetcherState
    prefetch_limit: int  # the depth now: adapted, within the ceiling
    prefetch_cap: int | None  # the explicit setting, if any
    depth_ceiling: int  # the deepest the cap and the memory budget allow
    depth_changes: tuple[int, int]  # times grown, times shrunk
    pages_outstanding: int
    max_outstanding: int
    pages_buffered: int
    pages_fetched: int
    paths_fetched: int
    requests: int
    requests_in_flight: int
    max_in_flight: int
    empty_polls: int
    retries: int


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page the policy allows to request now: its place in the read, its cursor.

    ``position`` counts the pages with results read before it (an empty page of
    an open stream is asked for again at the same position)."""

    position: int
    cursor: str | None


@dataclass(slots=True)
class PrefetchPolicy:
    """The decisions of a page fetch loop, as a small state machine without I/O.

    ``limit`` pages may be outstanding (requested, buffered or held by the
    consumer). Requests start in stream order, for cursors already known: the
    first page's, each answer's ``next`` and its ``ahead`` cursors. Answers must be
    accounted for (:meth:`after_page`) in that same order. An open stream with
    nothing new is polled with ``wait`` seconds of long-poll, paced by exponential
    backoff when the hub answers sooner, until ``idle_timeout`` seconds have
    passed without a new path.
    """

    limit: int
    idle_timeout: float
    wait: float
    idle_since: float
    backoff_initial: float = 0.05
    outstanding: int = 0
    max_outstanding: int = 0
    empty_polls: int = 0
    # Known cursors from ``position`` on; the first ``requested - position`` of
    # them have a request started. Every cursor announced is kept (at most
    # ``MAX_AHEAD`` past the next), so a depth that grows can use them at once
    # instead of waiting a round trip for the next answer to announce them.
    position: int = 0
    requested: int = 0
    # What the answers accounted for say: paths read, the stream's length so far.
    paths_read: int = 0
    count: int = 0
    closed: bool = False
    _known: deque[str | None] = field(default_factory=lambda: deque([None]))
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

    def next_request(self) -> PageRequest | None:
        """The page to request now, counted as started; ``None`` if there is none:
        the budget is full, or the next cursor comes with an answer still awaited."""
        index = self.requested - self.position
        if index >= len(self._known) or not self.may_fetch():
            return None
        self.fetch_started()
        self.requested += 1
        return PageRequest(self.requested - 1, self._known[index])

    def pages_left(self, page_size: int) -> int | None:
        """The pages of a closed stream not requested yet (0: nothing is left to
        ask for but answers); ``None`` while the stream may still grow."""
        if not self.closed:
            return None
        awaited = self.requested - self.position
        unread = self.count - self.paths_read - awaited * page_size
        return max(0, -(-unread // page_size))

    def all_requested(self, page_size: int) -> bool:
        """True once the stream is known closed and the pages requested cover
        every path of it: nothing is left to ask for but answers."""
        return self.pages_left(page_size) == 0

    def page_released(self) -> None:
        """The consumer moved past a page: its slot is free again."""
        self.outstanding -= 1

    def poll_wait(self, now: float) -> float:
        """The long-poll ``wait`` to ask for: never past the idle deadline."""
        return max(0.0, min(self.wait, self.idle_since + self.idle_timeout - now))

    def after_page(
        self, request: PageRequest, page: Page, *, now: float, elapsed: float
    ) -> float | None:
        """Account for the answer ``page`` to ``request``, the oldest request not
        accounted for yet; ``None`` if the stream is done, else a pause.

        Raises :class:`StreamError` on a cursor that goes back to one already used
        for results, :class:`StreamIdleTimeout` once the stream idled too long,
        :class:`HubProtocolError` when an answer contradicts cursors announced.
        """
        if request.position != self.position or self.requested <= self.position:
            raise UsageError(f"{request} is not the oldest page awaited")
        cursor = self._known.popleft()
        self._recent_cursors.append(cursor)
        announced = bool(self._known)  # a later page was announced: this one is full
        self.paths_read += page.size
        self.count, self.closed = page.count, page.closed
        if page.size:
            self._learn(cursor, page)
            self.position += 1
            self.idle_since, self.empty_polls = now, 0
            return None if page.next is None else 0.0
        if announced:
            raise HubProtocolError(
                f"the hub announced cursor {cursor!r} as a full page ahead, then"
                " answered it with no paths"
            )
        self.page_released()  # an empty page is never handed to the consumer
        if page.next is None:
            return None
        self._known.appendleft(page.next)  # ask again at the same position
        self.requested = self.position
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

    def _learn(self, cursor: str | None, page: Page) -> None:
        """Check ``next`` and ``ahead`` of a page with results; keep new cursors."""
        following = [] if page.next is None else [page.next, *page.ahead]
        for later in following:
            if later in self._recent_cursors:
                raise StreamError(
                    f"the hub answered cursor {cursor!r} with {page.size}"
                    f" paths and next cursor {later!r}, already read: reading"
                    " on would repeat paths forever"
                )
        if page.next is None and self._known:
            raise HubProtocolError(
                f"the stream ended at cursor {cursor!r} although the hub announced"
                f" cursor {self._known[0]!r} after it"
            )
        for index, later in enumerate(following):
            if index < len(self._known):
                # Announced before: the same page, requested once.
                if self._known[index] != later:
                    raise HubProtocolError(
                        f"the hub announced cursor {self._known[index]!r} for the"
                        f" page {index + 1} after cursor {cursor!r}, now {later!r}"
                    )
            elif len(self._known) <= max(self.limit, MAX_AHEAD):
                self._known.append(later)
            else:
                break
