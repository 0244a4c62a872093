"""The client side of hub protocol v1: one method per endpoint, retried, translated.

This module is the boundary: httpx errors and HTTP statuses become errors of the
asyncstream tree here, and nowhere else. Connect errors, timeouts, 408, 429 and 5xx
are :class:`HubUnavailableError` and are retried by :func:`retry_call` within the
caller's deadline; other 4xx are :class:`HubRejectedError` and are not.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import anyio
import httpx
from anyio.abc import AsyncResource

from ._config import HubSettings
from ._exceptions import (
    HubProtocolError,
    HubRejectedError,
    HubUnavailableError,
    UsageError,
)
from ._retry import Clock, OnRetry, RetryPolicy, Sleep, retry_call

logger = logging.getLogger("asyncstream.hub_client")

RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
JSON_HEADERS = {"Content-Type": "application/json"}


def encode_json(body: Any) -> bytes:
    """Compact JSON bytes, the form every request body is sent in."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_detail(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def check_response(response: httpx.Response) -> Any:
    """Return the JSON body of a 2xx answer, or raise the matching hub error."""
    what = f"{response.request.method} {response.request.url.path}"
    status = response.status_code
    if status in RETRYABLE_STATUSES:
        raise HubUnavailableError(
            f"{what}: hub answered {status}",
            status_code=status,
            detail=_error_detail(response),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 400:
        detail = _error_detail(response)
        said = detail.get("detail") if isinstance(detail, dict) else detail
        raise HubRejectedError(
            f"{what}: hub rejected the request with {status}: {said}",
            status_code=status,
            detail=detail,
        )
    try:
        return response.json()
    except ValueError as exc:
        raise HubProtocolError(
            f"{what}: hub answered {status} with a body that is not JSON",
            status_code=status,
        ) from exc


class HubClient(AsyncResource):
    """An open connection pool to one hub, speaking protocol v1.

    Pass ``client`` to share an ``httpx.AsyncClient`` (it is then not closed here),
    or ``transport`` to run against an in-process app or a mock. ``clock``, ``sleep``
    and ``rand`` drive deadlines and backoff; tests inject fakes.
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
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            base_url=settings.url,
            headers=settings.headers(),
            transport=transport,
            timeout=timeout,
            verify=settings.verify_tls,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<HubClient {self.settings.url} {state}>"

    async def aclose(self) -> None:
        """Close the connection pool; a second call does nothing."""
        if not self._closed:
            self._closed = True
            if self._owns_client:
                await self._client.aclose()

    def resolve(self, url: str) -> str:
        """Join a hub-relative URL (a stream's ``url``) with the hub's base URL."""
        return urljoin(self.settings.url + "/", url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        on_retry: OnRetry | None = None,
    ) -> Any:
        """Send one request, retrying transient failures until ``deadline``.

        ``deadline`` is a value of the client's ``clock`` (``time.monotonic()`` by
        default); ``None`` means one attempt.
        """
        if self._closed:
            raise UsageError(f"{self!r} is closed")
        target = self.resolve(url)
        all_headers = {**JSON_HEADERS, **headers} if headers else JSON_HEADERS

        async def attempt() -> Any:
            try:
                response = await self._client.request(
                    method, target, content=content, params=params, headers=all_headers
                )
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
            return check_response(response)

        if deadline is None:
            return await attempt()

        def log_retry(exc: HubUnavailableError, delay: float) -> None:
            logger.info("retrying in %.3fs after: %s", delay, exc)
            if on_retry is not None:
                on_retry(exc, delay)

        return await retry_call(
            attempt,
            policy=self.retry_policy,
            deadline=deadline,
            clock=self._clock,
            sleep=self._sleep,
            rand=self._rand,
            on_retry=log_retry,
        )

    # -- results -----------------------------------------------------------------

    async def post_results(
        self,
        taskid: str,
        seq: int,
        body: bytes,
        *,
        deadline: float | None = None,
        on_retry: OnRetry | None = None,
    ) -> dict[str, Any]:
        """Post one encoded result batch under the key ``<taskid>:<seq>``."""
        answer = await self.request(
            "POST",
            f"/api/tasks/{taskid}/results/",
            content=body,
            headers={"Idempotency-Key": f"{taskid}:{seq}"},
            deadline=deadline,
            on_retry=on_retry,
        )
        return _expect_dict(answer, "results batch")

    async def complete_task(
        self,
        taskid: str,
        batches: int,
        payload: Mapping[str, Any],
        *,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Tell the hub the task sent ``batches`` batches and ended with ``payload``."""
        answer = await self.request(
            "POST",
            f"/api/tasks/{taskid}/complete",
            content=encode_json({"batches": batches, "payload": payload}),
            deadline=deadline,
        )
        return _expect_dict(answer, "task completion")

    async def get_task(self, taskid: str) -> dict[str, Any]:
        """The hub's summary of a task."""
        return _expect_dict(await self.request("GET", f"/api/tasks/{taskid}/"), "task")

    async def get_job(self, jobid: Any) -> dict[str, Any]:
        """The hub's summary of a job, summed over its tasks."""
        return _expect_dict(await self.request("GET", f"/api/jobs/{jobid}/"), "job")

    # -- input streams -----------------------------------------------------------

    async def create_stream(
        self, paths: list[Any] | None = None, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """Create an input stream, optionally with a first chunk of paths."""
        body = {"paths": paths} if paths is not None else {}
        answer = await self.request(
            "POST", "/api/streams/", content=encode_json(body), deadline=deadline
        )
        return _expect_dict(answer, "stream")

    async def append_stream(
        self,
        stream_id: str,
        paths: list[Any],
        *,
        offset: int | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Append a chunk of paths to an open stream.

        Pass ``offset`` (how many paths the stream holds before this chunk) to make
        the append safe to retry: the hub stores the chunk once, even when an
        answer is lost and the request is sent again.
        """
        body: dict[str, Any] = {"paths": paths}
        if offset is not None:
            body["offset"] = offset
        answer = await self.request(
            "POST",
            f"/api/streams/{stream_id}/paths/",
            content=encode_json(body),
            deadline=deadline,
        )
        return _expect_dict(answer, "stream append")

    async def close_stream(
        self, stream_id: str, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """Mark a stream complete: readers finish once they have read it all."""
        answer = await self.request(
            "POST", f"/api/streams/{stream_id}/close", content=b"{}", deadline=deadline
        )
        return _expect_dict(answer, "stream close")

    async def get_page(
        self,
        url: str,
        *,
        cursor: str | None,
        page_size: int,
        wait: float | None = None,
        deadline: float | None = None,
        on_retry: OnRetry | None = None,
    ) -> dict[str, Any]:
        """Read one page of a stream at ``url`` (a stream reference's ``stream``)."""
        params: dict[str, Any] = {"page_size": page_size}
        if cursor:
            params["cursor"] = cursor
        if wait:
            params["wait"] = wait
        answer = await self.request(
            "GET", url, params=params, deadline=deadline, on_retry=on_retry
        )
        page = _expect_dict(answer, "stream page")
        if not isinstance(page.get("results"), list):
            raise HubProtocolError(f"stream page from {url} has no 'results' list")
        return page


def _expect_dict(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise HubProtocolError(f"{what}: expected a JSON object, got {answer!r:.200}")
    return answer
