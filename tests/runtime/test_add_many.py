"""add_many: a list of results at once, sync and async, validated like add()."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from asyncstream._batch_body import BatchEnvelope
from asyncstream._exceptions import InvalidPathError, InvalidStateError, UsageError
from asyncstream._retry import RetryPolicy
from asyncstream.hub import running_hub
from asyncstream.status import FileActionStatus
from asyncstream.streamstatus import AsyncStreamTaskResults, StreamTaskResults
from tests.runtime._sender_fakes import API_KEY, HUB_URL, FakeHub

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def options(hub: FakeHub, **more: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hub_url": HUB_URL,
        "api_key": API_KEY,
        "transport": hub.transport(),
        "batch_size": 10,
        "linger": 60.0,
        "max_pending_items": 30,
        "retry_policy": RetryPolicy(initial=0.001, maximum=0.005),
        "started": STARTED,
    }
    return base | more


def items(n: int, start: int = 0) -> list[Any]:
    """Path strings, and every third a path object with extra keys."""
    return [
        {"path": f"/data/f{i}", "size": i, "message": f"m{i}"}
        if i % 3 == 0
        else f"/data/f{i}"
        for i in range(start, start + n)
    ]


def as_objects(raw: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append({"path": item})
        else:
            out.append({**item, "message": [item["message"]]})
    return out


async def test_async_add_many_sends_every_result_once_with_add_in_between() -> None:
    hub = FakeHub()
    async with AsyncStreamTaskResults("p", [], 1, None, "t1", **options(hub)) as st:
        await st.add_many("processed", items(95))
        await st.add("failures", "/data/x", message="no")
        await st.add_many("skipped", iter(items(7, start=200)))
        await st.add_many("processed", [])
        payload = await st.dump()
    assert payload["status"]["summary"]["processed"] == 95
    assert payload["status"]["summary"]["skipped"] == 7
    assert hub.summary("t1") == payload["status"]["summary"]
    stored = [(s, p) for s, p in hub.paths("t1") if s == "processed"]
    assert [p for _, p in stored] == [f"/data/f{i}" for i in range(95)]
    # Batches never pass batch_size, and seqs are 0..n-1.
    assert sorted(hub.batches["t1"]) == list(range(len(hub.batches["t1"])))
    assert max(b.count(b'"path"') for b in hub.batches["t1"].values()) <= 10


def test_sync_add_many_sends_every_result_once() -> None:
    hub = FakeHub()
    status = StreamTaskResults("p", [], 1, None, "t2", **options(hub))
    status.add("failures", "/data/x", message="no")
    status.add_many("processed", items(95))
    status.add_many("skipped", (f"/data/s{i}" for i in range(7)))
    payload = status.dump()
    assert payload["status"]["summary"]["processed"] == 95
    assert payload["status"]["summary"]["failures"] == 1
    assert hub.summary("t2") == payload["status"]["summary"]
    assert max(b.count(b'"path"') for b in hub.batches["t2"].values()) <= 10


@pytest.mark.parametrize("bad", [{"nopath": 1}, 42, "", {"path": "/a", "x": {1: 2}}])
async def test_async_add_many_refuses_a_bad_item_naming_its_index(bad: Any) -> None:
    hub = FakeHub()
    async with AsyncStreamTaskResults("p", [], 1, None, "t3", **options(hub)) as st:
        with pytest.raises(InvalidPathError, match=r"^items\[23\]: "):
            await st.add_many("processed", [*items(23), bad, *items(5, start=50)])
        with pytest.raises(InvalidStateError):
            await st.add_many("done", items(3))
        payload = await st.dump()
    # Those before it are recorded, it and those after are not.
    assert payload["status"]["summary"]["processed"] == 23
    assert hub.summary("t3")["processed"] == 23


def test_sync_add_many_refuses_a_bad_item_naming_its_index() -> None:
    hub = FakeHub()
    status = StreamTaskResults("p", [], 1, None, "t4", **options(hub))
    with pytest.raises(InvalidPathError, match=r"^items\[12\]: "):
        status.add_many("processed", [*items(12), {"path": 3}, "/data/after"])
    assert status.summary["processed"] == 12
    payload = status.dump()
    assert hub.summary("t4")["processed"] == payload["status"]["summary"]["processed"]
    assert payload["status"]["summary"]["processed"] == 12
    with pytest.raises(UsageError, match="after dump"):
        status.add_many("processed", ["/data/late"])


async def test_async_add_many_waits_for_the_budget_and_keeps_it() -> None:
    hub = FakeHub()
    release = anyio.Event()

    async def stall(request: httpx.Request, number: int) -> None:
        await release.wait()

    hub.intercept = stall
    knobs = options(hub, max_pending_items=25)  # not a multiple of batch_size
    status = AsyncStreamTaskResults("p", [], 1, None, "t5", **knobs)
    async with status:
        async with anyio.create_task_group() as tg:
            tg.start_soon(status.add_many, "processed", items(500))
            await anyio.wait_all_tasks_blocked()
            stats = status.statistics()
            assert (stats.items_outstanding, stats.adds_waiting) == (25, 1)
            release.set()
        await status.dump()
    assert hub.summary("t5")["processed"] == 500


@pytest.mark.parametrize("sync", [False, True])
async def test_add_many_delivers_to_a_real_hub(sync: bool) -> None:
    raw = items(2_345)
    async with running_hub(store="sqlite") as hub:
        knobs: dict[str, Any] = {"hub_url": hub.url, "api_key": hub.api_key,
                                 "batch_size": 100, "linger": 0.05}  # fmt: skip
        if sync:

            def work() -> None:
                status = StreamTaskResults("p", [], 1, "q", "many-sync", **knobs)
                status.add_many("processed", raw)
                status.dump()

            await anyio.to_thread.run_sync(work)
        else:
            async with AsyncStreamTaskResults(
                "p", [], 1, "q", "many-async", **knobs
            ) as status:
                await status.add_many("processed", raw)
                await status.dump()
        taskid = "many-sync" if sync else "many-async"
        stored: list[dict[str, Any]] = []
        params: dict[str, Any] = {"page_size": 1000}
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as c:
            while True:
                page = await c.get(f"/api/tasks/{taskid}/results/", params=params)
                body = page.json()
                stored += body["results"]
                if body["next"] is None:
                    break
                params["cursor"] = body["next"]
    got = sorted(
        ({k: v for k, v in r.items() if k in ("path", "size", "message")}
         for r in stored),
        key=lambda r: r["path"],
    )  # fmt: skip
    assert got == sorted(as_objects(raw), key=lambda r: r["path"])


def test_file_action_status_add_many_is_add_for_each() -> None:
    many = FileActionStatus("p", [], 1, None, started=STARTED)
    one = FileActionStatus("p", [], 1, None, started=STARTED)
    raw = items(10)
    many.add_many("processed", raw)
    many.add_many("failures", ["/data/x"])
    for item in raw:
        one.add("processed", item)
    one.add("failures", "/data/x")
    with pytest.raises(InvalidPathError, match=r"^items\[1\]: "):
        many.add_many("skipped", ["/data/y", None])
    one.add("skipped", "/data/y")
    assert many.dump() == one.dump()


def test_the_sync_shim_encodes_batches_in_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    encode = BatchEnvelope.encode_items

    def spy(items: Any) -> bytes:
        if items:  # not the envelope measuring itself
            threads.append(threading.current_thread().name)
        return encode(items)

    monkeypatch.setattr(BatchEnvelope, "encode_items", staticmethod(spy))
    hub = FakeHub()
    status = StreamTaskResults("p", [], 1, None, "t6", **options(hub))
    for i in range(15):
        status.add("processed", f"/data/f{i}")
    status.add_many("skipped", items(20))
    status.dump()
    assert len(hub.batches["t6"]) == len(threads) == 4
    assert set(threads) == {threading.current_thread().name}
    assert hub.summary("t6")["processed"] == 15
