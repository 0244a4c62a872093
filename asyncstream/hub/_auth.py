"""``Authorization: Api-Key <key>`` or ``Authorization: Bearer <token>``.

Keys are compared in constant time and never appear in a log line, an error detail
or a repr: a rejected request is told what was wrong with the header, not the key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Security
from fastapi.security import APIKeyHeader

from ._errors import HubHTTPError

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

    def dependency(self) -> Callable[[str | None], Awaitable[None]]:
        """A FastAPI dependency that runs :meth:`check`."""

        async def require_auth(
            authorization: str | None = Security(authorization_header),
        ) -> None:
            self.check(authorization)

        return require_auth


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def check_bind_allowed(host: str, keys: Iterable[str]) -> None:
    """Refuse to serve without a key anywhere but on a loopback address."""
    if not any(keys) and host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise ValueError(
            f"refusing to serve on {host} without an API key: set --api-key or"
            " ASYNCSTREAM_API_KEY, or bind to 127.0.0.1"
        )
