"""One deadline caps every request, and a failed delivery says why it failed.

A hub that accepts a connection and never answers must not hold ``dump()`` or
``asyncstream resend`` past their deadline (the per-request timeout is longer);
a delivery that fails carries the last cause: the hub's status and reason, a
refused connection, a name that does not resolve. Against real loopback servers.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from asyncstream import AsyncStreamTaskResults, DeliveryError
from asyncstream.cli import main
from asyncstream.hub import RunningHub
from tests.guarantees._support import knobs

# Generous against a noisy machine, far below the 30 s request timeout that
# bounded these calls before.
DEADLINE = 4.0
MARGIN = 12.0


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A loopback server that reads whatever it is sent and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):  # type: ignore[no-untyped-def]
        writers.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def status_for(url: str, taskid: str, spool: Path) -> AsyncStreamTaskResults:
    return AsyncStreamTaskResults(
        "p",
        [],
        1,
        "q",
        taskid,
        hub_url=url,
        api_key="k",
        delivery_timeout=DEADLINE,
        request_timeout=30.0,
        spool_dir=str(spool),
    )


async def test_dump_returns_by_its_deadline_when_complete_is_never_answered(
    silent_url: str, tmp_path: Path
) -> None:
    status = status_for(silent_url, "silent-complete", tmp_path)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + MARGIN, f"dump() took {elapsed:.1f}s"
    assert "no answer within" in str(info.value)
    assert info.value.spool_path is not None  # the completion is kept to re-send


async def test_resend_returns_by_its_timeout_against_a_silent_hub(
    hub: RunningHub, silent_url: str, tmp_path: Path
) -> None:
    # A real spool: the hub refuses every batch of the task, then a resend goes
    # to a hub that never answers.
    hub.faults.fail_next(10_000, status=503, retry_after=0.01)
    status = AsyncStreamTaskResults(
        "p", [], 1, "q", "to-resend", **knobs(hub, delivery_timeout=1.0),
        spool_dir=str(tmp_path),
    )  # fmt: skip
    for i in range(25):
        await status.add("processed", f"/r/{i}")
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    spool = info.value.spool_path
    assert spool is not None

    def resend() -> tuple[float, int, str]:
        started = time.monotonic()
        result = CliRunner().invoke(
            main,
            ["resend", spool, "--hub", silent_url, "--timeout", str(DEADLINE)],
        )
        return time.monotonic() - started, result.exit_code, result.output

    elapsed, code, output = await anyio.to_thread.run_sync(resend)
    assert code != 0
    assert elapsed < DEADLINE + MARGIN, f"resend took {elapsed:.1f}s"
    assert "no answer within" in output
    assert await anyio.Path(spool).exists()  # nothing delivered: it stays


async def test_a_failed_delivery_names_the_hubs_status_and_reason(
    hub: RunningHub, tmp_path: Path
) -> None:
    hub.faults.fail_next(10_000, status=500, retry_after=0.01)
    status = AsyncStreamTaskResults(
        "p", [], 1, "q", "says-500", **knobs(hub, delivery_timeout=1.5),
        spool_dir=str(tmp_path),
    )  # fmt: skip
    for i in range(15):
        await status.add("processed", f"/f/{i}")
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    error = info.value
    assert error.status_code == 500
    assert error.cause is not None
    assert "500" in error.cause
    assert "fault injected" in error.cause  # the hub's own reason
    assert "500" in str(error)
    assert status.report.last_error is not None
    assert "500" in status.report.last_error


async def test_a_refused_connection_is_named(refused_url: str, tmp_path: Path) -> None:
    status = status_for(refused_url, "refused", tmp_path)
    await status.add("processed", "/x")
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    assert info.value.cause is not None
    assert "ConnectError" in info.value.cause
    assert "refused" in info.value.cause.lower()
    assert info.value.status_code is None
    assert "refused" in (status.report.last_error or "").lower()


async def test_a_name_that_does_not_resolve_is_named(tmp_path: Path) -> None:
    status = status_for("http://no-such-hub.invalid:8000", "dns", tmp_path)
    await status.add("processed", "/x")
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    cause = info.value.cause or ""
    assert "ConnectError" in cause
    assert any(w in cause.lower() for w in ("name", "resolution", "known")), cause
