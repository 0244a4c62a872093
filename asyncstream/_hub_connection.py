"""A connection to one hub: the pool it borrows, the retries, the translation.

:class:`HubConnection` sends one request and retries transient failures until a
:class:`~._deadline.Deadline`; :class:`~._hub_client.HubClient` adds one method per
endpoint of protocol v1. Connect errors, timeouts, 408, 429 and 5xx are
:class:`HubUnavailableError` and are retried by :func:`retry_call`; other 4xx are
:class:`HubRejectedError` and are not (:mod:`._hub_answers`). Without an injected
``client`` or ``transport`` the connections come from the process's shared pool
of the hub (:mod:`._hub_pools`).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Self
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import httpx
from anyio.abc import AsyncResource

from ._config import HubSettings
from ._deadline import Deadline
from ._exceptions import HubProtocolError, HubUnavailableError, UsageError
from ._http_client import PoolClient, new_request
from ._hub_answers import JSON_HEADERS, check_response
from ._hub_pools import (
    DEFAULT_TIMEOUT,
    POOL_LIMITS,
    PoolKey,
    acquire_pool,
    release_pool,
)
from ._retry import Clock, OnRetry, RetryPolicy, Sleep, retry_call

__all__ = ["HubConnection"]

logger = logging.getLogger("asyncstream.hub_client")


@functools.lru_cache(maxsize=256)
def _joined(base: str, url: str) -> str:
    # A sender posts every batch of a task to one URL: parse it once, not per POST.
    joined = urljoin(base + "/", url)
    if _origin(joined) != _origin(base):
        # A stream's URL comes from a task's input, written by whoever queued
        # the task: a server named there would get the hub's key with every
        # request and hand the task paths of its own making. Every stream is
        # read from the hub: of an absolute URL (a hub may spell its own host
        # otherwise) only the path and query are kept.
        hub, asked = urlsplit(base), urlsplit(joined)
        joined = urlunsplit((hub.scheme, hub.netloc, asked.path, asked.query, ""))
    return joined


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # not a port: no origin of the hub's, then
        return scheme, None, -1
    return scheme, parts.hostname, port


@functools.lru_cache(maxsize=256)
def _parsed(target: str) -> httpx.URL:
    # httpx parses a URL given as a string on every request, a tenth of the
    # client's work for a POST; a URL object it only copies (it is immutable).
    return httpx.URL(target)


class HubConnection(AsyncResource):
    """A connection to one hub: where requests go, how they are retried.

    Pass ``client`` to use an ``httpx.AsyncClient`` of yours (it is then not
    closed here), or ``transport`` to run against an in-process app or a mock (a
    pool of its own). Otherwise the client borrows the process's shared pool of
    the hub on first use, and gives it back on close. ``clock`` is what
    :meth:`deadline` measures on; ``sleep`` and ``rand`` drive the backoff.
    """

    def __init__(
        self,
        settings: HubSettings,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.retry_policy = retry_policy or RetryPolicy()
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._pool_key: PoolKey | None = None
        self._owns_client = client is None and transport is not None
        self._client: httpx.AsyncClient | None = client
        if self._owns_client:
            self._client = PoolClient(
                base_url=settings.url,
                headers=settings.headers(),
                transport=transport,
                timeout=timeout,
                verify=settings.verify_tls,
                limits=POOL_LIMITS,
            )
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.settings.url} {state}>"

    async def __aenter__(self) -> Self:
        self._http()  # borrow the shared pool now, for the whole block
        return self

    async def aclose(self) -> None:
        """Close the connections (or give the shared pool back); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            assert self._client is not None
            await self._client.aclose()
        elif self._pool_key is not None:
            key, self._pool_key = self._pool_key, None
            await release_pool(key)

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise UsageError(f"{self!r} is closed")
        if self._client is None:
            self._pool_key, self._client = acquire_pool(self.settings)
        return self._client

    def deadline(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now on this client's clock."""
        return Deadline.after(seconds, clock=self._clock)

    def resolve(self, url: str) -> str:
        """Join a hub-relative URL (a stream's ``url``) with the hub's base URL."""
        return _joined(self.settings.url, url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: Deadline | None = None,
        on_retry: OnRetry | None = None,
        decode: Callable[[httpx.Response], Any] = check_response,
    ) -> Any:
        """Send one request, retrying transient failures until ``deadline``.

        ``None`` means one attempt. ``decode`` turns the response into the
        answer, raising the hub's errors (:func:`check_response`: its JSON).
        """
        http = self._http()
        target = self.resolve(url)
        all_headers = {**JSON_HEADERS, **headers} if headers else JSON_HEADERS
        # A shared pool serves users of different timeouts: each sends its own.
        timeout = self._timeout if self._pool_key else httpx.USE_CLIENT_DEFAULT

        async def attempt() -> Any:
            try:
                # What http.request() sends, through its public halves, built
                # without the merges a hub request does not need (_http_client).
                request = new_request(
                    http,
                    method,
                    _parsed(target),
                    content=content,
                    params=params,
                    headers=all_headers,
                    timeout=timeout,
                )
                response = await http.send(request)
            except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
                # The request itself cannot be sent (a header value such as the
                # key, a URL scheme): every retry would fail alike. The library's
                # message quotes the header, key and all, so it is left out, and
                # so is the cause, lest a traceback print it.
                raise HubProtocolError(
                    f"{method} {httpx.URL(target).path}: the request could not be"
                    f" sent ({type(exc).__name__}): check the hub URL and the API"
                    " key settings"
                ) from None
            except httpx.TransportError as exc:
                raise HubUnavailableError(
                    f"{method} {httpx.URL(target).path}: {type(exc).__name__}: {exc}"
                ) from exc
            except httpx.HTTPError as exc:
                # Not a passing fault (an undecodable body, a redirect loop):
                # retrying would get the same answer.
                raise HubProtocolError(
                    f"{method} {httpx.URL(target).path}: {type(exc).__name__}: {exc}"
                ) from exc
            try:
                return decode(response)
            finally:
                _release_body(response)

        if deadline is None:
            return await attempt()
        if not isinstance(deadline, Deadline):
            raise UsageError(f"deadline must be a Deadline, got {deadline!r}")
        last: list[HubUnavailableError] = []

        def log_retry(exc: HubUnavailableError, delay: float) -> None:
            last[:] = [exc]
            logger.info("retrying in %.3fs after: %s", delay, exc)
            if on_retry is not None:
                on_retry(exc, delay)

        budget = deadline.remaining()
        # A hard stop on the loop's clock: a request still on the wire (a hub
        # that took the request and stays silent) cannot outlive the deadline,
        # whatever the per-request timeout says.
        with anyio.move_on_after(budget):
            return await retry_call(
                attempt,
                policy=self.retry_policy,
                deadline=deadline.when,
                clock=deadline.clock,
                sleep=self._sleep,
                rand=self._rand,
                on_retry=log_retry,
            )
        cause = last[0] if last else None
        raise HubUnavailableError(
            f"{method} {httpx.URL(target).path}: no answer within {budget:.1f}s"
            + (f" (before that: {cause})" if cause else ""),
            status_code=cause.status_code if cause else None,
            detail=cause.detail if cause else None,
        )


def _release_body(response: httpx.Response) -> None:
    """Let a read response and its body go as soon as nothing refers to them.

    httpx links a response and the stream it wraps its body in both ways (a
    reference cycle, encode/httpx#3733), so a response outlives its last use
    until the cyclic garbage collector runs, which it does less often the more
    objects are alive: a reader of large stream pages would hold dozens of page
    bodies it is done with, more the longer it reads. Replacing the stream of
    a closed response breaks the cycle.
    """
    if response.is_closed:
        response.stream = _NO_BODY


_NO_BODY = httpx.ByteStream(b"")
