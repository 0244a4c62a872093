"""The httpx client of the runtime's pools, and each request built for it cheaply.

Every result batch is one request, so what httpx does per request on the event
loop's thread is paid once per batch, and it competed with the handler threads
for the GIL (``asyncstream bench --files``). Two of those costs are avoided
here, with httpx's public API and nothing it does left out:

- :func:`new_request` builds the :class:`httpx.Request` that
  ``AsyncClient.build_request`` would (the client's headers under the request's,
  its timeout), without the merges that come to nothing for a hub client: no
  query parameters and no cookies on the client (with either, it asks
  ``build_request`` itself). The request is then sent with ``AsyncClient.send``,
  which applies the client's auth, hooks and redirects as ``request`` does.
- :class:`PoolClient` keeps the cookies a server sets, as any client does, but
  does not hand a response without ``Set-Cookie`` to the cookie jar: httpx
  builds a ``urllib`` request for the jar from every response (some 20 us, a
  fifth of the client's side of a POST above the connection), and the jar then
  finds nothing to keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["PoolClient", "new_request"]

_SET_COOKIE_HEADERS = ("set-cookie", "set-cookie2")


class _ServerCookies(httpx.Cookies):
    """httpx's cookie store, told only of the responses that set a cookie."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        # What the jar reads of a response: without either header it keeps nothing.
        if any(name in headers for name in _SET_COOKIE_HEADERS):
            super().extract_cookies(response)


class PoolClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose cookie store skips responses that set none."""

    def __init__(self, *, cookies: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = cookies

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookies the client sends (the ones servers set, and any given)."""
        return self._server_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._server_cookies = _ServerCookies(cookies)


def new_request(
    http: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    *,
    content: bytes | None,
    params: Any,
    headers: Mapping[str, str],
    timeout: Any,
) -> httpx.Request:
    """The request ``http.build_request`` gives for an absolute ``url``.

    ``timeout`` is a timeout or ``httpx.USE_CLIENT_DEFAULT``. Query parameters
    (the request's, even empty, which drop the URL's query, or the client's)
    and client cookies are merged by ``build_request`` itself; a results POST
    has neither. So is every request of a client (one the user passed in) whose
    class has a ``build_request`` of its own: it may sign or trace requests.
    """
    if (
        params is not None
        or http.params
        or http.cookies
        or type(http).build_request is not httpx.AsyncClient.build_request
    ):
        return http.build_request(
            method,
            url,
            content=content,
            params=params,
            headers=headers,
            timeout=timeout,
        )
    merged = httpx.Headers(http.headers)
    merged.update(headers)
    chosen = http.timeout if timeout is httpx.USE_CLIENT_DEFAULT else timeout
    return httpx.Request(
        method,
        url,
        content=content,
        headers=merged,
        extensions={"timeout": httpx.Timeout(chosen).as_dict()},
    )
