"""``hub serve --workers 2`` on PostgreSQL: two processes behind one port keep
every promise of the protocol as one hub would.

A response names the process that answered (``X-Hub-Process``); the tests keep
one connection to each process and send the competing requests through both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner

from asyncstream.cli import main
from asyncstream.hub import HubProcess
from asyncstream.hub._serve import PROCESS_HEADER
from tests.conftest import postgres_schema

from .conftest import batch, key

if TYPE_CHECKING:
    import psycopg

HEADERS = {"Authorization": "Api-Key test-key"}
# Connections tried before concluding one process answers all of them.
MAX_CONNECTIONS = 40


@pytest.fixture(scope="module")
def two_process_hub(postgres_server: str) -> Iterator[HubProcess]:
    """One ``hub serve --workers 2`` for the module, on a schema of its own."""
    with postgres_schema(postgres_server) as dsn:
        hub = HubProcess(None, store="postgres", dsn=dsn, workers=2)
        try:
            # Two processes importing the app at once start slowly on a busy machine.
            hub.start(timeout=90)
            yield hub
        finally:
            hub.stop()


@pytest.fixture
async def clients(
    two_process_hub: HubProcess,
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two clients, each with one keep-alive connection to a different process."""
    by_process: dict[str, httpx.AsyncClient] = {}
    spare: list[httpx.AsyncClient] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            client = httpx.AsyncClient(
                base_url=two_process_hub.url,
                headers=HEADERS,
                timeout=30,
                limits=httpx.Limits(max_connections=1),
            )
            response = await client.get("/api/health/")
            process = response.headers[PROCESS_HEADER]
            if process in by_process:
                spare.append(client)
            else:
                by_process[process] = client
            if len(by_process) == 2:
                break
        assert len(by_process) == 2, (
            f"{MAX_CONNECTIONS} connections all reached process {list(by_process)}"
        )
        yield list(by_process.values())
    finally:
        for client in [*by_process.values(), *spare]:
            await client.aclose()


async def test_one_key_sent_to_both_processes_at_once_is_stored_once(
    clients: list[httpx.AsyncClient],
) -> None:
    a, b = clients
    for seq in range(10):
        items = {"processed": [{"path": f"/fs/{seq}/{i}"} for i in range(200)]}
        body = batch(seq, items)
        answers = await asyncio.gather(
            *(
                c.post("/api/tasks/race/results/", json=body, headers=key("race", seq))
                for c in (a, b)
            )
        )
        outcomes = sorted((r.status_code, r.json()["duplicate"]) for r in answers)
        assert outcomes == [(200, False), (200, True)], seq
    task = (await b.get("/api/tasks/race/")).json()
    assert (task["batches"], task["summary"]["processed"]) == (10, 2000)
    done = await a.post("/api/tasks/race/complete", json={"batches": 10})
    assert done.json()["state"] == "completed"


async def test_a_key_reused_with_another_body_on_the_other_process_is_409(
    clients: list[httpx.AsyncClient],
) -> None:
    a, b = clients
    first = batch(0, {"processed": [{"path": "/fs/one"}]})
    other = batch(0, {"processed": [{"path": "/fs/two"}]})
    assert (
        await a.post("/api/tasks/c1/results/", json=first, headers=key("c1", 0))
    ).json() == {
        "accepted": 1,
        "duplicate": False,
    }
    conflict = await b.post("/api/tasks/c1/results/", json=other, headers=key("c1", 0))
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "idempotency_conflict"
    page = (await b.get("/api/tasks/c1/results/")).json()
    assert page["results"] == [{"state": "processed", "path": "/fs/one"}]


async def test_completion_and_reset_on_one_process_see_batches_of_the_other(
    clients: list[httpx.AsyncClient],
) -> None:
    a, b = clients
    for seq in range(3):
        body = batch(seq, {"processed": [{"path": f"/fs/{seq}"}]})
        await a.post("/api/tasks/cr/results/", json=body, headers=key("cr", seq))
    early = await b.post("/api/tasks/cr/complete", json={"batches": 4})
    assert (early.status_code, early.json()["missing"]) == (409, [3])
    assert (await b.post("/api/tasks/cr/reset")).json() == {"dropped": 3}
    assert (await a.get("/api/tasks/cr/")).status_code == 404
    body = batch(0, {"skipped": [{"path": "/fs/again"}]})
    await b.post("/api/tasks/cr/results/", json=body, headers=key("cr", 0))
    done = await a.post("/api/tasks/cr/complete", json={"batches": 1})
    assert done.json()["summary"]["skipped"] == 1
    late = batch(1, {"processed": [{"path": "/fs/late"}]})
    refused = await b.post("/api/tasks/cr/results/", json=late, headers=key("cr", 1))
    assert (refused.status_code, refused.json()["error"]) == (409, "task_completed")


async def test_a_long_poll_on_one_process_wakes_on_an_append_through_the_other(
    two_process_hub: HubProcess, clients: list[httpx.AsyncClient]
) -> None:
    a, b = clients
    stream = (await a.post("/api/streams/", json={"paths": []})).json()
    # A wait far past the test's patience: only a wake-up answers in time.
    reader = await _reading_an_empty_stream(
        two_process_hub.dsn,
        lambda: b.get(stream["url"], params={"wait": 60}, timeout=90),
    )
    appended = await a.post(
        f"/api/streams/{stream['id']}/paths/", json={"paths": ["/in/x"], "offset": 0}
    )
    assert appended.json()["count"] == 1
    page = (await asyncio.wait_for(reader, 20)).json()
    assert page["results"] == [{"path": "/in/x"}]
    # An offset taken through one process is taken for the other too.
    clash = await b.post(
        f"/api/streams/{stream['id']}/paths/", json={"paths": ["/in/y"], "offset": 0}
    )
    assert clash.status_code == 409


async def _reading_an_empty_stream(
    dsn: str | None, read: Callable[[], Awaitable[httpx.Response]]
) -> asyncio.Task[httpx.Response]:
    """Start ``read`` and return once its process has found the stream empty.

    The streams table is locked while the read starts, so its query is seen
    waiting in ``pg_stat_activity``; once that backend is idle again, the read
    has its (empty) answer and waits, and an append can only wake it.
    """
    import psycopg

    assert dsn is not None
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as locker,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher,
    ):
        async with locker.transaction():
            await locker.execute("LOCK TABLE streams IN ACCESS EXCLUSIVE MODE")
            reader = asyncio.create_task(read())
            pid = await _poll(
                watcher,
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'SELECT count, closed FROM streams%%'",
            )
        await _poll(
            watcher,
            "SELECT pid FROM pg_stat_activity WHERE pid = %s AND state = 'idle'",
            pid,
        )
    return reader


async def _poll(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    """The first column of the first row ``query`` returns, once it returns one."""
    for _ in range(400):
        row = await (await conn.execute(query, args)).fetchone()
        if row is not None:
            return row[0]
        await asyncio.sleep(0.025)
    raise AssertionError(f"never true: {query}")


def test_workers_need_the_postgres_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["hub", "serve", "--db", str(tmp_path / "hub.db"), "--workers", "2"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "asyncstream hub serve: --workers 2 needs the postgres store"
        " (--db postgresql://...): the sqlite store lives in one process"
    ]
    assert not (tmp_path / "hub.db").exists()
