"""HubClient: protocol v1 requests, error translation at the boundary, no secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from asyncstream._config import HubSettings
from asyncstream._exceptions import (
    HubProtocolError,
    HubRejectedError,
    HubUnavailableError,
    UsageError,
)
from asyncstream._hub_client import HubClient, parse_retry_after
from asyncstream._retry import RetryPolicy
from tests.runtime._sender_fakes import API_KEY, FakeTime

SETTINGS = HubSettings("http://hub.test", API_KEY)


def client_for(handler: httpx.MockTransport, **options: object) -> HubClient:
    return HubClient(SETTINGS, transport=handler, **options)  # type: ignore[arg-type]


def test_retry_after_is_parsed_from_seconds_or_an_http_date() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after(later) or 0) <= 30


async def test_post_results_sends_key_auth_and_exact_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"accepted": 2, "duplicate": False})

    body = b'{"seq":3,"items":{}}'
    async with client_for(httpx.MockTransport(handler)) as client:
        answer = await client.post_results("task-1", 3, body)
    assert answer == {"accepted": 2, "duplicate": False}
    (request,) = seen
    assert request.url == "http://hub.test/api/tasks/task-1/results/"
    assert request.headers["Idempotency-Key"] == "task-1:3"
    assert request.headers["Authorization"] == f"Api-Key {API_KEY}"
    assert request.content == body


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
async def test_transient_statuses_are_unavailable_errors(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json={"detail": "x"}, headers={"Retry-After": "1"}
        )

    async with client_for(httpx.MockTransport(handler)) as client:
        with pytest.raises(HubUnavailableError) as info:
            await client.get_task("t")
    assert info.value.status_code == status
    assert info.value.retry_after == 1.0


async def test_a_4xx_is_rejected_with_the_hubs_detail_and_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(409, json={"error": "missing_batches", "missing": [2]})

    time = FakeTime()
    async with client_for(
        httpx.MockTransport(handler), sleep=time.sleep, clock=time.clock
    ) as client:
        with pytest.raises(HubRejectedError, match="409") as info:
            await client.complete_task("t", 3, {}, deadline=client.deadline(60))
    assert calls == 1
    assert info.value.detail["missing"] == [2]


async def test_connect_errors_are_retried_within_the_deadline() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"id": "t"})

    time = FakeTime()
    retries: list[float] = []
    policy = RetryPolicy(initial=0.5, jitter=0.0)
    async with client_for(
        httpx.MockTransport(handler),
        retry_policy=policy,
        sleep=time.sleep,
        clock=time.clock,
    ) as client:
        answer = await client.request(
            "GET",
            "/api/tasks/t/",
            deadline=client.deadline(60),
            on_retry=lambda exc, delay: retries.append(delay),
        )
    assert answer == {"id": "t"}
    assert retries == [0.5, 1.0]
    assert time.sleeps == [0.5, 1.0]


async def test_answers_that_break_the_protocol_are_protocol_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/paths/"):
            return httpx.Response(200, json={"no": "results"})
        if request.url.path.startswith("/api/jobs/"):
            return httpx.Response(200, json=[1, 2])
        return httpx.Response(200, content=b"<html>")

    async with client_for(httpx.MockTransport(handler)) as client:
        with pytest.raises(HubProtocolError, match="not JSON"):
            await client.get_task("t")
        with pytest.raises(HubProtocolError, match="expected a JSON object"):
            await client.get_job(1)
        with pytest.raises(HubProtocolError, match="results"):
            await client.get_page("/api/streams/s/paths/", cursor=None, page_size=10)


async def test_the_key_never_shows_in_reprs_or_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = client_for(httpx.MockTransport(handler))
    with pytest.raises(HubUnavailableError) as info:
        await client.get_task("t")
    for text in (repr(client), repr(SETTINGS), str(info.value)):
        assert API_KEY not in text
    await client.aclose()
    await client.aclose()  # a second close does nothing
    with pytest.raises(UsageError, match="closed"):
        await client.get_task("t")


async def test_stream_urls_join_relative_and_absolute_ones_stay_on_the_hub() -> None:
    async with client_for(httpx.MockTransport(lambda r: httpx.Response(200))) as c:
        assert (
            c.resolve("/api/streams/1/paths/") == "http://hub.test/api/streams/1/paths/"
        )
        assert c.resolve("http://hub.test:80/x") == "http://hub.test:80/x"
        # Another server's URL is read from the hub: its key goes nowhere else.
        assert c.resolve("http://other/x?a=1") == "http://hub.test/x?a=1"
        assert c.resolve("//other/x") == "http://hub.test/x"
        assert c.resolve("https://hub.test/x") == "http://hub.test/x"
        assert c.resolve("http://other//evil/x") == "http://hub.test//evil/x"
        assert c.resolve("http://other:port/x") == "http://hub.test/x"


async def test_undecodable_body_is_a_protocol_error_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        # Claims gzip, is not: httpx cannot decode it.
        return httpx.Response(
            200, content=b"not gzip", headers={"Content-Encoding": "gzip"}
        )

    async with client_for(httpx.MockTransport(handler)) as client:
        with pytest.raises(HubProtocolError, match="DecodingError"):
            await client.request("GET", "/api/tasks/t1/", deadline=client.deadline(1e6))
    assert calls == 1
