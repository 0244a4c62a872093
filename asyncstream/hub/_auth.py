"""``Authorization: Api-Key <key>`` or ``Authorization: Bearer <token>``.

Keys are compared in constant time and never appear in a log line, an error detail
or a repr: a rejected request is told what was wrong with the header, not the key.

:class:`AuthMiddleware` checks the key on the raw ASGI scope, before any route,
FastAPI or body parsing runs: a request without a valid key costs its headers
only, whatever body it announces. Only :data:`OPEN_PATHS` (health) need no key.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Security
from fastapi.security import APIKeyHeader
from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import HubHTTPError, error_response

_SCHEMES = ("api-key", "bearer")

# Declared as an API-key header so the OpenAPI document shows how to authenticate.
authorization_header = APIKeyHeader(
    name="Authorization",
    scheme_name="ApiKey",
    description="`Api-Key <key>` or `Bearer <token>`",
    auto_error=False,
)


def _unauthorized(detail: str) -> HubHTTPError:
    return HubHTTPError(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Api-Key, Bearer realm="hub"'},
    )


class KeyChecker:
    """Accepts a request whose Authorization header carries one of ``keys``.

    With no keys at all, every request is accepted: that is only allowed on a
    loopback address, which :func:`check_bind_allowed` enforces before serving.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in keys if k)

    def __repr__(self) -> str:
        return f"<KeyChecker keys={len(self._keys)}>"

    def check(self, header: str | None) -> None:
        if not self._keys:
            return
        if not header:
            raise _unauthorized(
                "missing Authorization header (Api-Key <key> or Bearer <token>)"
            )
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() not in _SCHEMES or not credential.strip():
            raise _unauthorized(
                f"Authorization scheme {scheme[:20]!r} is not 'Api-Key' or 'Bearer'"
            )
        given = credential.strip().encode()
        # Compare with every key, so the time taken tells nothing about a near match.
        matches = [hmac.compare_digest(given, key) for key in self._keys]
        if not any(matches):
            raise _unauthorized(f"the {scheme} credential is not valid")

    @property
    def required(self) -> bool:
        """Whether requests need a key at all."""
        return bool(self._keys)

    def dependency(self) -> Callable[[str | None], Awaitable[None]]:
        """A FastAPI dependency that runs :meth:`check`."""

        async def require_auth(
            authorization: str | None = Security(authorization_header),
        ) -> None:
            self.check(authorization)

        return require_auth


# Paths any client may ask without a key: a liveness probe carries no secret.
OPEN_PATHS = frozenset({"/api/health/"})


class AuthMiddleware:
    """401 for a request without a valid key, from its headers alone.

    The answer goes out at once, before the body. The connection stays open:
    the server's HTTP parser drops the rest of the body as it arrives, without
    buffering it or handing it to the app, so the client reads its 401 instead
    of a reset (closing with unread data would send a TCP reset, which can
    discard the answer before the client reads it). The header deadline of
    ``_timeouts`` ends a connection that keeps sending without a new request.
    """

    def __init__(
        self, app: ASGIApp, checker: KeyChecker, on_refuse: Callable[[str], None]
    ) -> None:
        self.app = app
        self.checker = checker
        self.on_refuse = on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.checker.required
            or scope["path"] in OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for n, v in scope["headers"] if n == b"authorization"),
            None,
        )
        try:
            self.checker.check(header)
        except HubHTTPError as exc:
            self.on_refuse(exc.code)
            response = error_response(
                exc.status_code, exc.code, exc.detail, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` names (an address names itself)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_loopback(address: str) -> bool:
    try:
        # An IPv6 address may carry a zone ("fe80::1%eth0"): not loopback anyway.
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


def check_bind_allowed(
    host: str,
    keys: Iterable[str],
    *,
    resolve: Callable[[str], list[str]] = resolve_host,
) -> None:
    """Refuse to serve without a key anywhere but on a loopback address.

    ``host`` is resolved and every address it names must be loopback: a name
    is judged by where it points, not by how it is spelled, so
    ``127.attacker.example`` is refused unless it does resolve to loopback
    only. A name that does not resolve is refused.
    """
    if any(keys):
        return
    how = "set --api-key-file or ASYNCSTREAM_API_KEY, or bind to 127.0.0.1"
    try:
        addresses = resolve(host)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(
            f"refusing to serve on {host} without an API key: it does not"
            f" resolve ({reason}); {how}"
        ) from None
    public = sorted({a for a in addresses if not is_loopback(a)})
    if public or not addresses:
        shown = f" ({', '.join(public)})" if public and public != [host] else ""
        raise ValueError(
            f"refusing to serve on {host}{shown} without an API key: only a"
            f" loopback address may; {how}"
        )
