"""Admission of ingest requests: a short fair queue, then a refusal that says when.

The hub works on at most ``limit`` ingest requests at once. One more request
waits its turn in a first-in first-out queue (anyio's semaphore), for at most
``max_wait`` seconds, before it is refused with 503. Queueing briefly absorbs
bursts that an immediate refusal would turn into retries, and the order of the
queue keeps senders from overtaking one another; the bound keeps a request from
waiting past its client's timeout. A request's body is read whole before it
asks for a slot (``_body``, within a deadline), so a client that sends slowly
holds a connection, never a slot: a slot is held only while the hub parses and
stores.

A refusal's ``Retry-After`` is the wait the hub predicts for a request joining the
queue now: the requests ahead of it, over the slots, times the recent time a
request holds a slot. It grows with the load and falls as the load drains, so
refused senders come back when there is room instead of every second in step.

:class:`AdmissionPolicy` takes these decisions without I/O; :class:`IngestGate`
does the waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum

import anyio

from ._errors import HubHTTPError
from ._metrics import HubMetrics

DEFAULT_MAX_WAIT = 2.0


class Verdict(Enum):
    ADMIT = "admit"  # a slot is free and nobody waits for one
    QUEUE = "queue"  # wait for a slot, at most ``max_wait``
    REFUSE = "refuse"  # the queue is full or too slow: 503 now


@dataclass(slots=True)
class AdmissionPolicy:
    """Counts of the requests in the hub, and what to do with one more.

    ``service`` is a moving average (weight ``smoothing`` for the newest sample)
    of the seconds a request held its slot; ``None`` until one finished.
    """

    limit: int
    max_wait: float = DEFAULT_MAX_WAIT
    max_waiting: int | None = None
    min_retry_after: float = 0.1
    max_retry_after: float = 30.0
    smoothing: float = 0.2
    in_flight: int = 0
    waiting: int = 0
    service: float | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit!r}")
        if self.max_wait < 0 or not math.isfinite(self.max_wait):
            raise ValueError(f"max_wait must be finite and >= 0, got {self.max_wait!r}")
        if not 0 <= self.min_retry_after <= self.max_retry_after:
            raise ValueError(
                f"need 0 <= min_retry_after <= max_retry_after, got"
                f" {self.min_retry_after!r} and {self.max_retry_after!r}"
            )
        if not 0 < self.smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing!r}")
        if self.max_waiting is None:
            self.max_waiting = 8 * self.limit

    def expected_wait(self) -> float:
        """Seconds a request joining now would wait for a slot: one slot frees
        every ``service / limit`` seconds, and the requests queued beyond the free
        slots go first."""
        ahead = self.in_flight + self.waiting - self.limit + 1
        if ahead <= 0 or self.service is None:
            return 0.0
        return ahead * self.service / self.limit

    def arrive(self) -> Verdict:
        """What to do with a new request; counts it unless refused."""
        if self.in_flight < self.limit and not self.waiting:
            self.in_flight += 1
            return Verdict.ADMIT
        assert self.max_waiting is not None
        if (
            self.max_wait == 0
            or self.waiting >= self.max_waiting
            or self.expected_wait() > self.max_wait
        ):
            return Verdict.REFUSE
        self.waiting += 1
        return Verdict.QUEUE

    def started(self) -> None:
        """A queued request got its slot."""
        self.waiting -= 1
        self.in_flight += 1

    def gave_up(self) -> None:
        """A queued request left the queue without a slot (timed out, cancelled)."""
        self.waiting -= 1

    def finished(self, seconds: float) -> None:
        """A request released its slot after holding it ``seconds``."""
        self.in_flight -= 1
        if self.service is None:
            self.service = seconds
        else:
            self.service += self.smoothing * (seconds - self.service)

    def retry_after(self) -> float:
        """Seconds a refused request should wait: the current expected wait,
        within ``[min_retry_after, max_retry_after]``, rounded up to 10 ms."""
        wanted = min(
            max(self.expected_wait(), self.min_retry_after), self.max_retry_after
        )
        return math.ceil(round(wanted * 100, 6)) / 100


class IngestGate:
    """Lets ingest requests in as :class:`AdmissionPolicy` says, in arrival order."""

    def __init__(self, policy: AdmissionPolicy, metrics: HubMetrics) -> None:
        self.policy = policy
        self._slots = anyio.Semaphore(policy.limit, fast_acquire=True)
        self._metrics = metrics

    @property
    def limit(self) -> int:
        return self.policy.limit

    @property
    def in_flight(self) -> int:
        return self.policy.in_flight

    @property
    def waiting(self) -> int:
        return self.policy.waiting

    def __repr__(self) -> str:
        return (
            f"<IngestGate in_flight={self.in_flight}/{self.limit}"
            f" waiting={self.waiting}>"
        )

    def _refuse(self, why: str) -> HubHTTPError:
        return HubHTTPError(
            503,
            "overloaded",
            f"{why} ({self.in_flight} ingest requests in progress, limit"
            f" {self.limit}; {self.waiting} waiting)",
            headers={"Retry-After": f"{self.policy.retry_after():g}"},
        )

    async def _wait_for_slot(self) -> None:
        self._metrics.ingest_queued.inc()
        self._metrics.ingest_waiting.inc()
        try:
            with anyio.move_on_after(self.policy.max_wait) as scope:
                await self._slots.acquire()
        except BaseException:
            self.policy.gave_up()
            raise
        finally:
            self._metrics.ingest_waiting.dec()
        if scope.cancelled_caught:
            self.policy.gave_up()
            raise self._refuse(f"no ingest slot within {self.policy.max_wait:g}s")
        self.policy.started()

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        verdict = self.policy.arrive()
        if verdict is Verdict.REFUSE:
            raise self._refuse("the ingest queue is full")
        if verdict is Verdict.ADMIT:
            # A slot is free and nobody queues: this never waits.
            self._slots.acquire_nowait()
        else:
            await self._wait_for_slot()
        self._metrics.ingest_in_flight.inc()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._slots.release()
            self.policy.finished(time.perf_counter() - start)
            self._metrics.ingest_in_flight.dec()
