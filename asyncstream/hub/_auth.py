"""``Authorization: Api-Key <key>`` or ``Authorization: Bearer <token>``.

Keys are compared in constant time and never appear in a log line, an error detail
or a repr: a rejected request is told what was wrong with the header, not the key.

:class:`AuthMiddleware` checks the key on the raw ASGI scope, before any route,
FastAPI or body parsing runs: a request without a valid key costs its headers
only, whatever body it announces. Only :data:`OPEN_PATHS` (health) need no key.
"""

from __future__ import annotations

import hmac
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


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_bind_allowed(host: str, keys: Iterable[str]) -> None:
    """Refuse to serve without a key anywhere but on a loopback address."""
    if not any(keys) and host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(
            f"refusing to serve on {host} without an API key: set --api-key or"
            " ASYNCSTREAM_API_KEY, or bind to 127.0.0.1"
        )
