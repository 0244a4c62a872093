"""Fault injection at the HTTP layer, for tests and benchmarks of the client.

Off unless an app is created with a :class:`FaultInjector`. Faults apply to requests
whose path starts with ``path_prefix`` (any ``/api/`` path by default), never to
``/api/health/`` or to the admin endpoint ``/api/_faults/`` that drives them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import error_response

FaultKind = Literal["fail", "drop", "delay"]
FAULTS_PATH = "/api/_faults/"
_EXEMPT = (FAULTS_PATH, "/api/health/")


@dataclass(slots=True)
class _Rule:
    kind: FaultKind
    remaining: int | None  # None: until reset()
    path_prefix: str
    status: int = 503
    retry_after: float = 0.05
    seconds: float = 0.0


class FaultInjector:
    """Pending faults; each matching request consumes one of a rule's ``n``.

    ``injected`` counts the faults applied so far, by kind.
    """

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self.injected: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (
            f"<FaultInjector rules={len(self._rules)} injected={dict(self.injected)}>"
        )

    def fail_next(
        self,
        n: int,
        *,
        status: int = 503,
        retry_after: float = 0.05,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests with ``status`` and ``Retry-After``."""
        self._rules.append(
            _Rule(
                "fail",
                n,
                path_prefix or "/api/",
                status=status,
                retry_after=retry_after,
            )
        )

    def drop_after_commit(self, n: int, *, path_prefix: str | None = None) -> None:
        """Process the next ``n`` requests fully, then drop their connection."""
        self._rules.append(_Rule("drop", n, path_prefix or "/api/"))

    def delay(
        self, seconds: float, *, n: int | None = None, path_prefix: str | None = None
    ) -> None:
        """Hold the next ``n`` requests (all, if None) ``seconds`` before processing."""
        self._rules.append(_Rule("delay", n, path_prefix or "/api/", seconds=seconds))

    def reset(self) -> None:
        """Forget every pending fault."""
        self._rules.clear()

    def take(self, kind: FaultKind, path: str) -> _Rule | None:
        """Consume one use of the first pending ``kind`` rule matching ``path``."""
        if path.startswith(_EXEMPT):
            return None
        for rule in self._rules:
            if rule.kind == kind and path.startswith(rule.path_prefix):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                self.injected[kind] += 1
                return rule
        return None


class FaultMiddleware:
    """Applies a :class:`FaultInjector`'s faults: delay, then fail, then drop."""

    def __init__(self, app: ASGIApp, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        delay = self.faults.take("delay", path)
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        fail = self.faults.take("fail", path)
        if fail is not None:
            response = error_response(
                fail.status,
                "injected_fault",
                f"fault injected for {path}",
                headers={"Retry-After": f"{fail.retry_after:g}"},
            )
            await response(scope, receive, send)
            return
        if self.faults.take("drop", path) is None:
            await self.app(scope, receive, send)
            return

        async def swallow(message: Message) -> None:
            pass

        await self.app(scope, receive, swallow)
        await _abort_connection(send)


async def _abort_connection(send: Send) -> None:
    """Reset the client's connection without an answer.

    uvicorn's ``send`` is a method of the request cycle that holds the transport;
    aborting it is what a crash between commit and reply looks like to the client.
    Under another server, fall back to an unfinished response, which also leaves
    the client without an acknowledgement.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if isinstance(transport, asyncio.BaseTransport):
        transport.abort()  # type: ignore[attr-defined]
        # Let connection_lost run so the server knows no response is coming.
        await asyncio.sleep(0)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"1000")],
        }
    )
    raise ConnectionAbortedError("fault injected: connection dropped after commit")
