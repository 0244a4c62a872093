"""The pools' httpx client and its cheap requests: what httpx would send, all of it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asyncstream._config import HubSettings
from asyncstream._http_client import PoolClient, new_request
from asyncstream._hub_client import HubClient

URLS = [
    httpx.URL("http://hub.test/api/tasks/t%2F1/results/"),
    httpx.URL("http://hub.test/api/streams/s/page?cursor=c%201"),
]
HEADERS = {"Content-Type": "application/json", "Idempotency-Key": "t%2F1:7"}


def _as_sent(request: httpx.Request) -> tuple[Any, ...]:
    return (
        request.method,
        str(request.url),
        request.headers.multi_items(),
        request.read(),
        request.extensions,
    )


CLIENTS: dict[str, dict[str, Any]] = {
    "pool": {"headers": {"Authorization": "Api-Key k"}},
    "timeout": {"timeout": httpx.Timeout(7.0, connect=2.0)},
    "client params": {"params": {"a": "1"}},
    "client cookies": {"cookies": {"sticky": "lb-3"}},
    "overlapping header": {"headers": {"content-type": "text/plain", "X-A": "b"}},
}


@pytest.mark.parametrize("client_kind", [PoolClient, httpx.AsyncClient])
@pytest.mark.parametrize("options", CLIENTS.values(), ids=list(CLIENTS))
@pytest.mark.parametrize(
    "request_timeout", [httpx.USE_CLIENT_DEFAULT, httpx.Timeout(3.0, connect=1.0), 9.0]
)
@pytest.mark.parametrize("params", [None, {}, {"page": "2"}])
@pytest.mark.parametrize("url", URLS, ids=["plain", "query"])
async def test_new_request_is_what_build_request_builds(
    url: httpx.URL,
    client_kind: type[httpx.AsyncClient],
    options: dict[str, Any],
    request_timeout: Any,
    params: dict[str, str] | None,
) -> None:
    async with client_kind(base_url="http://hub.test", **options) as http:
        ours = new_request(
            http,
            "POST",
            url,
            content=b'{"seq":7}',
            params=params,
            headers=HEADERS,
            timeout=request_timeout,
        )
        theirs = http.build_request(
            "POST",
            url,
            content=b'{"seq":7}',
            params=params,
            headers=HEADERS,
            timeout=request_timeout,
        )
    assert _as_sent(ours) == _as_sent(theirs)


def _cookie_hub(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/login":
        return httpx.Response(200, json={}, headers={"Set-Cookie": "sticky=lb-3"})
    return httpx.Response(200, json={"cookie": request.headers.get("cookie")})


async def test_pool_client_keeps_the_cookies_a_server_sets() -> None:
    # A load balancer's sticky-session cookie goes back as with any client.
    async with PoolClient(
        base_url="http://hub.test", transport=httpx.MockTransport(_cookie_hub)
    ) as http:
        assert (await http.get("/api/health/")).json() == {"cookie": None}
        assert not http.cookies
        await http.get("/login")
        assert http.cookies["sticky"] == "lb-3"
        assert (await http.get("/api/health/")).json() == {"cookie": "sticky=lb-3"}


async def test_pool_client_takes_cookies_as_any_client() -> None:
    async with PoolClient(
        cookies={"a": "1"}, transport=httpx.MockTransport(_cookie_hub)
    ) as http:
        assert (await http.get("http://hub.test/x")).json() == {"cookie": "a=1"}
        http.cookies = {"b": "2"}
        assert (await http.get("http://hub.test/x")).json() == {"cookie": "b=2"}


async def test_a_hub_client_sends_a_set_cookie_back() -> None:
    settings = HubSettings("http://hub.test", "k")
    transport = httpx.MockTransport(_cookie_hub)
    async with HubClient(settings, transport=transport) as hub:
        await hub.request("GET", "/login")
        assert await hub.health() == {"cookie": "sticky=lb-3"}


async def test_a_client_with_a_build_request_of_its_own_builds_every_request() -> None:
    # A client the user passes in may sign or trace its requests there.
    class Signing(httpx.AsyncClient):
        def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
            request = super().build_request(*args, **kwargs)
            request.headers["X-Signed"] = "yes"
            return request

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"signed": request.headers.get("X-Signed")})

    settings = HubSettings("http://hub.test", "k")
    async with (
        Signing(
            base_url="http://hub.test", transport=httpx.MockTransport(echo)
        ) as http,
        HubClient(settings, client=http) as hub,
    ):
        assert await hub.health() == {"signed": "yes"}
