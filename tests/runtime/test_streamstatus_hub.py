"""StreamTaskResults against the real hub over loopback HTTP, with faults injected."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from asyncstream._exceptions import DeliveryError
from asyncstream._paths import STATES
from asyncstream._retry import RetryPolicy
from asyncstream.cli import main
from asyncstream.hub import HubProcess, RunningHub, running_hub
from asyncstream.streamstatus import AsyncStreamTaskResults, StreamTaskResults

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RESULTS_PREFIX = "/api/tasks/"
FAST_RETRY = RetryPolicy(initial=0.01, maximum=0.1)


def results(n: int) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for i in range(n):
        if i % 11 == 4:
            out.append(("failures", f"/data/f{i:06d}", f"error {i}"))
        elif i % 3 == 0:
            out.append(("skipped", f"/data/f{i:06d}", None))
        else:
            out.append(("processed", f"/data/f{i:06d}", None))
    return out


def expected_summary(n: int) -> dict[str, int]:
    summary = dict.fromkeys(STATES, 0)
    for state, _, _ in results(n):
        summary[state] += 1
    return summary


def knobs(url: str, api_key: str | None, **more: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hub_url": url,
        "api_key": api_key,
        "batch_size": 50,
        "linger": 0.05,
        "max_pending_items": 200,
        "max_inflight_batches": 4,
        "retry_policy": FAST_RETRY,
        "delivery_timeout": 30.0,
        "started": STARTED,
    }
    return base | more


async def hub_state(url: str, api_key: str | None, taskid: str) -> dict[str, Any]:
    """The hub's task summary and every stored (state, path), read back over HTTP."""
    headers = {"Authorization": f"Api-Key {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as c:
        task = (await c.get(f"/api/tasks/{taskid}/")).json()
        stored: list[tuple[str, str]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": 1000}
            if cursor:
                params["cursor"] = cursor
            page = (await c.get(f"/api/tasks/{taskid}/results/", params=params)).json()
            stored += [(r["state"], r["path"]) for r in page["results"]]
            cursor = page["next"]
            if cursor is None:
                break
    return {"task": task, "results": stored}


def assert_exactly_once(state: dict[str, Any], n: int) -> None:
    assert state["task"]["summary"] == expected_summary(n)
    assert sorted(state["results"]) == sorted((s, p) for s, p, _ in results(n))
    assert len(set(state["results"])) == n


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite") as running:
        yield running


async def test_faults_leave_every_result_at_the_hub_exactly_once(
    hub: RunningHub,
) -> None:
    n = 1500
    hub.faults.fail_next(4, status=503, retry_after=0.05, path_prefix=RESULTS_PREFIX)
    hub.faults.drop_after_commit(3, path_prefix=RESULTS_PREFIX)
    # Slower than the client's timeout: the hub commits, the client gives up
    # and retries the same key.
    hub.faults.delay(0.6, n=2, path_prefix=RESULTS_PREFIX)
    async with AsyncStreamTaskResults(
        "my-plugin",
        [],
        3,
        "q",
        "faulty",
        **knobs(hub.url, hub.api_key, request_timeout=0.3),
    ) as status:
        for state, path, message in results(n):
            await status.add(state, path, message=message)
        payload = await status.dump()
    assert hub.faults.injected == {"fail": 4, "drop": 3, "delay": 2}
    report = status.report
    # Every fail and every drop hits a request of its own (a 503 is answered
    # before a drop could happen), and each of those is retried. A delay may
    # fall on one of them (faults apply delay, then fail, then drop): then its
    # retry is that request's, so the delays add at most two more.
    assert report.retries >= 4 + 3
    # A drop may hit a delayed request whose client already left (no commit):
    # how many retries find their batch already stored depends on timing.
    assert report.duplicates >= 1
    assert payload["status"]["summary"] == expected_summary(n)
    assert payload["status"]["streamed"]["batches"] == n // 50
    stored = await hub_state(hub.url, hub.api_key, "faulty")
    assert_exactly_once(stored, n)
    assert stored["task"]["batches"] == n // 50
    assert stored["task"]["state"] == "completed"
    assert stored["task"]["payload"] == payload


async def test_add_blocks_while_the_hub_stalls_and_resumes_when_it_recovers(
    hub: RunningHub,
) -> None:
    n = 600
    hub.faults.delay(0.5, path_prefix=RESULTS_PREFIX)  # until reset
    added = 0
    async with AsyncStreamTaskResults(
        "p", [], 3, "q", "stall", **knobs(hub.url, hub.api_key, max_pending_items=100)
    ) as status:

        async def produce() -> None:
            nonlocal added
            for state, path, message in results(n):
                await status.add(state, path, message=message)
                added += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with anyio.fail_after(10):
                while status.statistics().adds_waiting == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            stats = status.statistics()
            assert added == 100  # the budget, and not one more
            assert stats.items_outstanding == 100
            assert stats.batches_acked == 0
            hub.faults.reset()  # the hub recovers
        payload = await status.dump()
    assert added == n
    assert payload["status"]["summary"] == expected_summary(n)
    assert_exactly_once(await hub_state(hub.url, hub.api_key, "stall"), n)


async def test_sync_and_async_usage_give_the_same_hub_state_and_payload(
    hub: RunningHub,
) -> None:
    n = 777
    inputs = [{"path": "/in/a"}, {"stream": "/api/streams/x/paths/", "count": 900}]
    # Batches cut by size only: a linger that runs out on a slow machine cuts
    # more batches, and the payload counts them.
    options = knobs(hub.url, hub.api_key, linger=60.0)

    def run_sync() -> dict[str, Any]:
        status = StreamTaskResults("p", inputs, 3, "q", "sync", **options)
        for state, path, message in results(n):
            status.add(state, path, message=message)
        return status.dump()

    sync_payload = await anyio.to_thread.run_sync(run_sync)
    status = AsyncStreamTaskResults("p", inputs, 3, "q", "async", **options)
    for state, path, message in results(n):
        await status.add(state, path, message=message)
    async_payload = await status.dump()

    assert sync_payload == async_payload
    assert sync_payload["status"]["input_total"] == 901
    sync_state = await hub_state(hub.url, hub.api_key, "sync")
    async_state = await hub_state(hub.url, hub.api_key, "async")
    assert sync_state["results"] == async_state["results"]
    for stored in (sync_state, async_state):
        assert_exactly_once(stored, n)
    assert sync_state["task"]["payload"] == async_state["task"]["payload"]


async def test_delivery_error_then_resend_command_delivers_with_the_same_keys(
    hub: RunningHub, tmp_path: Path
) -> None:
    n = 230
    hub.faults.fail_next(
        10_000, status=503, retry_after=0.01, path_prefix=RESULTS_PREFIX
    )
    status = AsyncStreamTaskResults(
        "p",
        [],
        3,
        "q",
        "spooled",
        **knobs(
            hub.url,
            hub.api_key,
            delivery_timeout=0.5,
            max_pending_items=1000,  # room for all: it is dump() that fails
            spool_dir=str(tmp_path),
        ),
    )
    for state, path, message in results(n):
        await status.add(state, path, message=message)
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    error = info.value
    assert error.undelivered_items == n
    assert error.undelivered_seqs == tuple(range(5))
    assert error.spool_path is not None
    hub.faults.reset()

    def resend() -> Any:
        return CliRunner().invoke(
            main, ["resend", error.spool_path, "--api-key", hub.api_key or ""]
        )

    result = await anyio.to_thread.run_sync(resend)
    assert result.exit_code == 0, result.output
    assert "resent 5 batches (230 results" in result.output
    assert "task completed" in result.output
    assert not await anyio.Path(error.spool_path).exists()
    stored = await hub_state(hub.url, hub.api_key, "spooled")
    assert_exactly_once(stored, n)
    assert stored["task"]["state"] == "completed"
    assert stored["task"]["payload"]["status"]["summary"] == expected_summary(n)


def test_a_hub_killed_and_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    n = 3000
    with HubProcess(tmp_path / "hub.sqlite3", api_key="k") as process:
        status = StreamTaskResults(
            "p",
            [],
            3,
            "q",
            "restarted",
            **knobs(process.url, "k", max_pending_items=300),
        )
        killed = threading.Event()
        for i, (state, path, message) in enumerate(results(n)):
            if i == n // 3:
                process.kill()  # SIGKILL: in-flight batches get no answer
                killed.set()
                restart = threading.Timer(0.5, process.start)
                restart.start()
            status.add(state, path, message=message)
        payload = status.dump()
        restart.join()
        assert killed.is_set()
        assert status.report.retries > 0
        assert payload["status"]["summary"] == expected_summary(n)
        stored = anyio.run(hub_state, process.url, "k", "restarted")
    assert_exactly_once(stored, n)
    assert stored["task"]["state"] == "completed"
    assert stored["task"]["payload"] == payload
