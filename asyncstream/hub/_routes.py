"""The endpoints of protocol v1: input streams and task results."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field, field_validator

from .._exceptions import InvalidInputError
from .._paths import STATES, State, check_state
from ._errors import HubHTTPError
from ._openapi import (
    AppendOut,
    BatchAccepted,
    JobOut,
    ResetOut,
    ResultsPageOut,
    StreamOut,
    StreamPage,
    TaskOut,
    responses,
)
from ._parsing import (
    MAX_INT64,
    MAX_NESTING,
    decode_cursor,
    decode_result_cursor,
    encode_cursor,
    find_bad_value,
    parse_append_body,
    parse_batch,
    parse_idempotency_key,
    parse_paths_body,
)
from ._store import NotFoundError, StreamInfo, empty_summary

if TYPE_CHECKING:
    from ._app import HubContext

MAX_WAIT_SECONDS = 60.0
# Cursors of full pages announced in a stream page's ``ahead``: more than any
# reader's prefetch budget, few enough to keep the answer small.
MAX_PAGES_AHEAD = 16

_PATHS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "string", "minLength": 1, "description": 'Short for {"path": s}'},
            {
                "type": "object",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "message": {
                        "anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                },
                "additionalProperties": True,
            },
        ]
    },
}
_STREAM_BODY = {
    "requestBody": {
        "description": "Path objects; values inside one nest at most"
        f" {MAX_NESTING} levels, strings are valid Unicode.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"paths": _PATHS_SCHEMA}}
            }
        },
    }
}
_APPEND_BODY = {
    "requestBody": {
        "description": "Path objects as for creation. With `offset` (the count the"
        " writer expects the stream to hold), the chunk goes there or nowhere: a"
        " retried append whose answer was lost is answered `duplicate: true`, a"
        " writer out of step gets 409 `offset_conflict`.",
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["paths"],
                    "properties": {
                        "paths": _PATHS_SCHEMA,
                        "offset": {"type": "integer", "minimum": 0},
                    },
                }
            }
        },
    }
}
_BATCH_BODY = {
    "requestBody": {
        "description": "Header `Idempotency-Key: <taskid>:<seq>` names the batch;"
        " `seq` must equal its seq. Path objects as for streams.",
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["task", "seq", "items"],
                    "properties": {
                        "jobid": {"type": ["integer", "string", "null"]},
                        "task": {"type": "string"},
                        "queue": {"type": ["string", "null"]},
                        "seq": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_INT64,
                        },
                        "items": {
                            "type": "object",
                            "propertyNames": {"enum": list(STATES)},
                            "additionalProperties": _PATHS_SCHEMA,
                        },
                    },
                }
            }
        },
    }
}


class StreamSignals:
    """Wakes long-polling readers of a stream when it grows or closes.

    A reader takes the stream's current event *before* reading the store, so an
    append between its read and its wait still wakes it.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.stopping = False

    def event(self, stream_id: str) -> asyncio.Event:
        return self._events.setdefault(stream_id, asyncio.Event())

    def notify(self, stream_id: str) -> None:
        event = self._events.pop(stream_id, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        """End every long poll now (the server is stopping): readers answer what
        they have instead of holding the shutdown for up to their ``wait``."""
        self.stopping = True
        for stream_id in list(self._events):
            self.notify(stream_id)


def _stream_json(info: StreamInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "url": f"/api/streams/{info.id}/paths/",
        "count": info.count,
        "closed": info.closed,
    }


def add_stream_routes(router: APIRouter, hub: HubContext) -> None:
    store, signals = hub.store, hub.signals

    @router.post(
        "/api/streams/",
        status_code=201,
        openapi_extra=_STREAM_BODY,
        responses=responses(StreamOut, 400, 413, 503, status=201),
    )
    async def create_stream(request: Request) -> dict[str, Any]:
        """Create an open input stream, optionally with its first paths."""
        async with hub.gate.admit():
            paths = parse_paths_body(await request.body(), required=False)
            return _stream_json(await store.create_stream(paths))

    @router.post(
        "/api/streams/{stream_id}/paths/",
        openapi_extra=_APPEND_BODY,
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
    ) -> dict[str, Any]:
        """A page of paths. On an open stream with nothing new, wait up to ``wait``
        seconds; an empty page then has ``next`` equal to the cursor given.

        ``ahead`` lists the cursors of the pages after ``next`` (same
        ``page_size``, at most 16) that are already stored in full, so a reader
        may request them at once instead of one after another. Cursors are
        opaque: read ``next`` and ``ahead``, never build them."""
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
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                deadline = loop.time()  # one last read, then answer
        end = offset + len(paths)
        done = info.closed and end >= info.count
        return {
            "results": paths,
            "next": None if done else encode_cursor("s", end),
            "count": info.count,
            "closed": info.closed,
            "ahead": _full_pages_ahead(end, page_size, info.count) if paths else [],
        }


def _full_pages_ahead(start: int, page_size: int, count: int) -> list[str]:
    """Cursors of the pages after the one at ``start`` that lie within ``count``."""
    positions = range(start + page_size, count - page_size + 1, page_size)
    return [encode_cursor("s", p) for p in positions[:MAX_PAGES_AHEAD]]


class CompleteRequest(BaseModel):
    """Body of ``POST /api/tasks/{taskid}/complete``."""

    # strict: a JSON integer only; lax mode would read false as 0 and complete
    # the task, or "3" as 3.
    batches: int = Field(
        ge=0,
        le=MAX_INT64,
        strict=True,
        description="How many batches (seqs 0..n-1) were sent",
    )
    payload: dict[str, Any] | None = Field(
        default=None,
        description=f"dump() payload; nests at most {MAX_NESTING} levels",
    )

    @field_validator("payload")
    @classmethod
    def _storable(cls, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        """Refuse what would be stored and then fail every read of the task:
        NaN or Infinity, a lone surrogate, nesting past :data:`MAX_NESTING`."""
        problem = find_bad_value(payload, "")
        if problem is not None:
            raise ValueError(problem[1])
        return payload


def _check_state_param(state: str | None) -> State | None:
    if state is None:
        return None
    try:
        return check_state(state)
    except InvalidInputError as exc:
        raise HubHTTPError(422, "invalid_state", str(exc), field="state") from None


def add_result_routes(router: APIRouter, hub: HubContext) -> None:
    store, metrics = hub.store, hub.metrics

    @router.post(
        "/api/tasks/{taskid}/results/",
        openapi_extra=_BATCH_BODY,
        responses=responses(
            BatchAccepted,
            400,
            409,
            413,
            503,
            e409="The key was used with another body, or the task is completed",
        ),
    )
    async def post_results(
        taskid: str,
        request: Request,
        idempotency_key: str | None = Header(None, description="<taskid>:<seq>"),
    ) -> dict[str, Any]:
        """Store a batch of results once; a retry of it answers ``duplicate: true``."""
        seq = parse_idempotency_key(idempotency_key, taskid)
        async with hub.gate.admit():
            batch = parse_batch(taskid, seq, await request.body())
            outcome = await store.add_batch(batch)
        if outcome.duplicate:
            metrics.duplicates.inc()
        else:
            metrics.batches_accepted.inc()
            metrics.items_accepted.inc(outcome.accepted)
        return {"accepted": outcome.accepted, "duplicate": outcome.duplicate}

    @router.post(
        "/api/tasks/{taskid}/complete",
        responses=responses(
            TaskOut, 400, 409, 413, e409="Batches are missing (listed in `missing`)"
        ),
    )
    async def complete_task(taskid: str, body: CompleteRequest) -> dict[str, Any]:
        """Finish a task; 409 listing the ``missing`` seqs unless all are stored."""
        summary = await store.complete_task(taskid, body.batches, body.payload)
        return summary.to_json()

    @router.post(
        "/api/tasks/{taskid}/reset",
        summary="Drop an incomplete task's results (v1 extension)",
        responses=responses(
            ResetOut, 409, e409="The task is complete: its results stay."
        ),
    )
    async def reset_task(taskid: str) -> dict[str, Any]:
        """Forget every batch, result and count of an *incomplete* task, at once.

        For a task that runs again from the start (a Celery message redelivered
        after its worker died): its batch boundaries may differ from the first
        run's, so the old ``<taskid>:<seq>`` keys must not survive it. Answers
        ``{"dropped": <batches>}`` (0 for an unknown task); a complete task is
        never reset (409 ``task_completed``).
        """
        return {"dropped": await store.reset_task(taskid)}

    @router.get("/api/tasks/{taskid}/", responses=responses(TaskOut, 404))
    async def get_task(taskid: str) -> dict[str, Any]:
        """The task's state and its count per state (every state present).

        ``payload`` is the completion payload once the task is complete, else
        ``null`` (v1 extension), so a re-run of a complete task can return it.
        """
        return (await store.get_task(taskid)).to_json(with_payload=True)

    @router.get(
        "/api/tasks/{taskid}/results/",
        responses=responses(ResultsPageOut, 400, 404),
    )
    async def read_results(
        taskid: str,
        state: str | None = None,
        cursor: str | None = None,
        page_size: int = Query(1000, ge=1, le=hub.max_page_size),
    ) -> dict[str, Any]:
        """Stored results in the order received, optionally of one state."""
        page = await store.read_results(
            taskid, _check_state_param(state), decode_result_cursor(cursor), page_size
        )
        after = page.after
        return {
            "results": page.results,
            "next": None if after is None else encode_cursor("r", *after),
        }

    @router.get("/api/jobs/{jobid}/", responses=responses(JobOut, 404))
    async def get_job(jobid: str) -> dict[str, Any]:
        """Every task of a job, and the sum of their summaries."""
        tasks = await store.get_job(jobid)
        if not tasks:
            raise HubHTTPError(404, "not_found", f"no job {jobid!r}")
        summary = empty_summary()
        for task in tasks:
            for state, n in task.summary.items():
                summary[state] += n
        return {"id": jobid, "tasks": [t.to_json() for t in tasks], "summary": summary}
