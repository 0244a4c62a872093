"""Running the hub app under uvicorn, for the CLI and for tests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from os import PathLike
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI

from ._memory import DiscardStore, MemoryStore
from ._sqlite import SqliteStore
from ._store import HubStore

StoreKind = Literal["sqlite", "memory", "discard"]
STORE_KINDS: tuple[StoreKind, ...] = ("sqlite", "memory", "discard")


def make_store(kind: StoreKind, db_path: str | PathLike[str] | None = None) -> HubStore:
    """A store of ``kind``; the SQLite store needs ``db_path``."""
    if kind == "sqlite":
        if db_path is None:
            raise ValueError("the sqlite store needs a database path (--db)")
        return SqliteStore(db_path)
    if kind == "memory":
        return MemoryStore()
    if kind == "discard":
        return DiscardStore()
    raise ValueError(
        f"unknown store {kind!r}: expected one of {', '.join(STORE_KINDS)}"
    )


def uvicorn_config(app: FastAPI, **options: object) -> uvicorn.Config:
    """uvicorn settings for the hub: no access log (it would be the hot path), and
    the httptools parser when installed."""
    settings: dict[str, object] = {
        "access_log": False,
        "http": "auto",
        "lifespan": "on",
        # Long polls would otherwise hold a shutdown for up to their wait.
        "timeout_graceful_shutdown": 2,
        "server_header": False,
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)  # type: ignore[arg-type]


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


def run_server(
    *,
    host: str,
    port: int,
    db_path: str | None,
    api_key: str | None,
    store: str,
    enable_faults: bool = False,
    max_body_bytes: int | None = None,
    max_concurrent_ingest: int | None = None,
    log_level: str = "info",
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the hub in the foreground until SIGINT/SIGTERM (``hub serve``)."""
    from ._app import create_app
    from ._auth import check_bind_allowed
    from ._faults import FaultInjector

    if store not in STORE_KINDS:
        raise ValueError(
            f"unknown store {store!r}: expected one of {', '.join(STORE_KINDS)}"
        )
    keys = [api_key] if api_key else []
    check_bind_allowed(host, keys)
    options: dict[str, Any] = {}
    if max_body_bytes is not None:
        options["max_body_bytes"] = max_body_bytes
    if max_concurrent_ingest is not None:
        options["max_concurrent_ingest"] = max_concurrent_ingest
    hub_store = make_store(store, db_path)
    faults = FaultInjector() if enable_faults else None
    app = create_app(hub_store, api_keys=keys, faults=faults, **options)

    shown_host = f"[{host}]" if ":" in host else host
    where = f" {db_path}" if store == "sqlite" else ""
    echo(
        f"asyncstream hub listening on http://{shown_host}:{port}"
        f" (store: {store}{where})"
    )
    if keys:
        echo(
            "Authenticate with 'Authorization: Api-Key <key>' (or 'Bearer <key>'),"
            " the key given by --api-key or $ASYNCSTREAM_API_KEY."
        )
    else:
        echo("No API key set: requests need no credentials (loopback only).")
    if faults is not None:
        echo("Fault injection enabled at POST /api/_faults/ (not for production).")
    echo(f"API documentation: http://{shown_host}:{port}/docs")
    config = uvicorn_config(app, host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run()
