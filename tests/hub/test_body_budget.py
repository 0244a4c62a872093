"""The request bodies a hub holds at once stay within its budget of bytes.

Raw sockets over a real loopback hub (in this process, or ``hub serve`` in a
child process where its memory is measured): many large authenticated uploads
at once, uploads that stop half-way, chunked bodies, a failing route.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from asyncstream.cli import main
from asyncstream.hub import HubProcess, RunningHub, running_hub

from .conftest import batch, key

DEADLINE = 20.0  # generous: the hub's own waits below are 0.5-2 s
MIB = 1 << 20
SERVE = [sys.executable, "-m", "asyncstream", "hub", "serve", "--port", "0"]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def padded_batch(seq: int, size: int) -> bytes:
    """A valid results batch of exactly ``size`` bytes (JSON then spaces)."""
    body = json.dumps(batch(seq, {"processed": [{"path": f"/big{seq}"}]})).encode()
    return body + b" " * (size - len(body))


def head(
    taskid: str, seq: int, api_key: str | None, length: int | None = None
) -> bytes:
    """The request head of a batch upload: ``Content-Length`` or chunked."""
    framing = (
        "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    )
    return (
        f"POST /api/tasks/{taskid}/results/ HTTP/1.1\r\nHost: hub\r\n"
        f"Authorization: Api-Key {api_key}\r\nIdempotency-Key: {taskid}:{seq}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """One answer, head and body; empty if the hub closes or resets first."""
    try:
        async with asyncio.timeout(DEADLINE):
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            assert length is not None, head
            return head + await reader.readexactly(int(length.group(1)))
    except (ConnectionResetError, asyncio.IncompleteReadError):
        return b""


def status_and_error(answer: bytes) -> tuple[int, str | None]:
    first, _, body = answer.partition(b"\r\n\r\n")
    status = int(first.split(b" ", 2)[1]) if first else 0
    error = json.loads(body).get("error") if body.startswith(b"{") else None
    return status, error


async def upload(
    url: str, api_key: str | None, seq: int, size: int, pause: float
) -> bytes:
    """One client: a batch of ``size`` bytes sent in 64 KiB pieces, ``pause``
    seconds apart, while it reads the answer; returns the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    body = padded_batch(seq, size)

    async def send() -> None:
        try:
            writer.write(head(f"big{seq}", seq, api_key, len(body)))
            for start in range(0, len(body), 65536):
                writer.write(body[start : start + 65536])
                await writer.drain()
                await asyncio.sleep(pause)
        except ConnectionError:
            pass  # refused and closed before the body was sent: as it should

    sending = asyncio.create_task(send())
    try:
        return await read_all(reader)
    finally:
        sending.cancel()
        writer.close()


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


async def test_uploads_beyond_the_budget_get_503_and_the_hub_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    """Twelve 8 MiB uploads at once on a ``hub serve`` that holds 20 MiB of
    bodies (two large ones): some are refused with 503 before their body is
    read, the others are stored, a small ingest meanwhile is stored, and the
    hub process grows far less than the 96 MiB offered."""
    extra = ("--max-body-bytes", str(8 * MIB), "--max-body-bytes-in-flight")
    with HubProcess(None, store="memory", extra_args=(*extra, str(20 * MIB))) as hub:
        pid = hub._process.pid  # type: ignore[union-attr]
        async with httpx.AsyncClient(
            base_url=hub.url,
            headers={"Authorization": f"Api-Key {hub.api_key}"},
            timeout=DEADLINE,
        ) as client:
            small = batch(0, {"processed": [{"path": "/small"}]})
            warm = await client.post(
                "/api/tasks/warm/results/", json=small, headers=key("warm", 0)
            )
            assert warm.status_code == 200, warm.text
            baseline = rss_bytes(pid)
            peak = [baseline]

            async def watch() -> None:
                for _ in range(int(DEADLINE / 0.02)):
                    peak.append(rss_bytes(pid))
                    await asyncio.sleep(0.02)

            watching = asyncio.create_task(watch())
            # 8 MiB in 128 pieces 20 ms apart: each admitted upload holds its
            # bytes for seconds, longer than a refused one waits (1 s).
            uploads = asyncio.gather(
                *(upload(hub.url, hub.api_key, n, 8 * MIB, 0.02) for n in range(12))
            )
            await asyncio.sleep(0.5)  # the budget is full by now
            stored_small = await client.post(
                "/api/tasks/small/results/", json=small, headers=key("small", 0)
            )
            answers = [status_and_error(a) for a in await uploads]
            watching.cancel()
            metrics = (await client.get("/metrics")).text
    # The budget (20 MiB) plus one body being joined (8 MiB) plus the HTTP
    # buffers and the allocator's slack: far from the 96 MiB offered.
    growth = max(peak) - baseline
    print(f"hub RSS grew by {growth / MIB:.1f} MiB; answers {answers}")
    assert growth < 60 * MIB, growth
    assert stored_small.status_code == 200, stored_small.text
    assert all(a in ((200, None), (503, "overloaded")) for a in answers), answers
    refused = answers.count((503, "overloaded"))
    assert 1 <= refused <= 10, answers
    assert "asyncstream_hub_body_bytes_in_flight 0.0" in metrics


