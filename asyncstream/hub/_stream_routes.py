"""The input-stream endpoints of protocol v1: create, append, close, read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ._context import HubContext
from ._cursors import decode_cursor, encode_cursor
from ._parsing import parse_append_body, parse_paths_body
from ._schemas import (
    APPEND_BODY,
    STREAM_BODY,
    AppendOut,
    StreamOut,
    StreamPage,
    responses,
)
from ._store import NotFoundError, StreamInfo
from ._wire_json import WireJSONResponse

MAX_WAIT_SECONDS = 60.0
# Cursors of full pages announced in a stream page's ``ahead``: more than any
# reader's prefetch budget, few enough to keep the answer (and its page
# header, which repeats them) small.
MAX_PAGES_AHEAD = 32
# The page header: a page's fields but its paths, so that a reader may keep the
# body undecoded until it gets to the page (docs/protocol.md).
PAGE_HEADER = "Stream-Page"


def _stream_json(info: StreamInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "url": f"/api/streams/{info.id}/paths/",
        "count": info.count,
        "closed": info.closed,
    }


def add_stream_routes(router: APIRouter, hub: HubContext) -> None:
    store, signals = hub.store, hub.signals
    # Appends and closes committed by other hub processes on the same store.
    store.watch_streams(signals.notify)

    @router.post(
        "/api/streams/",
        status_code=201,
        openapi_extra=STREAM_BODY,
        responses=responses(StreamOut, 400, 413, 503, status=201),
    )
    async def create_stream(request: Request) -> dict[str, Any]:
        """Create an open input stream, optionally with its first paths."""
        async with hub.gate.admit():
            paths = parse_paths_body(await request.body(), required=False)
            return _stream_json(await store.create_stream(paths))

    @router.post(
        "/api/streams/{stream_id}/paths/",
        openapi_extra=APPEND_BODY,
        responses=responses(
            AppendOut,
            400,
            404,
            409,
            413,
            503,
            e409="The stream is closed, or holds other paths at `offset`",
        ),
    )
    async def append_paths(stream_id: str, request: Request) -> dict[str, Any]:
        """Append a chunk of paths to an open stream; readers waiting are woken."""
        async with hub.gate.admit():
            paths, offset = parse_append_body(await request.body())
            info = await store.append_stream(stream_id, paths, offset)
        signals.notify(stream_id)
        return {**_stream_json(info), "duplicate": info.duplicate}

    @router.post("/api/streams/{stream_id}/close", responses=responses(StreamOut, 404))
    async def close_stream(stream_id: str) -> dict[str, Any]:
        """End a stream: once read to the end, its reader gets ``next: null``."""
        info = await store.close_stream(stream_id)
        signals.notify(stream_id)
        return _stream_json(info)

    @router.get("/api/streams/{stream_id}/", responses=responses(StreamOut, 404))
    async def get_stream(stream_id: str) -> dict[str, Any]:
        """A stream's count and whether it is closed."""
        _, info = await store.read_stream(stream_id, 0, 0)
        return _stream_json(info)

    @router.get(
        "/api/streams/{stream_id}/paths/", responses=responses(StreamPage, 400, 404)
    )
    async def read_paths(
        stream_id: str,
        cursor: str | None = None,
        page_size: int = Query(1000, ge=1, le=hub.max_page_size),
        wait: float = Query(0.0, ge=0.0, le=MAX_WAIT_SECONDS),
    ) -> Response:
        """A page of paths. On an open stream with nothing new, wait up to ``wait``
        seconds; an empty page then has ``next`` equal to the cursor given.

        ``ahead`` lists the cursors of the pages after ``next`` (same
        ``page_size``, at most 32) that are already stored in full, so a reader
        may request them at once instead of one after another. Cursors are
        opaque: read ``next`` and ``ahead``, never build them. The
        ``Stream-Page`` header repeats every field but the paths, ``results``
        being their number."""
        offset = decode_cursor(cursor, "s", 1)[0] if cursor else 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            event = signals.event(stream_id)
            try:
                paths, info = await store.read_stream(stream_id, offset, page_size)
            except NotFoundError:
                signals.notify(stream_id)  # forget the event made for no stream
                raise
            remaining = deadline - loop.time()
            if paths or info.closed or remaining <= 0 or signals.stopping:
                break
            hub.metrics.stream_readers_waiting.inc()
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                deadline = loop.time()  # one last read, then answer
            finally:
                hub.metrics.stream_readers_waiting.dec()
        end = offset + len(paths)
        done = info.closed and end >= info.count
        fields = {
            "next": None if done else encode_cursor("s", end),
            "count": info.count,
            "closed": info.closed,
            "ahead": _full_pages_ahead(end, page_size, info.count) if paths else [],
        }
        # Rendered here: the encoder of a returned dict would walk every path.
        response = WireJSONResponse({"results": paths, **fields})
        header = {"results": len(paths), **fields}
        response.headers[PAGE_HEADER] = json.dumps(header, separators=(",", ":"))
        return response


def _full_pages_ahead(start: int, page_size: int, count: int) -> list[str]:
    """Cursors of the pages after the one at ``start`` that lie within ``count``."""
    positions = range(start + page_size, count - page_size + 1, page_size)
    return [encode_cursor("s", p) for p in positions[:MAX_PAGES_AHEAD]]
