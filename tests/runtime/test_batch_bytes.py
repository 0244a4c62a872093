"""Batches cut by bytes, the budget bounded by bytes, and results too large refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from asyncstream._exceptions import InvalidInputError, InvalidPathError
from asyncstream._retry import RetryPolicy
from asyncstream._send_budget import SendBudget
from asyncstream.hub import running_hub
from asyncstream.streamstatus import AsyncStreamTaskResults, StreamTaskResults
from tests.runtime._sender_fakes import API_KEY, HUB_URL, FakeHub

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LIMIT = 2_000


def options(hub: FakeHub, **more: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hub_url": HUB_URL,
        "api_key": API_KEY,
        "transport": hub.transport(),
        "batch_size": 100,
        "linger": 60.0,
        "max_batch_bytes": LIMIT,
        "retry_policy": RetryPolicy(initial=0.001, maximum=0.005),
        "started": STARTED,
    }
    return base | more


def fat(i: int, size: int = 300) -> dict[str, Any]:
    return {"path": f"/data/f{i}", "message": "é" * (size // 2)}


def check_bodies(hub: FakeHub, taskid: str, n: int) -> None:
    bodies = list(hub.batches[taskid].values())
    assert all(len(body) <= LIMIT for body in bodies)
    # Cut by bytes, not by count: a batch holds what fits, and more than one.
    counts = [len(json.loads(body)["items"]["processed"]) for body in bodies]
    assert sum(counts) == n
    assert max(counts) < 100
    assert min(counts[:-1]) > 1


@pytest.mark.parametrize("how", ["add", "add_many"])
async def test_async_batches_are_cut_under_max_batch_bytes(how: str) -> None:
    hub = FakeHub()
    async with AsyncStreamTaskResults("p", [], 1, None, "t1", **options(hub)) as st:
        if how == "add":
            for i in range(60):
                await st.add("processed", fat(i, size=100 + 7 * i))
        else:
            await st.add_many("processed", [fat(i, 100 + 7 * i) for i in range(60)])
        await st.dump()
    check_bodies(hub, "t1", 60)


@pytest.mark.parametrize("how", ["add", "add_many"])
def test_sync_batches_are_cut_under_max_batch_bytes(how: str) -> None:
    hub = FakeHub()
    status = StreamTaskResults("p", [], 1, None, "t2", **options(hub))
    if how == "add":
        for i in range(60):
            status.add("processed", fat(i, size=100 + 7 * i))
    else:
        status.add_many("processed", [fat(i, 100 + 7 * i) for i in range(60)])
    status.dump()
    check_bodies(hub, "t2", 60)


async def test_a_result_too_large_for_any_batch_is_refused_by_its_add() -> None:
    hub = FakeHub()
    huge = fat(0, size=LIMIT)
    async with AsyncStreamTaskResults("p", [], 1, None, "t3", **options(hub)) as st:
        await st.add("processed", fat(1))
        with pytest.raises(InvalidPathError, match=r"takes \d+ bytes.*max_batch_bytes"):
            await st.add("processed", huge)
        with pytest.raises(InvalidPathError, match=r"^items\[1\]: .*takes \d+ bytes"):
            await st.add_many("processed", [fat(2), huge, fat(3)])
        payload = await st.dump()
    assert payload["status"]["summary"]["processed"] == 2
    assert hub.summary("t3")["processed"] == 2
    status = StreamTaskResults("p", [], 1, None, "t4", **options(hub))
    with pytest.raises(InvalidPathError, match=f"{LIMIT}"):
        status.add("processed", huge)
    with pytest.raises(InvalidPathError, match=r"^items\[0\]: "):
        status.add_many("processed", [huge])
    assert status.dump()["status"]["summary"]["processed"] == 0


def test_the_budget_counts_bytes_and_the_options_are_checked() -> None:
    budget = SendBudget(max_items=100, max_batches=2, max_bytes=1_000)
    assert budget.has_room(1, 5_000)  # an empty budget takes one batch's worth
    budget.take(1, 600)
    assert budget.has_room(1, 400)
    assert not budget.has_room(1, 401)
    budget.resize(-100)
    assert budget.has_room(1, 500)
    budget.release(1, 500)
    assert (budget.items, budget.bytes) == (0, 0)
    hub = FakeHub()
    with pytest.raises(InvalidInputError, match="max_pending_bytes"):
        AsyncStreamTaskResults(
            "p", [], 1, None, "t", **options(hub, max_pending_bytes=LIMIT - 1)
        )
    with pytest.raises(InvalidInputError, match="max_batch_bytes"):
        AsyncStreamTaskResults(
            "p", [], 1, None, "t", **options(hub, max_batch_bytes=99)
        )


async def test_the_send_budget_bounds_bytes_outstanding() -> None:
    hub = FakeHub()
    release = anyio.Event()

    async def stall(request: httpx.Request, number: int) -> None:
        await release.wait()

    hub.intercept = stall
    knobs = options(hub, max_pending_bytes=5_000)
    async with AsyncStreamTaskResults("p", [], 1, None, "t5", **knobs) as status:
        async with anyio.create_task_group() as tg:
            tg.start_soon(status.add_many, "processed", [fat(i) for i in range(100)])
            await anyio.wait_all_tasks_blocked()
            stats = status.statistics()
            assert stats.adds_waiting == 1
            assert 5_000 - 400 < stats.bytes_outstanding <= 5_000
            assert stats.items_outstanding < 20
            release.set()
        await status.dump()
    assert hub.summary("t5")["processed"] == 100


@pytest.mark.parametrize("sync", [False, True])
async def test_results_with_70_kb_messages_reach_a_real_hub(sync: bool) -> None:
    """500 such results are 35 MB: one batch of them would pass the hub's limit."""
    message = "x" * 70_000
    taskid = f"fat-{sync}"
    async with running_hub(store="memory") as hub:
        knobs = {"hub_url": hub.url, "api_key": hub.api_key, "linger": 0.05}

        def work() -> None:
            status = StreamTaskResults("p", [], 1, "q", taskid, **knobs)
            for i in range(500):
                status.add("failures", f"/data/f{i}", message=message)
            status.dump()

        if sync:
            await anyio.to_thread.run_sync(work)
        else:
            async with AsyncStreamTaskResults("p", [], 1, "q", taskid, **knobs) as st:
                for i in range(500):
                    await st.add("failures", f"/data/f{i}", message=message)
                await st.dump()
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as c:
            task = (await c.get(f"/api/tasks/{taskid}/")).json()
    assert task["summary"]["failures"] == 500


