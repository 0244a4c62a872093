"""A stream endpoint of hub protocol v1 over ``httpx.MockTransport``.

Shared by the pager and expand_paths tests (no tests here). Cursors are offsets;
paths are generated on demand, so a long stream costs no memory in the fake.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream._retry import RetryPolicy
from asyncstream._stream_page import PAGE_HEADER

HUB_URL = "http://hub.test"
_PAGE_URL = re.compile(r"^/api/streams/(?P<id>[^/]+)/paths/$")

# Called before a page is served: may stall, raise, or answer instead.
Intercept = Callable[[httpx.Request, int], Awaitable[httpx.Response | None]]


async def main_thread_waits_on_a_future() -> None:
    """Return once the main thread blocks in ``Future.result()`` (a portal call).

    Lets loop-side code interrupt the main thread (with a signal) exactly while it
    waits, ordered by observation rather than by a sleep.
    """
    main = threading.main_thread().ident
    assert main is not None
    while True:
        frame = sys._current_frames().get(main)
        while frame is not None:
            code = frame.f_code
            if code.co_name == "result" and "concurrent" in code.co_filename:
                return
            frame = frame.f_back
        await anyio.sleep(0.001)


def stream_path(stream_id: str, index: int) -> dict[str, Any]:
    return {"path": f"/data/{stream_id}/file{index:07d}"}


@dataclass
class FakeStream:
    total: int
    closed: bool = True


@dataclass
class FakeStreams:
    """Streams by id, and what the client did to them.

    ``passed`` is kept by the test's consumer: how many pages it has moved past.
    ``max_outstanding`` is the largest ``started - passed`` seen as a request
    starts: the pages the prefetcher had requested but the consumer not passed.
    ``ahead`` is how many cursors of full pages after ``next`` a page announces,
    as the hub does (at most 32); 0 is a hub without the extension.
    ``page_header`` sends the ``Stream-Page`` header the hub sends, as
    ``edit_header`` returns it (a hub that lies, for tests).
    """

    streams: dict[str, FakeStream] = field(default_factory=dict)
    intercept: Intercept | None = None
    ahead: int = 0
    page_header: bool = False
    edit_header: Callable[[dict[str, Any]], Any] = lambda header: header
    started: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    cancelled: int = 0
    passed: int = 0
    max_outstanding: int = 0
    # The long-poll waits asked for, latest last (bounded: memory tests read long).
    waits: deque[float | None] = field(default_factory=lambda: deque(maxlen=100))

    def add(self, stream_id: str, total: int, *, closed: bool = True) -> dict[str, Any]:
        self.streams[stream_id] = FakeStream(total, closed)
        return {"stream": f"/api/streams/{stream_id}/paths/", "count": total}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **options: Any) -> HubClient:
        options.setdefault("retry_policy", RetryPolicy(initial=0.001, maximum=0.01))
        return HubClient(HubSettings(HUB_URL), transport=self.transport(), **options)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        number = self.started
        self.max_outstanding = max(self.max_outstanding, self.started - self.passed)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.intercept is not None:
                answer = await self.intercept(request, number)
                if answer is not None:
                    return answer
            return self.page(request)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    def page(self, request: httpx.Request) -> httpx.Response:
        match = _PAGE_URL.match(request.url.path)
        if match is None or match["id"] not in self.streams:
            return httpx.Response(404, json={"detail": "no such stream"})
        stream = self.streams[match["id"]]
        params = request.url.params
        wait = params.get("wait")
        self.waits.append(float(wait) if wait is not None else None)
        offset = int(params.get("cursor", "0"))
        end = min(stream.total, offset + int(params["page_size"]))
        done = stream.closed and end >= stream.total
        size = int(params["page_size"])
        ahead = range(end + size, stream.total - size + 1, size)[: self.ahead]
        fields = {
            "next": None if done else str(end),
            "count": stream.total,
            "closed": stream.closed,
            "ahead": [str(a) for a in ahead] if end > offset else [],
        }
        results = [stream_path(match["id"], i) for i in range(offset, end)]
        headers = {}
        if self.page_header:
            header = {"results": len(results), **fields}
            headers[PAGE_HEADER] = json.dumps(self.edit_header(header))
        return httpx.Response(200, json={"results": results, **fields}, headers=headers)
