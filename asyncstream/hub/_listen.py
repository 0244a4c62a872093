"""The listening socket of ``hub serve``, bound before anything is announced.

The hub binds its port itself, before uvicorn starts: a port in use is then one
clear line (:class:`~._errors.HubStartupError`), and ``--port 0`` has its real
port to announce. :class:`AnnouncingServer` prints the banner only once the app
has started (the store opened), so "listening" is never printed by a hub that
is about to fail.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from ._dsn import redact_dsn
from ._errors import HubStartupError


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (a free port for 0)."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
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
