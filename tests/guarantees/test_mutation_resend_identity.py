"""A resend completes the task as who it is, within its time, and says what is lost.

Held line by line (what mutation testing found loose): the spool header's task
name, job and queue travel with the completion a resend posts, so a task that
sent no result is created at the hub as itself; the completion is retried until
the resend's deadline and never past it; and when the hub still misses batches
the error names the task and exactly those seqs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner, Result

from asyncstream import AsyncStreamTaskResults, DeliveryError
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream._spool import read_spool, resend_spool
from asyncstream.cli import main
from asyncstream.hub import RunningHub
from tests.guarantees._support import hub_paths, hub_task, knobs, read_spool_file


async def _resend(spool: Path, hub: RunningHub, within: float = 10.0) -> Result:
    args = ["resend", str(spool), "--hub", hub.url, "--api-key", hub.api_key or ""]
    args += ["--timeout", str(within)]
    # Abandoned on cancel: a resend that ignores its timeout fails the test at the
    # caller's limit instead of holding it for minutes.
    return await anyio.to_thread.run_sync(
        lambda: CliRunner().invoke(main, args), abandon_on_cancel=True
    )


async def _hub_get(hub: RunningHub, url: str) -> Any:
    async with httpx.AsyncClient(
        base_url=hub.url, headers=hub.headers, timeout=10
    ) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.json()


async def _spooled_without_results(
    hub: RunningHub, tmp_path: Path, taskid: str, jobid: Any
) -> Path:
    """A task that adds nothing and whose completion the hub refuses until the
    delivery deadline: its spool holds no batch, only who it is and its payload."""
    hub.faults.fail_next(
        10_000, status=503, retry_after=0.05, path_prefix=f"/api/tasks/{taskid}/"
    )
    options = knobs(hub, delivery_timeout=1.5, spool_dir=str(tmp_path))
    status = AsyncStreamTaskResults(
        "scan-archive", [], jobid, "q-tape", taskid, **options
    )
    try:
        with anyio.fail_after(30):
            with pytest.raises(DeliveryError) as caught:
                await status.dump()
    finally:
        hub.faults.reset()
    assert caught.value.spool_path is not None
    assert await hub_task(hub, taskid) is None  # the hub never heard of it
    return Path(caught.value.spool_path)


@pytest.mark.parametrize("jobid", [4242, "job-7"])
async def test_resent_completion_creates_a_task_without_results_as_itself(
    hub: RunningHub, tmp_path: Path, jobid: Any
) -> None:
    taskid = f"ident-empty-{jobid}"
    spool = await _spooled_without_results(hub, tmp_path, taskid, jobid)
    header = read_spool_file(spool).header
    assert (header["task"], header["jobid"], header["queue"]) == (
        "scan-archive",
        jobid,
        "q-tape",
    )
    assert read_spool_file(spool).batches == []

    with anyio.fail_after(30):
        done = await _resend(spool, hub)
    assert done.exit_code == 0, done.output
    assert "task completed" in done.output
    assert not spool.exists()

    task = await hub_task(hub, taskid)
    assert task is not None
    assert (task["task"], task["jobid"], task["queue"]) == (
        "scan-archive",
        jobid,
        "q-tape",
    )
    assert task["state"] == "completed"
    assert task["batches"] == 0
    assert task["payload"] is not None
    job = await _hub_get(hub, f"/api/jobs/{jobid}/")
    assert [t["id"] for t in job["tasks"]] == [taskid]
    assert await hub_paths(hub, taskid) == []


def _edit_header(spool: Path, change: dict[str, Any], drop: tuple[str, ...]) -> None:
    lines = spool.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0]) | change
    for key in drop:
        del header[key]
    lines[0] = json.dumps(header)
    spool.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def test_resend_carries_the_identity_the_spool_file_says(
    hub: RunningHub, tmp_path: Path
) -> None:
    # Every field changed to a value no other field holds: a field read from
    # the wrong key, or sent under the wrong one, shows at the hub.
    taskid = "ident-edited"
    spool = await _spooled_without_results(hub, tmp_path, taskid, 1)
    _edit_header(spool, {"task": "renamed-task", "jobid": 99, "queue": "q-new"}, ())
    with anyio.fail_after(30):
        done = await _resend(spool, hub)
    assert done.exit_code == 0, done.output
    task = await hub_task(hub, taskid)
    assert task is not None
    assert (task["task"], task["jobid"], task["queue"], task["state"]) == (
        "renamed-task",
        99,
        "q-new",
        "completed",
    )
    listed = await _hub_get(hub, "/api/tasks/?task=renamed-task")
    assert [t["id"] for t in listed["results"]] == [taskid]


async def test_resend_without_job_and_queue_completes_with_nulls(
    hub: RunningHub, tmp_path: Path
) -> None:
    # jobid and queue may be null (protocol: "Completing a task: who it is").
    taskid = "ident-nulls"
    spool = await _spooled_without_results(hub, tmp_path, taskid, 5)
    _edit_header(spool, {}, ("jobid", "queue"))
    with anyio.fail_after(30):
        done = await _resend(spool, hub)
    assert done.exit_code == 0, done.output
    task = await hub_task(hub, taskid)
    assert task is not None
    assert (task["task"], task["jobid"], task["queue"], task["state"]) == (
        "scan-archive",
        None,
        None,
        "completed",
    )


async def test_resend_without_a_task_name_is_refused_and_keeps_the_file(
    hub: RunningHub, tmp_path: Path
) -> None:
    # Documented: a completion of an unknown task without `task` is refused
    # (422 unknown_task naming the task id) and nothing is stored.
    taskid = "ident-nameless"
    spool = await _spooled_without_results(hub, tmp_path, taskid, 5)
    _edit_header(spool, {}, ("task",))
    with anyio.fail_after(30):
        refused = await _resend(spool, hub)
    assert refused.exit_code == 1, refused.output
    assert f"task {taskid!r} is unknown to the hub" in refused.output
    assert "must carry its identity" in refused.output
    assert spool.exists()
    assert await hub_task(hub, taskid) is None


@pytest.mark.parametrize("missing", ["taskid", "batches"])
async def test_a_header_without_its_task_id_or_count_is_refused_naming_the_file(
    hub: RunningHub, tmp_path: Path, missing: str
) -> None:
    spool = await _spooled_without_results(hub, tmp_path, f"ident-no-{missing}", 5)
    _edit_header(spool, {}, (missing,))
    with anyio.fail_after(30):
        refused = await _resend(spool, hub)
    assert refused.exit_code == 1, refused.output
    assert str(spool) in refused.output
    assert missing in refused.output


async def test_resend_retries_a_refused_completion_within_its_timeout(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "ident-retried"
    spool = await _spooled_without_results(hub, tmp_path, taskid, 8)
    # Refused a few times, then taken: inside a 20 s resend the retries get it.
    before = hub.faults.injected["fail"]
    hub.faults.fail_next(
        3, status=503, retry_after=0.05, path_prefix=f"/api/tasks/{taskid}/complete"
    )
    with anyio.fail_after(60):
        done = await _resend(spool, hub, within=20.0)
    assert done.exit_code == 0, done.output
    assert hub.faults.injected["fail"] - before == 3
    task = await hub_task(hub, taskid)
    assert task is not None
    assert task["state"] == "completed"
    assert not spool.exists()


async def test_resend_at_a_silent_hub_gives_up_at_its_timeout_and_keeps_the_file(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "ident-silent"
    spool = await _spooled_without_results(hub, tmp_path, taskid, 9)
    # The hub holds the completion far longer than the resend may wait (and
    # longer than one request's own timeout, 30 s).
    hub.faults.delay(45.0, n=1, path_prefix=f"/api/tasks/{taskid}/complete")
    with anyio.fail_after(25):  # --timeout 2, with a wide margin for a busy host
        refused = await _resend(spool, hub, within=2.0)
    assert refused.exit_code == 1, refused.output
    assert f"/api/tasks/{taskid}/complete" in refused.output
    assert spool.exists()


async def test_resend_names_the_task_and_exactly_the_seqs_the_hub_still_misses(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "ident-missing"
    options = knobs(hub, spool_dir=str(tmp_path), delivery_timeout=2.0)
    hub.faults.fail_next(
        10_000, status=503, retry_after=0.01, path_prefix=f"/api/tasks/{taskid}/"
    )
    status = AsyncStreamTaskResults("p", [], 1, "q", taskid, **options)
    for i in range(50):  # five batches of ten: seqs 0..4
        await status.add("processed", f"/missing/{i}")
    try:
        with anyio.fail_after(30):
            with pytest.raises(DeliveryError) as caught:
                await status.dump()
    finally:
        hub.faults.reset()
    assert caught.value.spool_path is not None
    path = anyio.Path(caught.value.spool_path)
    lines = (await path.read_text(encoding="utf-8")).splitlines()
    assert [json.loads(x)["seq"] for x in lines[1:]] == [0, 1, 2, 3, 4]
    del lines[4], lines[2]  # the batches of seqs 1 and 3 are lost
    await path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    spool = read_spool(path)
    settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
    with anyio.fail_after(30):
        async with HubClient(settings) as client:
            with pytest.raises(DeliveryError) as still:
                await resend_spool(spool, client, delivery_timeout=10.0)
    assert still.value.undelivered_seqs == (1, 3)
    assert str(still.value) == (
        f"task {taskid!r}: the hub still misses batches [1, 3]"
        " that this spool file does not hold"
    )
    task = await hub_task(hub, taskid)
    assert task is not None
    assert task["state"] == "running"
    assert len(await hub_paths(hub, taskid)) == 30
