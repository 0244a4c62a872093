"""After a round: every spool file a task left is re-sent, under faults too.

A task that ends in ``DeliveryError`` must name its spool file; re-sending it
with the resend machinery must deliver every batch under its original key and,
if the task reached ``dump()``, complete it.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from .._config import HubSettings
from .._exceptions import DeliveryError
from .._hub_client import HubClient
from .._spool import read_spool, resend_spool
from ._chaos import HubChaos
from ._check import Violation
from ._report import RoundRecord
from ._tasks import FAST_RETRY, TaskOutcome


def _spool_files(spool_dir: Path, taskid: str) -> list[Path]:
    return sorted(
        [
            *spool_dir.glob(f"{taskid}.jsonl"),
            *spool_dir.glob(f"{taskid}.*.jsonl"),
        ]
    )


async def resend_spools(
    outcomes: list[TaskOutcome],
    chaos: HubChaos,
    record: RoundRecord,
    *,
    settings: HubSettings,
    spool_dir: Path,
) -> None:
    """Re-send every spool file a task left, with the resend machinery."""
    for outcome in outcomes:
        error, taskid = outcome.error, outcome.spec.taskid
        files = await anyio.to_thread.run_sync(_spool_files, spool_dir, taskid)
        if isinstance(error, DeliveryError):
            record.delivery_errors += 1
            if error.spool_path is None or Path(error.spool_path) not in files:
                record.violations.append(
                    Violation(
                        taskid, None, f"DeliveryError names no spool file: {error}"
                    )
                )
        for path in files:
            await _resend_one(taskid, path, settings, chaos, outcome, record)


async def _resend_one(
    taskid: str,
    path: Path,
    settings: HubSettings,
    chaos: HubChaos,
    outcome: TaskOutcome,
    record: RoundRecord,
) -> None:
    # The resend meets faults too: refused requests and a lost acknowledgement.
    prefix = f"/api/tasks/{taskid}/"
    await chaos.post_fault(
        fault="fail_next", n=2, status=503, retry_after=0.02, path_prefix=prefix
    )
    await chaos.post_fault(fault="drop_after_commit", n=1, path_prefix=prefix)
    try:
        spool = read_spool(path)
        async with HubClient(settings, retry_policy=FAST_RETRY, timeout=5.0) as hub:
            report = await resend_spool(spool, hub, delivery_timeout=60.0)
    except Exception as exc:
        record.violations.append(
            Violation(taskid, None, f"resend of {path} failed: {exc!r}")
        )
        return
    record.resent_batches += report.batches
    record.resend_duplicates += report.duplicates
    await anyio.Path(path).unlink()
    if outcome.reached_dump and spool.payload is not None and not report.completed:
        record.violations.append(
            Violation(taskid, None, f"resending {path} did not complete the task")
        )
