"""``hub serve`` in the foreground: bind, start, then announce.

The hub binds its port itself, before uvicorn starts: a port in use is then one
clear line (:class:`~._errors.HubStartupError`), and ``--port 0`` has its real
port to announce. :class:`AnnouncingServer` prints the banner only once the app
has started (the store opened), so "listening" is never printed by a hub that
is about to fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Callable

import uvicorn

from .._config import ENV_API_KEY
from ._dsn import ENV_HUB_DB, redact_dsn
from ._errors import HubStartupError
from ._serve import (
    ENV_SERVE_SETTINGS,
    ServeSettings,
    build_app,
    check_body_limits,
    store_kind_for,
    uvicorn_config,
    workers_refusal,
)


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (a free port for 0)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        found = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        # IPv4 first, as uvicorn binds a name: "localhost" is then 127.0.0.1,
        # which every client tries.
        found.sort(key=lambda info: info[0] != socket.AF_INET)
        family, _, _, _, address = found[0]
    except socket.gaierror as exc:
        raise HubStartupError(f"cannot listen on {shown}: {exc.strerror}") from None
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise HubStartupError(f"cannot listen on {shown}: {exc.strerror}") from None
    sock.set_inheritable(True)  # the processes of --workers N share it
    return sock


def bound_port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def banner_lines(
    host: str,
    port: int,
    kind: str,
    db: str | None,
    workers: int,
    keyed: bool,
    faults: bool,
) -> list[str]:
    """What ``hub serve`` prints once it listens on ``port``."""
    shown_host = f"[{host}]" if ":" in host else host
    where = f" {redact_dsn(db)}" if db and kind in ("sqlite", "postgres") else ""
    processes = f", {workers} processes" if workers > 1 else ""
    lines = [
        f"asyncstream hub listening on http://{shown_host}:{port}"
        f" (store: {kind}{where}{processes})"
    ]
    if keyed:
        lines.append(
            "Every route but /api/health/ needs 'Authorization: Api-Key <key>'"
            " (or 'Bearer <key>')."
        )
    else:
        lines.append("No API key set: requests need no credentials (loopback only).")
    if faults:
        lines.append(
            "Fault injection enabled at POST /api/_faults/ (not for production)."
        )
    lines.append(f"API schema (OpenAPI): http://{shown_host}:{port}/openapi.json")
    return lines


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``announce()`` once it has started."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._announce()


def run_server(
    *,
    host: str,
    port: int,
    db: str | None,
    api_key: str | None,
    store: str | None = None,
    workers: int = 1,
    enable_faults: bool = False,
    max_body_bytes: int | None = None,
    max_concurrent_ingest: int | None = None,
    header_timeout: float | None = None,
    body_timeout: float | None = None,
    max_body_bytes_in_flight: int | None = None,
    log_level: str = "info",
    echo: Callable[[str], None] = print,
    retain_days: float | None = None,
) -> None:
    """Serve the hub in the foreground until SIGINT/SIGTERM (``hub serve``).

    ``store`` None takes the store ``db`` implies (a PostgreSQL DSN or a file).
    With ``workers`` > 1, that many processes serve one port (PostgreSQL only).
    Raises :class:`HubStartupError` when the hub cannot start (the port is
    taken, the database is unusable), ``ValueError`` for invalid settings.
    The banner is printed once the port is bound and the app has started.
    """
    from ._auth import check_bind_allowed

    kind = store_kind_for(db or "", store)
    refusal = workers_refusal(kind, workers)
    if refusal is not None:
        raise ValueError(refusal)
    check_body_limits(max_body_bytes, max_body_bytes_in_flight)
    keys = [api_key] if api_key else []
    check_bind_allowed(host, keys)
    settings = ServeSettings(
        kind,
        enable_faults,
        max_body_bytes,
        max_concurrent_ingest,
        header_timeout,
        body_timeout,
        max_body_bytes_in_flight,
        retain_days,
    )
    # The port first: a hub that cannot listen must not create a database.
    sock = bind_listening_socket(host, port)
    with sock:
        # Judge the address bound, not only the name: DNS may have changed.
        check_bind_allowed(host, keys, resolve=lambda _: [sock.getsockname()[0]])
        app = build_app(settings, db, api_key) if workers == 1 else None
        lines = banner_lines(
            host, bound_port(sock), kind, db, workers, bool(keys), enable_faults
        )

        def announce() -> None:
            for line in lines:
                echo(line)

        if app is not None:
            config = uvicorn_config(
                app, header_timeout=header_timeout, log_level=log_level
            )
            server = AnnouncingServer(config, announce)
            try:
                server.run(sockets=[sock])
            except SystemExit:
                if server.started:
                    raise
            if not server.started:
                where = f" {redact_dsn(db)}" if db and kind != "memory" else ""
                raise HubStartupError(
                    f"the hub did not start over its {kind} store{where}"
                    " (its error is logged above)"
                )
            return
        _run_workers(sock, workers, settings, db, api_key, log_level, announce)


def _run_workers(
    sock: socket.socket,
    workers: int,
    settings: ServeSettings,
    db: str | None,
    api_key: str | None,
    log_level: str,
    announce: Callable[[], None],
) -> None:
    """Serve ``sock`` with ``workers`` processes (uvicorn's supervisor)."""
    from uvicorn.supervisors import Multiprocess

    # The processes are spawned: they inherit this environment, not arguments.
    os.environ[ENV_SERVE_SETTINGS] = json.dumps(dataclasses.asdict(settings))
    os.environ[ENV_HUB_DB] = db or ""
    os.environ.pop(ENV_API_KEY, None)
    if api_key:
        os.environ[ENV_API_KEY] = api_key
    config = uvicorn_config(
        "asyncstream.hub._serve:app_from_environment",
        header_timeout=settings.header_timeout,
        workers=workers,
        log_level=log_level,
        factory=True,
    )
    announce()
    Multiprocess(config, sockets=[sock]).run()
