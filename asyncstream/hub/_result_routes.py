"""The task-result endpoints of protocol v1: batches, completion, reset, reads."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Header, Query, Request, params
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from .._exceptions import InvalidInputError
from .._paths import State, check_state
from ._context import HubContext
from ._cursors import decode_result_cursor, encode_cursor
from ._errors import HubHTTPError
from ._parsing import parse_batch, parse_idempotency_key
from ._query_check import refuse_unknown_query
from ._schemas import (
    BATCH_BODY,
    BatchAccepted,
    CompleteRequest,
    JobOut,
    ResetOut,
    ResultsPageOut,
    TaskOut,
    responses,
)
from ._store import TaskHeader, empty_summary
from ._wire_json import WireJSONResponse


def _check_state_param(state: str | None) -> State | None:
    if state is None:
        return None
    try:
        return check_state(state)
    except InvalidInputError as exc:
        raise HubHTTPError(422, "invalid_state", str(exc), field="state") from None


class EncodedIdRoute(APIRoute):
    """A route whose ids may hold any character, "/" included, percent-encoded.

    The server decodes ``%2F`` before routing, so ``a%2Fb`` would no longer be one
    segment: match the path as sent instead, then decode each parameter once.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path")
        if scope["type"] != "http" or not raw:
            return super().matches(scope)
        # Some ASGI servers and transports leave the query in raw_path.
        path = raw.split(b"?", 1)[0].decode("latin-1")
        match, child = super().matches({**scope, "path": path})
        params = child.get("path_params")
        if params:
            child["path_params"] = {k: unquote(v) for k, v in params.items()}
        return match, child


def _decoded_key(header: str | None, taskid: str) -> str | None:
    # The client percent-encodes what a header cannot carry; compare decoded.
    head, sep, seq = (header or "").rpartition(":")
    return f"{taskid}:{seq}" if sep and unquote(head) == taskid else header


class IngestRoute(EncodedIdRoute):
    """The route of ``POST /api/tasks/{taskid}/results/``, the hub's hot path,
    served without FastAPI's per-request dependency resolution.

    Its endpoint takes the task id, the request and the ``Idempotency-Key``
    header, which this handler reads itself. Of its router's dependencies,
    the API key is checked by ``AuthMiddleware`` before the body is read (the
    dependency is there for the OpenAPI document), and unknown query
    parameters are refused here first, as the dependency would. Resolving
    them through FastAPI took 100 of the 270 us the hub spent on a batch of
    one, for the same answers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            await refuse_unknown_query(request)
            answer = await endpoint(
                request.path_params["taskid"],
                request,
                request.headers.get("idempotency-key"),
            )
            return WireJSONResponse(answer)

        return handle


def add_ingest_route(
    router: APIRouter, hub: HubContext, dependencies: Sequence[params.Depends]
) -> None:
    """``POST /api/tasks/{taskid}/results/`` on ``router`` with ``dependencies``.

    The app puts it on its own router, ahead of the routers it includes: newer
    FastAPI matches an included router's routes again at each level of
    inclusion (15 route matches for this request, 40 us), and this route is
    the one every batch takes.
    """
    store, metrics = hub.store, hub.metrics

    async def post_results(
        taskid: str,
        request: Request,
        idempotency_key: str | None = Header(None, description="<taskid>:<seq>"),
    ) -> dict[str, Any]:
        """Store a batch of results once; a retry of it answers ``duplicate: true``."""
        seq = parse_idempotency_key(_decoded_key(idempotency_key, taskid), taskid)
        async with hub.gate.admit():
            batch = parse_batch(taskid, seq, await request.body())
            outcome = await store.add_batch(batch)
        if outcome.duplicate:
            metrics.duplicates.inc()
        else:
            metrics.batches_accepted.inc()
            metrics.items_accepted.inc(outcome.accepted)
        return {"accepted": outcome.accepted, "duplicate": outcome.duplicate}

    router.add_api_route(
        "/api/tasks/{taskid}/results/",
        post_results,
        methods=["POST"],
        dependencies=dependencies,
        route_class_override=IngestRoute,
        openapi_extra=BATCH_BODY,
        responses=responses(
            BatchAccepted,
            400,
            409,
            413,
            503,
            e409="The key was used with another body, or the task is completed",
        ),
    )


def add_result_routes(parent: APIRouter, hub: HubContext) -> None:
    """The task-result endpoints but the results POST (see :func:`add_ingest_route`)."""
    store = hub.store
    router = APIRouter(route_class=EncodedIdRoute)

    @router.post(
        "/api/tasks/{taskid}/complete",
        responses=responses(
            TaskOut,
            400,
            409,
            413,
            e409="Batches are missing (listed in `missing`)",
            e422="A field is invalid, or `unknown_task`: the task sent no batch"
            " and the completion does not carry its identity (`task`)",
        ),
    )
    async def complete_task(taskid: str, body: CompleteRequest) -> dict[str, Any]:
        """Finish a task; 409 listing the ``missing`` seqs unless all are stored.

        A task that sent no batch is created here from ``task``, ``jobid`` and
        ``queue``; without ``task`` it is refused (422 ``unknown_task``), so a
        stray completion cannot make a task that blocks its id for good.
        """
        header = (
            None if body.task is None else TaskHeader(body.jobid, body.task, body.queue)
        )
        summary = await store.complete_task(taskid, body.batches, body.payload, header)
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

    parent.include_router(router)
