"""The key is checked before any work: no body is read for a request without it.

Raw sockets over a real loopback hub, so the test sees what a hostile client
sees: when the answer comes compared with how much of its body it has sent.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import AsyncIterator

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub

BIG = 31 * 1024 * 1024
CHUNK = 256 * 1024


@pytest.fixture
async def keyed_hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="memory", api_key="s3cret") as hub:
        yield hub


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(
        reader.readexactly(int(headers["content-length"])), 10
    )
    return int(status_line.split()[1]), headers, body


def _request_head(url: str, path: str, length: int, auth: str | None) -> bytes:
    port = url.rsplit(":", 1)[1]
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("auth", [None, "Api-Key wrong", "Basic abc"])
async def test_unauthenticated_big_body_refused_before_it_is_sent(
    keyed_hub: RunningHub, auth: str | None
) -> None:
    """A 31 MiB completion without a valid key is answered 401 (JSON) while the
    client has sent only its headers and 256 KiB: the hub never waited for, nor
    parsed, the body; the rest of it is dropped as it comes."""
    port = int(keyed_hub.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        writer.write(_request_head(keyed_hub.url, "/api/tasks/t1/complete", BIG, auth))
        writer.write(b"[" + b" " * (CHUNK - 1))
        await writer.drain()
        status, headers, body = await _read_response(reader)
        assert status == 401
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"] == "unauthorized"
        assert "s3cret" not in body.decode()
        # The rest is dropped, not buffered: sending it costs the hub no memory.
        for _ in range(BIG // CHUNK - 1):
            writer.write(b" " * CHUNK)
            await writer.drain()
    finally:
        writer.close()
    # Loose: parsing the body would have cost hundreds of MiB (ru_maxrss is KiB).
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 64 * 1024
    async with httpx.AsyncClient(base_url=keyed_hub.url) as anonymous:
        metrics = await anonymous.get("/metrics", headers=keyed_hub.headers)
    assert 'asyncstream_hub_rejections_total{reason="unauthorized"}' in metrics.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/api/tasks/"),
        ("POST", "/api/streams/"),
        ("POST", "/api/tasks/t/results/"),
        ("GET", "/no/such/route"),
    ],
)
async def test_every_route_but_health_needs_the_key(
    keyed_hub: RunningHub, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=keyed_hub.url) as anonymous:
        response = await anonymous.request(method, path)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert (await anonymous.get("/api/health/")).status_code == 200


async def test_a_refused_body_that_keeps_coming_is_cut_at_the_header_deadline() -> None:
    """After its 401, a connection trickling the rest of its body is closed by
    the header deadline: the hub waits for no more of it than for headers."""
    async with running_hub(store="memory", api_key="k", header_timeout=1.0) as hub:
        port = int(hub.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:
            try:
                for _ in range(300):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except ConnectionError:
                pass

        writer.write(_request_head(hub.url, "/api/tasks/t1/complete", BIG, None))
        sending = asyncio.create_task(trickle())
        try:
            status, _, _ = await _read_response(reader)
            assert status == 401
            try:
                rest = await asyncio.wait_for(reader.read(), 15)
            except ConnectionResetError:
                rest = b""
            assert rest == b""  # closed well before the 30 s of trickle
        finally:
            sending.cancel()
            writer.close()
