"""Retention: a job's data deleted on request, completed work pruned by age.

Over every store, through the real hub over loopback, with tasks that ran as
a worker runs them (an input stream read, results streamed, a payload stored).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from asyncstream import AsyncStreamTaskResults, expand_paths
from asyncstream.cli import main
from asyncstream.hub import HubProcess, RunningHub, running_hub
from asyncstream.hub._memory import MemoryStore
from asyncstream.hub._retention import cutoff, prune_forever, referenced_streams
from asyncstream.hub._sqlite import SqliteStore
from asyncstream.hub._store import TaskFilter

from .test_migrations import write_v1_database


@pytest.fixture
async def http(any_hub: RunningHub) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=any_hub.url, headers=any_hub.headers, timeout=30
    ) as client:
        yield client


async def run_task(
    hub: RunningHub, http: httpx.AsyncClient, jobid: Any, taskid: str, *, done: bool
) -> str:
    """A task of ``jobid`` reading a stream of its own; returns the stream id."""
    created = await http.post("/api/streams/", json={"paths": ["/in/a", "/in/b"]})
    stream = created.json()
    await http.post(f"/api/streams/{stream['id']}/close")
    paths = [{"stream": stream["url"], "count": 2}]
    options = {"hub_url": hub.url, "api_key": hub.api_key, "batch_size": 1}
    status = AsyncStreamTaskResults("t", paths, jobid, "q", taskid, **options)
    async with expand_paths(paths, hub_url=hub.url, api_key=hub.api_key) as inputs:
        async for item in inputs:
            await status.add("processed", item)
    if done:
        await status.dump()
    else:
        await status.aclose()  # delivers what it has; the task stays running
    return str(stream["id"])


async def gone(http: httpx.AsyncClient, *urls: str) -> list[bool]:
    return [(await http.get(url)).status_code == 404 for url in urls]


async def test_deleting_a_job_removes_its_tasks_results_and_streams_only(
    any_hub: RunningHub, http: httpx.AsyncClient
) -> None:
    mine = [await run_task(any_hub, http, 41, f"a{i}", done=True) for i in range(2)]
    other = await run_task(any_hub, http, 42, "b0", done=True)

    async with httpx.AsyncClient(base_url=any_hub.url) as nobody:
        assert (await nobody.delete("/api/jobs/41/")).status_code == 401
    answer = await http.delete("/api/jobs/41/")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tasks": 2, "streams": 2}

    assert (
        await gone(
            http,
            "/api/jobs/41/",
            "/api/tasks/a0/",
            "/api/tasks/a1/results/",
            *(f"/api/streams/{s}/paths/" for s in mine),
        )
        == [True] * 5
    )
    assert (await http.get("/api/tasks/b0/results/")).json()["results"]
    assert (await http.get(f"/api/streams/{other}/paths/")).status_code == 200
    assert (await http.get("/api/jobs/", params={"state": "completed"})).json()[
        "count"
    ] == 1
    again = await http.delete("/api/jobs/41/")
    assert again.status_code == 404
    assert again.json()["error"] == "not_found"


async def test_a_job_with_a_running_task_is_kept_unless_forced(
    any_hub: RunningHub, http: httpx.AsyncClient
) -> None:
    await run_task(any_hub, http, "j-run", "r0", done=True)
    await run_task(any_hub, http, "j-run", "r1", done=False)
    refused = await http.delete("/api/jobs/j-run/")
    assert refused.status_code == 409
    assert refused.json()["error"] == "job_running"
    assert refused.json()["running"] == ["r1"]
    assert (await http.get("/api/tasks/r0/")).status_code == 200
    forced = await http.delete("/api/jobs/j-run/", params={"force": "true"})
    assert forced.json() == {"tasks": 2, "streams": 1}  # r1 stored no payload
    assert await gone(http, "/api/tasks/r0/", "/api/tasks/r1/") == [True, True]


async def test_prune_deletes_completed_work_before_the_cutoff_and_keeps_the_rest(
    any_hub: RunningHub, http: httpx.AsyncClient
) -> None:
    await run_task(any_hub, http, 7, "old", done=True)
    await run_task(any_hub, http, 7, "busy", done=False)
    still_open = (await http.post("/api/streams/", json={"paths": ["/x"]})).json()

    kept = await http.post("/api/retention/prune", json={"older_than_days": 1})
    assert kept.json()["tasks"] == kept.json()["streams"] == 0
    pruned = await http.post("/api/retention/prune", json={"older_than_days": 0})
    assert pruned.status_code == 200, pruned.text
    # The completed task and both closed streams; not the running task, not
    # the stream still open.
    assert (pruned.json()["tasks"], pruned.json()["streams"]) == (1, 2)
    assert await gone(http, "/api/tasks/old/", "/api/tasks/busy/") == [True, False]
    assert (await http.get(f"/api/streams/{still_open['id']}/paths/")).is_success
    bad = await http.post("/api/retention/prune", json={"older_than_days": -1})
    assert bad.status_code == 422


def test_the_streams_a_payload_names_are_found_by_id() -> None:
    def inputs(*items: Any) -> dict[str, Any]:
        return {"status": {"input_paths": list(items)}}

    payloads = [
        inputs({"path": "/a"}, {"stream": "/api/streams/s1/paths/"}),
        inputs({"stream": "http://h:8/api/streams/s2/paths/"}),
        inputs({"stream": "/elsewhere"}),
        None,
        {"status": "odd"},
    ]
    assert referenced_streams(payloads) == {"s1", "s2"}


async def test_prune_forever_prunes_at_once_then_every_interval() -> None:
    store = MemoryStore()
    info = await store.create_stream([{"path": "/a"}])
    await store.close_stream(info.id)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise anyio.get_cancelled_exc_class()
        # A stream closed between two prunes goes at the next one.
        await store.close_stream((await store.create_stream([])).id)

    with pytest.raises(anyio.get_cancelled_exc_class()):
        await prune_forever(store, 0, interval=5.0, sleep=sleep)
    assert slept == [5.0, 5.0]
    assert store._streams == {}


def prune_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["hub", "prune", *args])


async def test_hub_prune_cli_deletes_from_a_database_file_or_a_running_hub(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hub.sqlite3"
    key = "cli-key"
    async with (
        running_hub(store="sqlite", db_path=db, api_key=key) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as http,
    ):
        await run_task(hub, http, 9, "t9", done=True)
        await run_task(hub, http, 10, "t10", done=True)
        over_http = ("--hub", hub.url, "--api-key", key, "--job", "9")
        result = await anyio.to_thread.run_sync(lambda: prune_cli(*over_http))
        assert result.exit_code == 0, result.output
        assert "deleted 1 tasks and 1 input streams (job 9)" in result.output
        assert (await http.get("/api/tasks/t9/")).status_code == 404
    # The CLI runs its own event loop: from a thread of this test.
    missing = await anyio.to_thread.run_sync(
        lambda: prune_cli("--db", str(db), "--job", "9")
    )
    assert missing.exit_code == 1
    assert "no job '9'" in missing.output
    older = await anyio.to_thread.run_sync(
        lambda: prune_cli("--db", str(db), "--older-than", "0")
    )
    assert older.exit_code == 0, older.output
    assert "deleted 1 tasks and 1 input streams (older than 0 days)" in older.output
    store = SqliteStore(db)
    await store.open()
    try:
        assert (await store.list_tasks(TaskFilter(), 0, 10))[0] == 0
    finally:
        await store.close()
    absent = str(tmp_path / "no.db")
    nothing = await anyio.to_thread.run_sync(
        lambda: prune_cli("--db", absent, "--older-than", "1")
    )
    assert nothing.exit_code == 1
    assert "no database file" in nothing.output
    assert not (tmp_path / "no.db").exists()


def test_hub_serve_retain_days_prunes_a_database_it_serves(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"

    async def fill() -> None:
        async with (
            running_hub(store="sqlite", db_path=db) as hub,
            httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as h,
        ):
            await run_task(hub, h, 1, "done-long-ago", done=True)

    anyio.run(fill)
    process = HubProcess(db, api_key="k", extra_args=("--retain-days", "0"))
    process.start(timeout=60)
    try:
        headers = {"Authorization": "Api-Key k"}
        deadline = time.monotonic() + 30
        status = 200
        while status != 404 and time.monotonic() < deadline:
            status = httpx.get(
                f"{process.url}/api/tasks/done-long-ago/", headers=headers
            ).status_code
            time.sleep(0.2)
        assert status == 404
    finally:
        process.kill()


async def test_a_database_from_before_retention_is_migrated_and_can_be_pruned(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.sqlite3"
    write_v1_database(db)  # t1 finished in January 2026; streams without a time
    store = SqliteStore(db)
    await store.open()
    try:
        # Streams of an older database count from the upgrade: none is 30 days old.
        report = await store.prune(cutoff(30))
        assert (report.tasks, report.streams) == (1, 0)
        assert [t.id for t in (await store.list_tasks(TaskFilter(), 0, 10))[1]] == [
            "t2"
        ]
        await anyio.sleep(0.01)
        report = await store.prune(cutoff(0))
        assert (report.tasks, report.streams) == (0, 1)  # closed1; open1 stays
        assert (await store.read_stream("open1", 0, 10))[1].count == 2
    finally:
        await store.close()


async def test_a_failed_prune_is_logged_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FailingOnce(MemoryStore):
        calls = 0

        async def prune(self, before: str) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise OSError("disk unplugged")
            return await super().prune(before)

    store = FailingOnce()
    await store.close_stream((await store.create_stream([])).id)

    async def sleep(seconds: float) -> None:
        if store.calls == 2:
            raise anyio.get_cancelled_exc_class()

    with pytest.raises(anyio.get_cancelled_exc_class()):
        await prune_forever(store, 0, interval=1.0, sleep=sleep)
    assert "retention: pruning older than 0 days failed" in caplog.text
    assert "disk unplugged" in caplog.text
    assert store._streams == {}  # the second prune did its work
