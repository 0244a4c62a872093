"""``asyncstream resend`` within its time, and honest about completion.

Held line by line (what mutation testing found loose): a resend at a hub that
refuses everything gives up after ``--timeout`` and keeps the file; a spool of a
task that did not finish is re-sent whole but never reported as completed.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from click.testing import CliRunner, Result

from asyncstream import AsyncStreamTaskResults
from asyncstream.cli import main
from asyncstream.hub import RunningHub
from tests.guarantees._support import RESULTS, hub_paths, knobs, spools_of


async def _resend(spool: Path, hub: RunningHub, within: float) -> Result:
    args = ["resend", str(spool), "--hub", hub.url, "--api-key", hub.api_key or ""]
    args += ["--timeout", str(within)]
    # Abandoned on cancel: a resend that ignores its timeout fails the test at the
    # caller's limit instead of holding it for minutes.
    return await anyio.to_thread.run_sync(
        lambda: CliRunner().invoke(main, args), abandon_on_cancel=True
    )


async def test_resend_gives_up_after_its_timeout_then_delivers_without_completing(
    hub: RunningHub, tmp_path: Path
) -> None:
    taskid = "resend-aborted"
    added = [f"/resend/{i}" for i in range(15)]
    hub.faults.fail_next(10_000, status=503, retry_after=0.05, path_prefix=RESULTS)
    status = AsyncStreamTaskResults(
        "p", [], 1, "q", taskid, **knobs(hub, spool_dir=str(tmp_path))
    )
    for path in added:
        await status.add("processed", path)
    await status.aabort()  # out of time: everything is spooled, no payload
    (spool,) = spools_of(tmp_path, taskid)

    with anyio.fail_after(30):  # the hub still refuses: 1 s of retrying, then out
        refused = await _resend(spool.path, hub, within=1.0)
    assert refused.exit_code == 1, refused.output
    assert spool.path.exists()  # kept for a later try

    hub.faults.reset()
    with anyio.fail_after(30):
        done = await _resend(spool.path, hub, within=10.0)
    assert done.exit_code == 0, done.output
    assert "task not completed (it failed)" in done.output
    assert sorted(await hub_paths(hub, taskid)) == sorted(added)
    assert not spool.path.exists()
