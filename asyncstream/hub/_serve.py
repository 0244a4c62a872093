"""Running the hub app under uvicorn, for the CLI and for tests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from os import PathLike
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._config import ENV_API_KEY
from ._dbfile import prepare_sqlite_file
from ._dsn import ENV_HUB_DB, is_postgres_dsn, redact_dsn
from ._memory import DiscardStore, MemoryStore
from ._sqlite import SqliteStore
from ._store import HubStore
from ._timeouts import CONFIG_ATTRIBUTE as HEADER_TIMEOUT_ATTRIBUTE
from ._timeouts import DEFAULT_HEADER_TIMEOUT, HeaderDeadlineProtocol

StoreKind = Literal["sqlite", "postgres", "memory", "discard"]
STORE_KINDS: tuple[StoreKind, ...] = ("sqlite", "postgres", "memory", "discard")
# The settings of `hub serve --workers N`, for the processes it starts.
ENV_SERVE_SETTINGS = "ASYNCSTREAM_HUB_SERVE"
PROCESS_HEADER = "X-Hub-Process"


def make_store(
    kind: StoreKind,
    db_path: str | PathLike[str] | None = None,
    *,
    dsn: str | None = None,
) -> HubStore:
    """A store of ``kind``; SQLite needs ``db_path``, PostgreSQL a ``dsn``.

    A SQLite file is checked, or created private, first (``_dbfile``): a file
    that is no database raises :class:`~._dbfile.DatabaseFileError`.
    """
    if kind == "sqlite":
        if db_path is None:
            raise ValueError("the sqlite store needs a database path (--db)")
        prepare_sqlite_file(db_path)
        return SqliteStore(db_path)
    if kind == "postgres":
        if dsn is None or not is_postgres_dsn(dsn):
            raise ValueError(
                "the postgres store needs a DSN (--db postgresql://user@host/db"
                f" or ${ENV_HUB_DB})"
            )
        try:
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                f"the postgres store needs psycopg ({exc.name} is missing):"
                " pip install 'asyncstream[postgres]'"
            ) from None
        return PostgresStore(dsn)
    if kind == "memory":
        return MemoryStore()
    if kind == "discard":
        return DiscardStore()
    raise ValueError(
        f"unknown store {kind!r}: expected one of {', '.join(STORE_KINDS)}"
    )


def store_kind_for(db: str, store: str | None) -> StoreKind:
    """The store ``--store`` names, or else the one ``--db`` implies."""
    if store is None:
        return "postgres" if is_postgres_dsn(db) else "sqlite"
    if store not in STORE_KINDS:
        raise ValueError(
            f"unknown store {store!r}: expected one of {', '.join(STORE_KINDS)}"
        )
    if store == "sqlite" and is_postgres_dsn(db):
        raise ValueError(f"--store sqlite takes a file, not {redact_dsn(db)}")
    return store


def workers_refusal(store: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve ``store``, or None if they can."""
    if workers > 1 and store != "postgres":
        return (
            f"--workers {workers} needs the postgres store (--db postgresql://...):"
            f" the {store} store lives in one process"
        )
    return None


# uvicorn settings for the hub: no access log (it would be the hot path), and
# the httptools parser when installed.
_UVICORN_SETTINGS: dict[str, object] = {
    "access_log": False,
    # httptools (a hub dependency) with a deadline on request headers.
    "http": HeaderDeadlineProtocol,
    "lifespan": "on",
    # Long polls would otherwise hold a shutdown for up to their wait.
    "timeout_graceful_shutdown": 2,
    "server_header": False,
}


def uvicorn_config(
    app: FastAPI | str,
    *,
    header_timeout: float | None = None,
    **options: object,
) -> uvicorn.Config:
    """uvicorn settings for the hub app, with ``options`` over the defaults;
    ``header_timeout`` is the deadline of ``_timeouts`` (None: its default)."""
    config = uvicorn.Config(app, **(_UVICORN_SETTINGS | options))  # type: ignore[arg-type]
    setattr(config, HEADER_TIMEOUT_ATTRIBUTE, header_timeout or DEFAULT_HEADER_TIMEOUT)
    return config


class InProcessServer(uvicorn.Server):
    """A uvicorn server inside someone else's event loop: it leaves the process's
    signal handlers alone (the host program, e.g. pytest, owns them)."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


@contextlib.contextmanager
def loopback_socket(port: int = 0) -> Iterator[socket.socket]:
    """A listening-ready TCP socket bound to 127.0.0.1 (a free port if 0)."""
    # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets
    # whose proto says TCP, and without it every response waits ~40 ms for the
    # client's delayed ACK between the header and body writes.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        yield sock
    finally:
        sock.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with loopback_socket() as sock:
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True, slots=True)
class ServeSettings:
    """What a hub process needs to build its app. The database and the API key
    are not among them: processes started by ``--workers`` read those from the
    environment, so no secret shows in a process list."""

    store: StoreKind
    enable_faults: bool = False
    max_body_bytes: int | None = None
    max_concurrent_ingest: int | None = None
    header_timeout: float | None = None
    body_timeout: float | None = None
    max_body_bytes_in_flight: int | None = None
    retain_days: float | None = None


def check_body_limits(
    max_body_bytes: int | None, max_body_bytes_in_flight: int | None
) -> None:
    """ValueError when the bodies in flight could not hold the largest body."""
    from ._app import DEFAULT_MAX_BODY_BYTES

    largest = DEFAULT_MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    if max_body_bytes_in_flight is not None and max_body_bytes_in_flight < largest:
        raise ValueError(
            f"--max-body-bytes-in-flight ({max_body_bytes_in_flight}) must be at"
            f" least --max-body-bytes ({largest})"
        )


def build_app(settings: ServeSettings, db: str | None, api_key: str | None) -> FastAPI:
    """The hub app of ``hub serve`` over the store that ``settings`` names."""
    from ._app import create_app
    from ._faults import FaultInjector

    options: dict[str, Any] = {}
    if settings.max_body_bytes is not None:
        options["max_body_bytes"] = settings.max_body_bytes
    if settings.max_concurrent_ingest is not None:
        options["max_concurrent_ingest"] = settings.max_concurrent_ingest
    if settings.body_timeout is not None:
        options["body_timeout"] = settings.body_timeout
    if settings.max_body_bytes_in_flight is not None:
        options["max_body_bytes_in_flight"] = settings.max_body_bytes_in_flight
    hub_store = make_store(settings.store, db, dsn=db)
    faults = FaultInjector() if settings.enable_faults else None
    keys = [api_key] if api_key else []
    app = create_app(hub_store, api_keys=keys, faults=faults, **options)
    if settings.retain_days is None:
        return app
    from ._retention import keep_pruning

    return keep_pruning(app, hub_store, settings.retain_days)


class ProcessHeader:
    """Names the process that answered in every response (``X-Hub-Process``), so
    that behind one port a client or a test can tell the hub processes apart."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._header = (PROCESS_HEADER.lower().encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self._header]
            await send(message)

        await self.app(scope, receive, send_named)


def app_from_environment() -> ASGIApp:
    """The app of one of the processes of ``hub serve --workers N``."""
    settings = ServeSettings(**json.loads(os.environ[ENV_SERVE_SETTINGS]))
    app = build_app(settings, os.environ.get(ENV_HUB_DB), os.environ.get(ENV_API_KEY))
    return ProcessHeader(app)
