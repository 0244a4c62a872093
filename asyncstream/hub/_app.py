"""The hub's ASGI app: every endpoint of protocol v1 (DESIGN §4).

Built on FastAPI because the protocol is a contract shared with the client: the
app publishes it as an OpenAPI document, validates query parameters and small
bodies declaratively, and runs on plain Starlette underneath, so the ingest
endpoints can drop to the raw request and parse bodies with one ``json.loads``
(see ``_parsing``) where per-item models would cost more than the store insert.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Response

from .. import __version__
from ._admission import DEFAULT_MAX_WAIT, AdmissionPolicy, IngestGate
from ._auth import AuthMiddleware, KeyChecker
from ._body import DEFAULT_BODY_MIN_RATE, DEFAULT_BODY_TIMEOUT, BodyReader
from ._body_budget import DEFAULT_BODIES_IN_FLIGHT, DEFAULT_BUDGET_WAIT, BodyBudget
from ._context import HubContext
from ._errors import HubHTTPError, install_error_handlers
from ._faults import FAULTS_PATH, FaultInjector, FaultMiddleware
from ._listing_routes import add_listing_routes
from ._metrics import HubMetrics, LatencyMiddleware
from ._query_check import refuse_unknown_query
from ._result_routes import add_ingest_route, add_result_routes
from ._retention_routes import add_retention_routes
from ._schemas import FaultRequest
from ._signals import StreamSignals
from ._store import HubStore
from ._stream_routes import add_stream_routes
from ._wire_json import WireJSONResponse

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_CONCURRENT_INGEST = 32


def _add_fault_route(router: APIRouter, faults: FaultInjector) -> None:
    @router.post(FAULTS_PATH, summary="Inject faults (only with --enable-faults)")
    async def inject_fault(body: FaultRequest) -> dict[str, Any]:
        if body.fault == "reset":
            faults.reset()
        elif body.fault == "delay":
            faults.delay(body.seconds, n=body.n, path_prefix=body.path_prefix)
        elif body.n is None:
            raise HubHTTPError(
                422, "invalid_request", f"{body.fault} needs n", field="n"
            )
        elif body.fault == "fail_next":
            faults.fail_next(
                body.n,
                status=body.status,
                retry_after=body.retry_after,
                path_prefix=body.path_prefix,
            )
        else:
            faults.drop_after_commit(body.n, path_prefix=body.path_prefix)
        return {"ok": True, "injected": dict(faults.injected)}


def create_app(
    store: HubStore,
    *,
    api_keys: Iterable[str] = (),
    faults: FaultInjector | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_concurrent_ingest: int = DEFAULT_MAX_CONCURRENT_INGEST,
    ingest_wait: float = DEFAULT_MAX_WAIT,
    overload_retry_after: float = 0.1,
    max_page_size: int = 10_000,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    body_min_rate: float = DEFAULT_BODY_MIN_RATE,
    max_body_bytes_in_flight: int | None = None,
    body_budget_wait: float = DEFAULT_BUDGET_WAIT,
) -> FastAPI:
    """The hub app over ``store``, which it opens at startup and closes at shutdown.

    ``api_keys`` empty disables auth (serve on loopback only). ``faults`` enables
    fault injection and its admin endpoint. At most ``max_concurrent_ingest``
    ingest requests run at once; more wait in arrival order up to
    ``ingest_wait`` seconds, then get 503 with a ``Retry-After`` of at least
    ``overload_retry_after`` (see ``_admission``). A request body is read
    whole before any route runs, within ``max_body_bytes`` and a deadline of
    ``body_timeout`` seconds plus one per ``body_min_rate`` bytes (``_body``).
    The bodies held at once total at most ``max_body_bytes_in_flight`` bytes
    (default: four of the largest; an eighth is kept for small bodies); one
    that does not fit within ``body_budget_wait`` seconds gets 503
    (``_body_budget``).
    """
    in_flight = max_body_bytes_in_flight
    if in_flight is None:
        in_flight = max_body_bytes * DEFAULT_BODIES_IN_FLIGHT
    if in_flight < max_body_bytes:
        # Else a body under the size limit could never be read.
        raise ValueError(
            f"max_body_bytes_in_flight ({in_flight}) must be at least"
            f" max_body_bytes ({max_body_bytes})"
        )
    metrics = HubMetrics()
    admission = AdmissionPolicy(
        max_concurrent_ingest,
        max_wait=ingest_wait,
        min_retry_after=overload_retry_after,
    )
    context = HubContext(
        store=store,
        metrics=metrics,
        gate=IngestGate(admission, metrics),
        signals=StreamSignals(),
        faults=faults,
        max_page_size=max_page_size,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        prime_routes(app)
        try:
            yield
        finally:
            context.signals.wake_all()
            await store.close()

    app = FastAPI(
        title="asyncstream hub",
        version=__version__,
        summary="Hub wire protocol v1: input streams and streamed task results.",
        lifespan=lifespan,
        default_response_class=WireJSONResponse,
        # No /docs or /redoc: their pages load JavaScript from a CDN (blank on a
        # machine without internet), and a browser cannot send the API key
        # when it opens a page. /openapi.json stays, behind the key like
        # every route but health.
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = context
    app.state.body_budget = budget = BodyBudget(
        in_flight,
        largest=max_body_bytes,
        max_wait=body_budget_wait,
        registry=metrics.registry,
    )
    install_error_handlers(app, metrics.reject)

    @app.get("/api/health/", summary="Liveness; needs no credentials")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "store": type(store).__name__}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    checker = KeyChecker(api_keys)
    # The middleware refuses a request without a key before any route runs; the
    # dependency stays so the OpenAPI document says how to authenticate. The
    # results POST, every batch's route, is matched first and resolves neither
    # (see ``IngestRoute``).
    dependencies = [Depends(checker.dependency()), Depends(refuse_unknown_query)]
    add_ingest_route(app.router, context, dependencies)
    router = APIRouter(dependencies=dependencies)
    add_stream_routes(router, context)
    add_result_routes(router, context)
    add_listing_routes(router, context)
    add_retention_routes(router, context)
    if faults is not None:
        _add_fault_route(router, faults)
    app.include_router(router)

    # Outermost last: faults act before everything, as a network problem would;
    # the key is checked before the body is read, so a caller without a key
    # costs no body read and learns nothing about the hub, not even its limits.
    app.add_middleware(
        BodyReader,
        limit=max_body_bytes,
        metrics=metrics,
        timeout=body_timeout,
        min_rate=body_min_rate,
        budget=budget,
    )
    app.add_middleware(AuthMiddleware, checker=checker, on_refuse=metrics.reject)
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    if faults is not None:
        app.add_middleware(FaultMiddleware, faults=faults)
    return app


# A scope that no route matches: trying it against every route is what builds
# each one's routing state, and answers nothing.
_PRIMING_SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "GET",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [],
}


def prime_routes(app: FastAPI) -> None:
    """Build the routing state of every route now, at startup.

    FastAPI builds a router's routes (their parameters, dependencies and
    response models: tens of milliseconds for the hub's) at the first request
    that reaches it. That request is a run's first: an embedded hub starts for
    every ``asyncstream run``, so the cost fell inside each run's own clock.
    """
    for route in app.router.routes:
        route.matches(dict(_PRIMING_SCOPE))