@pytest.mark.parametrize("sync", [False, True])
async def test_long_plain_paths_are_cut_by_bytes_and_refused_when_too_long(
    sync: bool,
) -> None:
    hub = FakeHub()
    paths = [f"/data/{i:04d}/" + "d" * 150 for i in range(40)]
    too_long = "/" + "x" * LIMIT
    taskid = f"long-{sync}"
    if sync:
        status = StreamTaskResults("p", [], 1, None, taskid, **options(hub))
        status.add_many("processed", paths)
        with pytest.raises(InvalidPathError, match=r"^items\[2\]: .*bytes"):
            status.add_many("processed", ["/a", "/b", too_long])
        status.dump()
    else:
        async with AsyncStreamTaskResults(
            "p", [], 1, None, taskid, **options(hub)
        ) as st:
            await st.add_many("processed", paths)
            with pytest.raises(InvalidPathError, match=r"^items\[2\]: .*bytes"):
                await st.add_many("processed", ["/a", "/b", too_long])
            await st.dump()
    check_bodies(hub, taskid, 42)


def odd_and_plain_paths(n: int) -> list[str]:
    """Plain printable ASCII paths of growing length, and now and then one that
    is not plain (a tab, a non-ASCII letter, a byte that is not UTF-8)."""
    odd = ("/data/tab\there", "/data/été", "/data/raw\udcff")
    return [
        odd[i % 3] + str(i) if i % 17 == 5 else f"/data/{i:04d}/" + "d" * (i % 90)
        for i in range(n)
    ]


async def test_add_and_add_many_cut_the_same_bodies_from_plain_paths() -> None:
    # A run of plain paths is checked and sized at once; one that does not fit
    # the batch is split and the rest read again: the bodies must be the very
    # ones add() makes, every path once and in order.
    paths = odd_and_plain_paths(700)
    bodies: dict[str, list[bytes]] = {}
    for how in ("add", "add_many", "sync_add_many"):
        hub = FakeHub()
        if how == "sync_add_many":
            status = StreamTaskResults("p", [], 1, None, how, **options(hub))
            await anyio.to_thread.run_sync(status.add_many, "processed", paths)
            await anyio.to_thread.run_sync(status.dump)
        else:
            async with AsyncStreamTaskResults(
                "p", [], 1, None, how, **options(hub)
            ) as st:
                if how == "add":
                    for path in paths:
                        await st.add("processed", path)
                else:
                    await st.add_many("processed", iter(paths))
                await st.dump()
        check_bodies(hub, how, len(paths))
        bodies[how] = [hub.batches[how][seq] for seq in sorted(hub.batches[how])]
        stored = [
            p for body in bodies[how] for p in json.loads(body)["items"]["processed"]
        ]
        assert stored == [{"path": p} for p in paths]
    # Only the task id differs between the three; it is not in the body.
    assert bodies["add_many"] == bodies["add"]
    assert bodies["sync_add_many"] == bodies["add"]
