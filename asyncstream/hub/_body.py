"""Request bodies are read whole, within a size limit and a deadline, before the app.

:class:`BodyReader` reads the body of every request before any route runs, and
hands the route the bytes it read. So a route's ``await request.body()`` costs
no waiting, and an ingest request takes its admission slot (``_admission``) only
once its body is here: a client that sends its body slowly holds a connection,
never a slot that the other clients need.

The size limit answers 413 at once when ``Content-Length`` announces too much,
or as soon as the bytes received pass it. The deadline (:class:`BodyDeadline`)
is ``timeout`` seconds plus one second for every ``min_rate`` bytes received:
a large body on a slow but honest link gets the time it needs, a body trickled
a byte at a time is cut after ``timeout`` seconds with 408 ``body_timeout``, and
its connection is closed.

Every body's bytes come out of the hub-wide :class:`~._body_budget.BodyBudget`
while the request lasts, so many large uploads at once cannot exhaust the
hub's memory: one that does not fit gets 503 before its body is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._auth import OPEN_PATHS
from ._body_budget import DEFAULT_BODIES_IN_FLIGHT, BodyBudget
from ._errors import error_response
from ._metrics import HubMetrics

DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_BODY_MIN_RATE = 64 * 1024


@dataclass(frozen=True, slots=True)
class BodyDeadline:
    """When the body of a request that started at ``start`` must be complete."""

    start: float
    timeout: float = DEFAULT_BODY_TIMEOUT
    min_rate: float = DEFAULT_BODY_MIN_RATE

    def remaining(self, received: int, now: float) -> float:
        """Seconds left to receive the rest, having ``received`` bytes at ``now``."""
        return self.start + self.timeout + received / self.min_rate - now


def _announces_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (
            name == b"content-length" and value != b"0"
        ):
            return True
    return False


def _declared_length(scope: Scope) -> int | None:
    """The body's ``Content-Length``; None for a chunked body. (The HTTP parser
    refuses a request whose length is not a number, or that has two.)"""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class BodyReader:
    """Reads each request body whole (see the module docstring) before the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        metrics: HubMetrics,
        timeout: float = DEFAULT_BODY_TIMEOUT,
        min_rate: float = DEFAULT_BODY_MIN_RATE,
        budget: BodyBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limit = limit
        # Without a budget of its own, room for a few of the largest bodies.
        self.budget = (
            BodyBudget(limit * DEFAULT_BODIES_IN_FLIGHT, largest=limit)
            if budget is None
            else budget
        )
        self.metrics = metrics
        self.timeout = timeout
        self.min_rate = min_rate
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not _announces_body(scope)
            # The open paths take no body, and a caller needs no key to reach
            # them: reading what it sends would let anyone fill the budget.
            # Unread, the HTTP parser drops it once the answer is sent.
            or scope["path"] in OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        held = 0  # bytes taken from the budget, given back whatever happens
        try:
            declared = _declared_length(scope)
            if declared is not None:
                if declared > self.limit:
                    await self._refuse_size(
                        scope, receive, send, f"request body of {declared} bytes"
                    )
                    return
                if not await self.budget.reserve(declared):
                    await self._refuse_budget(scope, receive, send, declared)
                    return
                held = declared
            deadline = BodyDeadline(self.clock(), self.timeout, self.min_rate)
            chunks: list[bytes] = []
            received = 0
            while True:
                message: Message | None = None
                with anyio.move_on_after(deadline.remaining(received, self.clock())):
                    message = await receive()
                if message is None:
                    await self._refuse_slow(scope, receive, send, received)
                    return
                if message["type"] == "http.disconnect":
                    return  # the client left: nobody to answer
                body = message.get("body", b"")
                received += len(body)
                if received > self.limit:
                    await self._refuse_size(scope, receive, send, "request body")
                    return
                if received > held:  # a chunked body: count it as it arrives
                    if not self.budget.take(received - held, received):
                        await self._refuse_budget(scope, receive, send, received)
                        return
                    held = received
                chunks.append(body)
                if not message.get("more_body", False):
                    break
            whole = b"".join(chunks)
            chunks.clear()  # not twice in memory while the route runs
            await self.app(scope, _replay(whole, receive), send)
        finally:
            self.budget.give_back(held)

    async def _refuse_size(
        self, scope: Scope, receive: Receive, send: Send, what: str
    ) -> None:
        self.metrics.reject("body_too_large")
        response = error_response(
            413,
            "body_too_large",
            f"{what} exceeds {self.limit} bytes",
            limit=self.limit,
        )
        await response(scope, receive, send)

    async def _refuse_slow(
        self, scope: Scope, receive: Receive, send: Send, received: int
    ) -> None:
        self.metrics.reject("body_timeout")
        response = error_response(
            408,
            "body_timeout",
            f"the request body did not arrive in time ({received} bytes in"
            f" {self.timeout:g}s, plus 1s per {self.min_rate:g} bytes)",
            # A client this slow is not waited for again on this connection.
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _refuse_budget(
        self, scope: Scope, receive: Receive, send: Send, size: int
    ) -> None:
        self.metrics.reject("overloaded")
        budget = self.budget
        response = error_response(
            503,
            "overloaded",
            f"no room for a request body of {size} bytes ({budget.in_use} of"
            f" {budget.capacity} bytes of bodies in flight)",
            # No "Connection: close": the client would likely get a reset
            # instead of this answer, its unread body still in flight. The
            # HTTP parser drops the rest as it comes, as for a 401.
            headers={"Retry-After": f"{budget.retry_after:g}"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` whole, then what the server says next
    (a disconnect, for a route that waits for one)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
