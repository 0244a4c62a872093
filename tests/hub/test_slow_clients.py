"""Slow clients cost the hub a connection for a bounded time, never a slot.

Raw sockets over a real loopback hub: clients that send their headers or their
bodies a byte at a time, while a normal client ingests beside them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub
from asyncstream.hub._body import BodyDeadline

from .conftest import batch, key

DEADLINE = 15.0  # generous: the hub's timeouts below are 1-2 s


def port_of(hub: RunningHub) -> int:
    return int(hub.url.rsplit(":", 1)[1])


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything until the hub closes the connection (fails after DEADLINE).

    A reset counts as closed: a hub that closes while the client still sends
    makes the kernel reset the connection, after the answer was read.
    """
    chunks = []
    try:
        async with asyncio.timeout(DEADLINE):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


@pytest.fixture
async def strict_hub() -> AsyncIterator[RunningHub]:
    async with running_hub(
        header_timeout=1.0,
        body_timeout=2.0,
        max_concurrent_ingest=2,
        ingest_wait=0.5,
    ) as hub:
        yield hub


async def test_partial_headers_get_408_and_are_closed(strict_hub: RunningHub) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(strict_hub))
    try:
        writer.write(b"POST /api/tasks/t1/results/ HTTP/1.1\r\nHost: hub\r\nX-A: ")
        await writer.drain()
        answer = await read_all(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body)["error"] == "header_timeout"


async def test_many_silent_connections_are_all_closed_and_others_are_served(
    strict_hub: RunningHub,
) -> None:
    """Connections that send nothing, or a header a byte at a time, are all
    closed by the deadline; meanwhile and after, a normal client is served."""
    port = port_of(strict_hub)
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]

    async def trickle_headers(writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"GET /api/health/ HTTP/1.1\r\n")
            for _ in range(100):
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass

    trickles = [asyncio.create_task(trickle_headers(w)) for _, w in connections[:30]]
    try:
        async with httpx.AsyncClient(
            base_url=strict_hub.url, headers=strict_hub.headers, timeout=DEADLINE
        ) as client:
            assert (await client.get("/api/health/")).status_code == 200
            answers = await asyncio.gather(*(read_all(r) for r, _ in connections))
            assert (await client.get("/api/tasks/")).status_code == 200
    finally:
        for task in trickles:
            task.cancel()
        for _, writer in connections:
            writer.close()
    # The silent ones are closed without a word; the tricklers get their 408.
    assert answers[30:] == [b""] * 30
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers[:30])


async def start_trickle(
    hub: RunningHub, taskid: str
) -> tuple[asyncio.StreamReader, asyncio.Task[None]]:
    """An authenticated batch upload that announces 1 MiB and sends a byte
    every 0.1 s, from a task of its own; returns the connection's reader and
    that task."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(hub))
    head = (
        f"POST /api/tasks/{taskid}/results/ HTTP/1.1\r\nHost: hub\r\n"
        f"Authorization: Api-Key {hub.api_key}\r\n"
        f"Idempotency-Key: {taskid}:0\r\n"
        f"Content-Type: application/json\r\nContent-Length: {1 << 20}\r\n\r\n{{"
    )
    writer.write(head.encode())

    async def trickle() -> None:
        try:
            for _ in range(1000):
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(b" ")
        except ConnectionError:
            pass
        finally:
            writer.close()

    return reader, asyncio.create_task(trickle())


async def test_slow_uploads_hold_no_slot_and_are_cut_off(
    strict_hub: RunningHub,
) -> None:
    """Four authenticated uploads trickling on a hub with two ingest slots: a
    normal client stores every batch meanwhile, and each trickle is answered
    408 once its body deadline passes."""
    gate = strict_hub.app.state.hub.gate
    trickles = [await start_trickle(strict_hub, f"slow{n}") for n in range(4)]
    # Read as soon as the answers come, before the trickles are reset.
    readers = [asyncio.create_task(read_all(r)) for r, _ in trickles]
    try:
        await asyncio.sleep(0.5)  # margin for the hub to take their headers
        async with httpx.AsyncClient(
            base_url=strict_hub.url, headers=strict_hub.headers, timeout=DEADLINE
        ) as client:
            for seq in range(10):
                assert gate.in_flight == 0  # the trickles hold no slot
                response = await client.post(
                    "/api/tasks/t1/results/",
                    json=batch(seq, {"processed": [{"path": f"/f{seq}"}]}),
                    headers=key("t1", seq),
                )
                assert response.status_code == 200, response.text
            answers = await asyncio.gather(*readers)
            for n in range(4):
                missing = await client.get(f"/api/tasks/slow{n}/")
                assert missing.status_code == 404  # nothing half-stored
    finally:
        for _, sending in trickles:
            sending.cancel()
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        assert b"connection: close" in head.lower()
        assert json.loads(body)["error"] == "body_timeout"


def test_the_body_deadline_grows_with_the_bytes_received() -> None:
    deadline = BodyDeadline(start=100.0, timeout=30.0, min_rate=65536)
    assert deadline.remaining(0, now=100.0) == 30.0
    assert deadline.remaining(0, now=131.0) == -1.0
    # 32 MiB at 64 KiB/s: 512 s more than the base deadline.
    assert deadline.remaining(32 << 20, now=100.0) == 542.0