async def test_a_503_for_the_budget_comes_before_the_body() -> None:
    async with running_hub(
        store="memory",
        max_body_bytes=MIB,
        max_body_bytes_in_flight=MIB,
        body_budget_wait=0.2,
    ) as hub:
        budget = hub.app.state.body_budget
        holder = await asyncio.open_connection("127.0.0.1", port_of(hub.url))
        try:
            holder[1].write(head("hold", 0, hub.api_key, MIB) + b"{")
            await wait_for(lambda: budget.in_use == MIB)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port_of(hub.url)
            )
            writer.write(head("late", 0, hub.api_key, 1000))  # no body at all
            answer = await read_all(reader)
            writer.close()
        finally:
            holder[1].close()
        await wait_for(lambda: budget.in_use == 0)
    head_lines, _, body = answer.partition(b"\r\n\r\n")
    assert head_lines.startswith(b"HTTP/1.1 503 ")
    assert b"retry-after: 1" in head_lines.lower()
    assert json.loads(body)["error"] == "overloaded"


async def wait_for(condition: Any, what: str = "") -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await asyncio.sleep(0.02)


async def test_a_body_that_does_not_fit_waits_briefly_for_room() -> None:
    """With room for one 1 MiB body, a second upload waits for the first to
    end, then is stored."""
    async with running_hub(
        store="memory",
        max_body_bytes=MIB,
        max_body_bytes_in_flight=MIB,
        body_budget_wait=DEADLINE,
    ) as hub:
        first = asyncio.create_task(upload(hub.url, hub.api_key, 1, MIB, 0.02))
        budget = hub.app.state.body_budget
        await wait_for(lambda: budget.in_use == MIB, "the first upload reserves")
        second = await upload(hub.url, hub.api_key, 2, MIB // 2, 0)
        assert status_and_error(await first) == (200, None)
        assert status_and_error(second) == (200, None)
        assert budget.peak == MIB


async def test_small_batches_keep_room_beside_large_uploads() -> None:
    """Large uploads cannot take the room kept for small bodies: with two
    1 MiB bodies held, a third large one gets 503 though 0.5 MiB is free,
    and a small batch is stored."""
    async with running_hub(
        store="memory",
        max_body_bytes=MIB,
        # 320 KiB kept for bodies of at most 80 KiB.
        max_body_bytes_in_flight=5 * MIB // 2,
        body_budget_wait=0.2,
    ) as hub:
        budget = hub.app.state.body_budget
        holders = []
        try:
            for n, size in enumerate((MIB, MIB, MIB // 2)):
                if n == 2:
                    await wait_for(lambda: budget.in_use == 2 * MIB)
                holders.append(
                    await asyncio.open_connection("127.0.0.1", port_of(hub.url))
                )
                holders[-1][1].write(head(f"hold{n}", 0, hub.api_key, size) + b"{")
            await asyncio.sleep(0.5)  # the third has asked for its 0.5 MiB
            async with httpx.AsyncClient(
                base_url=hub.url, headers=hub.headers, timeout=DEADLINE
            ) as client:
                small = await client.post(
                    "/api/tasks/small/results/",
                    json=batch(0, {"processed": [{"path": "/small"}]}),
                    headers=key("small", 0),
                )
            assert small.status_code == 200, small.text
            third = await read_all(holders[2][0])
        finally:
            for _, writer in holders:
                writer.close()
        await wait_for(lambda: budget.in_use == 0)
    assert status_and_error(third) == (503, "overloaded")


@pytest.fixture
async def tight_hub() -> Any:
    async with running_hub(
        store="memory",
        max_body_bytes=MIB,
        # Room for two 1 MiB bodies; the last 320 KiB kept for those of 80 KiB.
        max_body_bytes_in_flight=5 * MIB // 2,
        body_budget_wait=0.2,
        body_timeout=2.0,
    ) as hub:
        yield hub


async def test_the_budget_is_returned_however_a_request_ends(
    tight_hub: RunningHub,
) -> None:
    """Uploads that disconnect, time out, pass the size limit, do not fit the
    budget (chunked) or meet a failing store all give their bytes back; then
    a small ingest is stored and the gauge reads 0."""
    hub = tight_hub
    budget = hub.app.state.body_budget
    port = port_of(hub.url)
    open_writers = []

    async def connect(request: bytes) -> asyncio.StreamReader:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        open_writers.append(writer)
        return reader

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    try:
        # Disconnects after 100 KiB of its 1 MiB.
        _, gone = await asyncio.open_connection("127.0.0.1", port)
        gone.write(head("gone", 0, hub.api_key, MIB) + b"{" + b" " * 100_000)
        await wait_for(lambda: budget.in_use >= MIB, "the leaver reserves")
        # Stalls after a byte: 408 once its body deadline passes.
        stalled = await connect(head("stall", 0, hub.api_key, MIB) + b"{")
        await wait_for(lambda: budget.in_use == 2 * MIB, "the staller reserves")
        gone.close()
        # Three chunked bodies of 0.75 MiB that never end: two fit at most,
        # whether the staller still holds its 1 MiB or not.
        await wait_for(lambda: budget.in_use == MIB, "the leaver's bytes return")
        chunked = [
            await connect(
                head("chunky", n, hub.api_key) + chunk(b"{" + b" " * (3 * MIB // 4))
            )
            for n in range(3)
        ]
        refusals = [status_and_error(await read_all(r)) for r in chunked]
        assert status_and_error(await read_all(stalled)) == (408, "body_timeout")
        await wait_for(lambda: budget.in_use == 0, "every byte returns")
        # Chunked past the size limit: 413.
        too_big = await connect(
            head("huge", 0, hub.api_key) + chunk(b" " * 700_000) * 2
        )
        assert status_and_error(await read_all(too_big)) == (413, "body_too_large")
    finally:
        for writer in open_writers:
            writer.close()
    assert (503, "overloaded") in refusals, refusals
    assert set(refusals) <= {(503, "overloaded"), (408, "body_timeout")}, refusals
    await wait_for(lambda: budget.in_use == 0, "every byte returns")

    async def broken(*args: Any) -> None:
        raise RuntimeError("the store failed")

    async with httpx.AsyncClient(
        base_url=hub.url, headers=hub.headers, timeout=DEADLINE
    ) as client:
        real_add_batch = hub.store.add_batch
        hub.store.add_batch = broken  # type: ignore[method-assign]
        failed = await client.post(
            "/api/tasks/t1/results/",
            json=batch(0, {"processed": [{"path": "/a"}]}),
            headers=key("t1", 0),
        )
        assert failed.status_code == 500
        assert budget.in_use == 0
        hub.store.add_batch = real_add_batch  # type: ignore[method-assign]
        stored = await client.post(
            "/api/tasks/t1/results/",
            json=batch(0, {"processed": [{"path": "/a"}]}),
            headers=key("t1", 0),
        )
        assert stored.status_code == 200, stored.text
        metrics = (await client.get("/metrics")).text
    assert budget.in_use == 0
    assert 2 * MIB <= budget.peak <= budget.capacity - budget.small_room
    assert "asyncstream_hub_body_bytes_in_flight 0.0" in metrics


def test_serve_names_the_option_and_refuses_a_budget_under_one_body() -> None:
    help_text = CliRunner().invoke(main, ["hub", "serve", "--help"]).output
    assert "--max-body-bytes-in-flight" in help_text
    result = subprocess.run(
        [
            *SERVE,
            "--store",
            "memory",
            "--max-body-bytes",
            "1000",
            "--max-body-bytes-in-flight",
            "999",
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env={**os.environ, "ASYNCSTREAM_API_KEY": "k"},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--max-body-bytes-in-flight (999) must be at least" in result.stderr


async def test_a_client_that_expects_100_continue_sends_no_body_when_refused() -> None:
    """With ``Expect: 100-continue``, a body that fits is asked for with 100
    Continue; one that does not gets its 503 instead, so it is never sent."""
    async with running_hub(
        store="memory",
        max_body_bytes=MIB,
        max_body_bytes_in_flight=MIB,
        body_budget_wait=0.2,
    ) as hub:
        expect = head("e", 0, hub.api_key, MIB).replace(
            b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"
        )
        first_reader, first = await asyncio.open_connection(
            "127.0.0.1", port_of(hub.url)
        )
        second_reader, second = await asyncio.open_connection(
            "127.0.0.1", port_of(hub.url)
        )
        try:
            first.write(expect)
            async with asyncio.timeout(DEADLINE):
                go_on = await first_reader.readuntil(b"\r\n\r\n")
            second.write(expect.replace(b"e:0", b"e:1"))
            refused = await read_all(second_reader)
        finally:
            first.close()
            second.close()
    assert go_on.startswith(b"HTTP/1.1 100 ")
    assert status_and_error(refused) == (503, "overloaded")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_body_sent_to_the_open_health_route_is_never_read(
    method: str,
) -> None:
    """Health needs no key: a body sent there must cost nothing, or anyone
    could fill the budget. It is answered at once, its body never waited for."""
    async with running_hub(
        store="memory", max_body_bytes=MIB, body_timeout=3 * DEADLINE
    ) as hub:
        budget = hub.app.state.body_budget
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(hub.url))
        try:
            writer.write(
                f"{method} /api/health/ HTTP/1.1\r\nHost: hub\r\n"
                f"Content-Length: {MIB}\r\n\r\n{{".encode()
            )
            answer = await read_all(reader)
        finally:
            writer.close()
    assert status_and_error(answer)[0] == (200 if method == "GET" else 405)
    assert budget.peak == 0
