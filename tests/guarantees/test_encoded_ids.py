"""Task ids are data: any id reaches its own task at the hub, never another URL.

Ids are percent-encoded into every client URL (and the Idempotency-Key header),
the hub decodes them back, and a spool of such a task re-sends under the same id.
Against the real hub over loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncstream import AsyncStreamTaskResults, DeliveryError
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.hub import RunningHub
from tests.guarantees._support import knobs, read_spool_file, resend

HOSTILE_IDS = [
    "../../health",
    "..",
    ".",
    "a/b",
    "a%b",
    "%2F",
    "q?x=1",
    "frag#ment",
    "tâche-ü-日本",
    "sp ace",
    "ends-with/results",
]


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("taskid", HOSTILE_IDS)
async def test_any_task_id_streams_to_its_own_task(
    hub: RunningHub, taskid: str
) -> None:
    status = AsyncStreamTaskResults("p", [], 7, "q", taskid, **knobs(hub))
    for i in range(25):
        await status.add("processed", f"/data/{i}")
    await status.dump()

    stored = await hub.store.get_task(taskid)
    assert stored.summary["processed"] == 25
    async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
        task = await client.get_task(taskid)
        page = await client.get_results(taskid, page_size=100)
        job = await client.get_job(7)
    assert task["id"] == taskid
    assert task["finished"]
    assert sorted(r["path"] for r in page["results"]) == sorted(
        f"/data/{i}" for i in range(25)
    )
    assert [t["id"] for t in job["tasks"]] == [taskid]


async def test_ids_that_differ_only_in_encoding_stay_apart(hub: RunningHub) -> None:
    for taskid in ("a/b", "a%2Fb", "a%252Fb"):
        status = AsyncStreamTaskResults("p", [], 8, "q", taskid, **knobs(hub))
        await status.add("processed", f"/only/{taskid}")
        await status.dump()
    for taskid in ("a/b", "a%2Fb", "a%252Fb"):
        stored = await hub.store.get_task(taskid)
        assert stored.summary["processed"] == 1, taskid


@pytest.mark.parametrize("taskid", ["../../health", "a/b?c#d", "%é"])
async def test_a_spool_of_such_an_id_is_re_sent(
    hub: RunningHub, refused_url: str, tmp_path: Path, taskid: str
) -> None:
    options = knobs(hub, delivery_timeout=1.0, spool_dir=str(tmp_path))
    options["hub_url"] = refused_url
    status = AsyncStreamTaskResults("p", [], 9, "q", taskid, **options)
    for i in range(30):
        await status.add("processed", f"/spooled/{i}")
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    assert info.value.spool_path is not None
    assert read_spool_file(info.value.spool_path).header["taskid"] == taskid

    result = await resend(info.value.spool_path, hub)
    assert result.exit_code == 0, result.output
    stored = await hub.store.get_task(taskid)
    assert stored.summary["processed"] == 30
    assert stored.finished
