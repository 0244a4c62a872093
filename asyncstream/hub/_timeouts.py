"""A deadline for request headers, which uvicorn does not have.

uvicorn times out an idle keep-alive connection, but a connection that sends a
request line and then a header byte now and then holds its socket (a file
descriptor) for ever: about a thousand of them exhaust ``ulimit -n 1024`` and
the hub can accept no one else. :class:`HeaderDeadlineProtocol` gives every
request ``header_timeout`` seconds from its first byte (from the connection's
start for the first) to finish its headers; a late one gets a JSON 408 and the
connection is closed. The same deadline ends a connection that keeps sending the
body of a request already answered (say a 401), which the parser only discards.

The body has its own deadline in the app (``_body``), where the answer can be a
normal response.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT = 15.0
# uvicorn's Config takes no setting of ours: the protocol reads this attribute.
CONFIG_ATTRIBUTE = "asyncstream_header_timeout"


def _request_timeout_answer() -> bytes:
    body = json.dumps(
        {
            "error": "header_timeout",
            "detail": "the request headers did not arrive in time",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


REQUEST_TIMEOUT_ANSWER = _request_timeout_answer()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's headers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = float(
            getattr(self.config, CONFIG_ATTRIBUTE, DEFAULT_HEADER_TIMEOUT)
        )
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.header_timeout, self._headers_too_late
            )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        if self._in_headers:
            self.transport.write(REQUEST_TIMEOUT_ANSWER)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Bytes after a finished exchange start the next request (or are the
        # discarded rest of a body already answered): its clock starts now.
        if self._between_requests():
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        super().on_headers_complete()
