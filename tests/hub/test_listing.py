"""Task and job listings over loopback HTTP, against every store that keeps tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncstream._paths import STATES
from asyncstream.hub import RunningHub, SqliteStore
from asyncstream.hub._sql_rows import task_listing_sql
from asyncstream.hub._store import TaskFilter

from .conftest import batch, hub_over, key


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    async with hub_over(request, request.param) as running:
        yield running


@pytest.fixture
async def api(any_hub: RunningHub) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=any_hub.url, headers=any_hub.headers, timeout=10
    ) as c:
        yield c


async def start_task(
    api: httpx.AsyncClient,
    taskid: str,
    *,
    jobid: Any = 7,
    task: str = "my-plugin",
    items: dict[str, list[Any]] | None = None,
    complete: bool = False,
) -> None:
    """A task announced by one batch, optionally completed."""
    body = batch(0, items or {"processed": [{"path": f"/fs/{taskid}"}]})
    body.update(jobid=jobid, task=task)
    sent = await api.post(
        f"/api/tasks/{taskid}/results/", json=body, headers=key(taskid, 0)
    )
    assert sent.status_code == 200, sent.text
    if complete:
        done = await api.post(f"/api/tasks/{taskid}/complete", json={"batches": 1})
        assert done.status_code == 200, done.text


def ids(page: dict[str, Any]) -> list[str]:
    return [row["id"] for row in page["results"]]


async def test_tasks_are_listed_newest_first_in_linked_pages(
    api: httpx.AsyncClient,
) -> None:
    for n in range(1, 6):
        await start_task(api, f"t{n}")
    first = (await api.get("/api/tasks/", params={"page_size": 2})).json()
    assert (first["count"], ids(first), first["previous"]) == (5, ["t5", "t4"], None)
    # next and previous are full URLs keeping the query, only the page changes.
    assert first["next"].startswith("http://127.0.0.1:")
    second = (await api.get(first["next"])).json()
    assert ids(second) == ["t3", "t2"]
    assert "page_size=2" in second["next"]
    third = (await api.get(second["next"])).json()
    assert (ids(third), third["next"]) == (["t1"], None)
    back = (await api.get(third["previous"])).json()
    assert back == second
    row = first["results"][0]
    assert (row["jobid"], row["task"], row["queue"]) == (
        7,
        "my-plugin",
        "london.q#custom",
    )
    assert row["summary"] == {**dict.fromkeys(STATES, 0), "processed": 1}
    assert "payload" not in row


async def test_task_filters_by_job_state_and_name_combine(
    api: httpx.AsyncClient,
) -> None:
    await start_task(api, "a1", jobid=1, task="alpha", complete=True)
    await start_task(api, "a2", jobid=1, task="beta")
    await start_task(api, "b1", jobid="2", task="alpha")
    await start_task(api, "n1", jobid=None, task="alpha", complete=True)

    async def listed(**params: Any) -> list[str]:
        answer = await api.get("/api/tasks/", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["count"] == len(page["results"])
        return ids(page)

    assert await listed() == ["n1", "b1", "a2", "a1"]
    assert await listed(jobid=1) == ["a2", "a1"]
    assert await listed(jobid=2) == ["b1"]
    assert await listed(state="completed") == ["n1", "a1"]
    assert await listed(state="running") == ["b1", "a2"]
    assert await listed(task="alpha") == ["n1", "b1", "a1"]
    assert await listed(jobid=1, state="running", task="beta") == ["a2"]
    assert await listed(jobid=1, task="gamma") == []


async def test_jobs_are_listed_newest_first_summed_over_their_tasks(
    api: httpx.AsyncClient,
) -> None:
    await start_task(api, "j1a", jobid=1, complete=True)
    await start_task(api, "j2a", jobid=2, complete=True)
    await start_task(
        api, "j1b", jobid=1, items={"skipped": [{"path": "/s"}, {"path": "/t"}]}
    )
    await start_task(api, "none", jobid=None)
    page = (await api.get("/api/jobs/")).json()
    assert (page["count"], page["next"], page["previous"]) == (2, None, None)
    assert ids(page) == ["2", "1"]
    two, one = page["results"]
    assert (two["state"], two["tasks"], two["running"]) == ("completed", 1, 0)
    assert two["finished"] is not None
    assert (one["state"], one["tasks"], one["running"]) == ("running", 2, 1)
    assert one["finished"] is None
    assert one["summary"] == {**dict.fromkeys(STATES, 0), "processed": 1, "skipped": 2}
    assert one["started"] < two["started"]
    done = (await api.get("/api/jobs/", params={"state": "completed"})).json()
    assert (done["count"], ids(done)) == (1, ["2"])
    running = (await api.get("/api/jobs/", params={"state": "running"})).json()
    assert ids(running) == ["1"]
    paged = (await api.get("/api/jobs/", params={"page_size": 1, "page": 2})).json()
    assert (ids(paged), paged["next"]) == (["1"], None)
    assert "page=1" in paged["previous"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "query.page"),
        ({"page": "two"}, "query.page"),
        ({"page_size": 0}, "query.page_size"),
        ({"page_size": 1001}, "query.page_size"),
        ({"state": "done"}, "query.state"),
        ({"jobid": ""}, "query.jobid"),
    ],
)
async def test_bad_listing_parameters_are_422_naming_them(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    url = "/api/jobs/" if set(params) <= {"page", "page_size", "state"} else None
    for path in filter(None, ["/api/tasks/", url]):
        answer = await api.get(path, params=params)
        assert answer.status_code == 422, answer.text
        assert (answer.json()["error"], answer.json()["field"]) == (
            "invalid_request",
            field,
        )


async def test_a_page_past_the_last_is_404_and_an_empty_first_page_is_not(
    api: httpx.AsyncClient,
) -> None:
    empty = (await api.get("/api/tasks/")).json()
    assert empty == {"count": 0, "next": None, "previous": None, "results": []}
    await start_task(api, "only")
    past = await api.get("/api/tasks/", params={"page": 2})
    assert past.status_code == 404
    assert past.json()["error"] == "invalid_page"
    assert "last page (1)" in past.json()["detail"]


async def test_a_task_with_zero_results_keeps_its_identity(
    api: httpx.AsyncClient,
) -> None:
    body = {"batches": 0, "payload": {}, "task": "quiet", "jobid": 9, "queue": "q1"}
    done = await api.post("/api/tasks/z/complete", json=body)
    assert done.status_code == 200, done.text
    task = (await api.get("/api/tasks/z/")).json()
    assert (task["jobid"], task["task"], task["queue"], task["state"]) == (
        9,
        "quiet",
        "q1",
        "completed",
    )
    assert task["summary"] == dict.fromkeys(STATES, 0)
    assert ids((await api.get("/api/tasks/", params={"jobid": 9})).json()) == ["z"]
    job = (await api.get("/api/jobs/9/")).json()
    assert [t["id"] for t in job["tasks"]] == ["z"]


async def test_complete_of_an_unknown_task_without_identity_is_refused(
    api: httpx.AsyncClient,
) -> None:
    stray = await api.post("/api/tasks/ghost/complete", json={"batches": 0})
    assert stray.status_code == 422
    assert (stray.json()["error"], stray.json()["field"]) == ("unknown_task", "task")
    assert "'ghost'" in stray.json()["detail"]
    assert (await api.get("/api/tasks/ghost/")).status_code == 404
    # The id stays free: the real task announces itself and completes.
    await start_task(api, "ghost")
    done = await api.post("/api/tasks/ghost/complete", json={"batches": 1})
    assert (done.status_code, done.json()["task"]) == (200, "my-plugin")


async def test_complete_of_a_known_task_keeps_the_identity_of_its_batches(
    api: httpx.AsyncClient,
) -> None:
    await start_task(api, "k", jobid=3, task="first")
    body = {"batches": 1, "task": "other", "jobid": 4, "queue": None}
    done = (await api.post("/api/tasks/k/complete", json=body)).json()
    assert (done["jobid"], done["task"], done["state"]) == (3, "first", "completed")


@pytest.mark.parametrize(
    "identity",
    [{"task": ""}, {"task": 5}, {"task": "t", "jobid": 1.5}, {"task": "t", "queue": 3}],
)
async def test_complete_with_a_malformed_identity_is_422(
    api: httpx.AsyncClient, identity: dict[str, Any]
) -> None:
    answer = await api.post("/api/tasks/m/complete", json={"batches": 0, **identity})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert (await api.get("/api/tasks/m/")).status_code == 404


async def test_an_unknown_task_completed_with_batches_lists_them_missing(
    api: httpx.AsyncClient,
) -> None:
    body = {"batches": 2, "task": "t", "jobid": 1, "queue": "q"}
    answer = await api.post("/api/tasks/u/complete", json=body)
    assert (answer.status_code, answer.json()["missing"]) == (409, [0, 1])
    assert (await api.get("/api/tasks/u/")).status_code == 404


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (TaskFilter(), "tasks_by_started"),
        (TaskFilter(jobid="7"), "tasks_by_job_started"),
        (TaskFilter(task="my-plugin", state="running"), "tasks_by_name_started"),
    ],
)
async def test_a_listing_page_is_read_through_an_index_in_its_order(
    tmp_path: Path, where: TaskFilter, index: str
) -> None:
    store = SqliteStore(tmp_path / "hub.sqlite3")
    await store.open()
    try:
        _, page_sql, args = task_listing_sql(where, "?")
        plan = await store._r.execute_fetchall(
            f"EXPLAIN QUERY PLAN {page_sql}", (*args, 10, 0)
        )
    finally:
        await store.close()
    steps = [str(row[3]) for row in plan]
    # The page of ids is chosen by walking the index, not by sorting the table.
    assert any(index in step for step in steps), steps
    assert not any(step.strip() == "SCAN tasks" for step in steps), steps
    # Only the page itself (a few rows, with their counts) is sorted.
    assert sum("TEMP B-TREE" in step for step in steps) <= 1, steps
