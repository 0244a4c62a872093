"""A hub-wide budget of request-body bytes held in memory.

``_body.BodyReader`` reads every request body whole before the routes run, so a
slow body holds no ingest slot. The price: bodies are no longer bounded in
number by the ingest slots, and N concurrent uploads of the largest body would
cost N times ``max_body_bytes``. :class:`BodyBudget` bounds their sum.

A request takes its bytes from the budget before it reads them and gives them
back when it ends, however it ends (answered, refused, disconnected, timed out,
cancelled). A body with a ``Content-Length`` reserves it all before a byte is
read, waiting at most ``max_wait`` seconds for room; a chunked body takes its
bytes as they arrive and is refused as soon as they do not fit. A refusal is
503 ``overloaded`` with a ``Retry-After``; the rest of that body is dropped by
the HTTP parser as it arrives, never buffered.

Large uploads must not starve the ordinary small batches: an eighth of the
budget (less if that would leave no room for the largest body) is kept for
small bodies, of at most a quarter of that room each. A large body fits only
below that room; a small one may use it all.

The budget counts the bytes the hub holds for bodies. Joining a body's chunks
copies it once more for an instant; joins never overlap (one event loop, no
``await`` inside), so the memory for bodies stays under the budget plus one
body.
"""

from __future__ import annotations

import anyio
from prometheus_client import CollectorRegistry, Gauge

# How many of the largest bodies fit in the default budget.
DEFAULT_BODIES_IN_FLIGHT = 4
# A body that does not fit waits this long for room before it is refused...
DEFAULT_BUDGET_WAIT = 1.0
# ...and the client is told to come back after this many seconds.
DEFAULT_BUDGET_RETRY_AFTER = 1.0


class BodyBudget:
    """At most ``capacity`` bytes of request bodies held at once (module doc).

    ``largest`` is the largest body the hub accepts: it always fits.

    ``in_use`` is the bytes held now, ``peak`` the most ever held; both are
    also the gauge ``asyncstream_hub_body_bytes_in_flight`` when ``registry``
    is given.
    """

    def __init__(
        self,
        capacity: int,
        *,
        largest: int | None = None,
        max_wait: float = DEFAULT_BUDGET_WAIT,
        retry_after: float = DEFAULT_BUDGET_RETRY_AFTER,
        registry: CollectorRegistry | None = None,
    ) -> None:
        largest = capacity if largest is None else largest
        if not 1 <= largest <= capacity:
            raise ValueError(
                f"the body budget ({capacity} bytes) must hold the largest body"
                f" ({largest} bytes), which must be at least 1 byte"
            )
        if max_wait < 0 or retry_after < 0:
            raise ValueError(
                f"need max_wait >= 0 and retry_after >= 0, got {max_wait!r}"
                f" and {retry_after!r}"
            )
        self.capacity = capacity
        # The room kept for small bodies, and what a small body is.
        self.small_room = min(capacity // 8, capacity - largest)
        self.small_body = self.small_room // 4
        self.max_wait = max_wait
        self.retry_after = retry_after
        self.in_use = 0
        self.peak = 0
        # Set (and replaced) whenever bytes are given back: wakes the waiters.
        self._freed: anyio.Event | None = None
        self._gauge = (
            None
            if registry is None
            else Gauge(
                "asyncstream_hub_body_bytes_in_flight",
                "Bytes of request bodies the hub holds now (read or reserved).",
                registry=registry,
            )
        )

    def __repr__(self) -> str:
        return f"<BodyBudget in_use={self.in_use}/{self.capacity} peak={self.peak}>"

    def _set(self, in_use: int) -> None:
        self.in_use = in_use
        self.peak = max(self.peak, in_use)
        if self._gauge is not None:
            self._gauge.set(in_use)

    def _ceiling(self, body_size: int) -> int:
        if body_size <= self.small_body:
            return self.capacity
        return self.capacity - self.small_room

    def take(self, n: int, body_size: int | None = None) -> bool:
        """Take ``n`` more bytes for a body of ``body_size`` bytes in all
        (default ``n``) now if they fit; never waits."""
        if n < 0:
            raise ValueError(f"cannot take {n} bytes")
        if self.in_use + n > self._ceiling(n if body_size is None else body_size):
            return False
        self._set(self.in_use + n)
        return True

    async def reserve(self, n: int) -> bool:
        """Take ``n`` bytes, waiting up to ``max_wait`` seconds for room.

        Waiters are not served in order: one that needs little may pass one
        that needs much. The wait is short, so nobody starves for long, and a
        refused client is told when to come back.
        """
        if self.take(n):
            return True
        if n > self._ceiling(n):
            return False  # could never fit: no point in waiting
        with anyio.move_on_after(self.max_wait):
            while True:
                if self._freed is None:
                    self._freed = anyio.Event()
                await self._freed.wait()
                if self.take(n):
                    return True
        return False

    def give_back(self, n: int) -> None:
        """Return ``n`` bytes taken before, and wake whoever waits for room."""
        if not 0 <= n <= self.in_use:
            raise ValueError(f"cannot give back {n} bytes of {self.in_use} in use")
        if n == 0:
            return
        self._set(self.in_use - n)
        if self._freed is not None:
            self._freed.set()
            self._freed = None
