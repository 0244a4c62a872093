"""Spool files: undelivered result batches kept on disk, and re-sending them.

When a task's batches are not acknowledged in time, they are written — with their
``seq`` and exact request bodies — to a JSON-lines file named after the task id,
so that ``asyncstream resend FILE`` delivers them later under the same idempotency
keys (the hub counts a batch it already has once) and then completes the task.

Line 1 is the header::

    {"format": "asyncstream-spool", "version": 1, "taskid": ..., "jobid": ...,
     "task": ..., "queue": ..., "hub_url": ..., "batches": <seqs cut>,
     "payload": <dump payload, or null when the task did not finish>}

each further line one batch: ``{"seq": n, "count": items, "body": "<exact JSON>"}``.
The hub URL is kept to say where the batches belong; credentials never are.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from ._batch_keys import Batch
from ._batch_split import RefusedItem, post_or_split
from ._exceptions import (
    AsyncStreamError,
    DeliveryError,
    HubError,
    HubRejectedError,
    HubUnavailableError,
    InvalidInputError,
)
from ._hub_client import HubClient
from ._identity import TaskIdentity
from ._spool_dir import default_spool_dir, private_spool_dir, spool_name

logger = logging.getLogger("asyncstream.spool")

SPOOL_FORMAT: Final = "asyncstream-spool"
SPOOL_VERSION: Final = 1


def write_spool(
    directory: str | os.PathLike[str] | None,
    identity: TaskIdentity,
    batches: Iterable[Batch],
    *,
    batches_cut: int,
    payload: dict[str, Any] | None,
    hub_url: str,
    refused: Sequence[RefusedItem] = (),
) -> Path:
    """Write ``batches`` to a new spool file for the task and return its path.

    The file is written under a temporary name (mode 0600) and linked into
    place, so a spool file is always complete and private; an existing spool of
    the same task is never overwritten (the new one gets a numbered name).
    """
    folder = private_spool_dir(
        Path(directory) if directory is not None else default_spool_dir()
    )
    first = {
        "format": SPOOL_FORMAT,
        "version": SPOOL_VERSION,
        "taskid": identity.taskid,
        "jobid": identity.jobid,
        "task": identity.taskname,
        "queue": identity.queue_name,
        "hub_url": hub_url,
        "batches": batches_cut,
        "payload": payload,
        "written": time.time(),
        # Results the hub refused for good: kept to be seen, never re-sent.
        "refused": [r.as_json() for r in refused],
    }
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".spool-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(first) + "\n")
            for batch in batches:
                line = {
                    "seq": batch.seq,
                    "count": batch.count,
                    "body": batch.body.decode(),
                }
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        base = spool_name(identity.taskid or "")
        for n in range(10_000):
            target = folder / (f"{base}.jsonl" if n == 0 else f"{base}.{n}.jsonl")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            return target
        raise OSError(f"too many spool files for task {identity.taskid!r} in {folder}")
    finally:
        os.unlink(tmp)


def short_seqs(seqs: list[int]) -> str:
    """At most ten seqs of a list, for a message."""
    return f"{seqs[:10]}{'...' if len(seqs) > 10 else ''}"


def _public_url(url: str) -> str:
    # A URL may carry user:password; errors and spool files must not.
    return str(httpx.URL(url).copy_with(username=None, password=None))


def spool_undelivered(
    exc: HubError,
    batches: list[Batch],
    *,
    identity: TaskIdentity,
    batches_cut: int,
    payload: dict[str, Any] | None,
    spool_dir: str | os.PathLike[str] | None,
    hub_url: str,
    delivery_timeout: float,
    refused: Sequence[RefusedItem] = (),
) -> AsyncStreamError:
    """Spool the batches ``exc`` left unacknowledged; return the error to raise.

    An unavailable hub becomes a :class:`DeliveryError` saying what was kept where;
    a rejection stays itself, with that said in a note. A spool that cannot be
    written is said too: the error must still reach the caller.
    """
    seqs = [b.seq for b in batches]
    items = sum(b.count for b in batches)
    url = _public_url(hub_url)
    try:
        path: str | None = str(
            write_spool(
                spool_dir,
                identity,
                batches,
                batches_cut=batches_cut,
                payload=payload,
                hub_url=url,
                refused=refused,
            )
        )
        kept = f"spooled to {path}: re-send with 'asyncstream resend {path}'"
    except OSError as spool_exc:
        path = None
        where = spool_dir if spool_dir is not None else default_spool_dir()
        reason = spool_exc.strerror or str(spool_exc)
        kept = (
            f"and they could NOT be kept: they could not be spooled to {where}"
            f" ({reason}); these results are lost unless the task runs again"
        )
    what = f"{len(seqs)} batches ({items} results, seqs {short_seqs(seqs)})"
    logger.error(
        "task %s: %s not delivered to %s, %s", identity.taskid, what, url, kept
    )
    if isinstance(exc, HubUnavailableError):
        return DeliveryError(
            f"task {identity.taskid!r}: {what} not acknowledged by the hub at {url}"
            f" within {delivery_timeout}s ({exc}); {kept}",
            undelivered_seqs=seqs,
            undelivered_items=items,
            spool_path=path,
            cause=str(exc),
            status_code=exc.status_code,
        )
    exc.add_note(f"undelivered: {what}, {kept}")
    return exc


@dataclass(frozen=True, slots=True)
class SpoolFile:
    """The content of a spool file: where the batches go, and the batches."""

    taskid: str
    hub_url: str | None
    batches_cut: int
    payload: dict[str, Any] | None
    batches: list[Batch]
    # Who the task is, from the header: its completion carries it to the hub.
    identity: TaskIdentity | None = None

    @property
    def items(self) -> int:
        """How many results the spooled batches hold."""
        return sum(b.count for b in self.batches)


def read_spool(path: str | os.PathLike[str]) -> SpoolFile:
    """Parse a spool file, naming the line that is not right."""
    batches: list[Batch] = []
    with open(path, encoding="utf-8") as lines:
        try:
            first = json.loads(next(lines))
        except (StopIteration, ValueError) as exc:
            raise InvalidInputError(f"{path}: not a spool file ({exc})") from None
        if not isinstance(first, dict) or first.get("format") != SPOOL_FORMAT:
            raise InvalidInputError(f"{path}: not an asyncstream spool file")
        for number, text in enumerate(lines, start=2):
            try:
                line = json.loads(text)
                batch = Batch(
                    seq=int(line["seq"]),
                    count=int(line["count"]),
                    body=str(line["body"]).encode(),
                    cut_at=0.0,
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(
                    f"{path}:{number}: bad batch line: {exc!r}"
                ) from None
            batches.append(batch)
    taskid, batches_cut = first.get("taskid"), first.get("batches")
    if not isinstance(taskid, str) or not taskid:
        raise InvalidInputError(f"{path}: spool header lacks 'taskid'")
    if type(batches_cut) is not int or batches_cut < 0:
        raise InvalidInputError(f"{path}: spool header lacks 'batches'")
    return SpoolFile(
        taskid=taskid,
        hub_url=first.get("hub_url"),
        batches_cut=batches_cut,
        payload=first.get("payload"),
        batches=batches,
        identity=TaskIdentity(
            taskid=taskid,
            queue_name=first.get("queue"),
            taskname=first.get("task"),
            jobid=first.get("jobid"),
        ),
    )


@dataclass(frozen=True, slots=True)
class ResendReport:
    """What a resend did: batches posted, how many the hub already had, completion."""

    batches: int
    items: int
    duplicates: int
    completed: bool
    # Results the hub refused for good, with its reasons (not delivered).
    refused: tuple[RefusedItem, ...] = ()


async def resend_spool(
    spool: SpoolFile, client: HubClient, *, delivery_timeout: float = 300.0
) -> ResendReport:
    """Post every spooled batch under its original key, then complete the task.

    The completion is posted only when the spool holds the task's payload (the
    task reached ``dump()``). Raises :class:`DeliveryError` if the hub says
    batches are still missing.
    """
    deadline = client.deadline(delivery_timeout)
    duplicates = 0
    refused: list[RefusedItem] = []
    for batch in spool.batches:
        # Split as the sender did: the same reduced bytes under the same key.
        answer = await post_or_split(
            client, spool.taskid, batch, deadline=deadline, on_refused=refused.append
        )
        duplicates += answer.get("duplicate") is True
        logger.info("resent batch %s of task %s", batch.seq, spool.taskid)
    completed = False
    if spool.payload is not None:
        try:
            await client.complete_task(
                spool.taskid,
                spool.batches_cut,
                spool.payload,
                identity=spool.identity,
                deadline=deadline,
            )
        except HubRejectedError as exc:
            missing = missing_seqs(exc)
            if not missing:
                raise
            raise DeliveryError(
                f"task {spool.taskid!r}: the hub still misses batches {missing}"
                " that this spool file does not hold",
                undelivered_seqs=missing,
            ) from exc
        completed = True
    return ResendReport(
        len(spool.batches), spool.items, duplicates, completed, tuple(refused)
    )


def missing_seqs(exc: HubRejectedError) -> list[int]:
    """The seqs a 409 answer to a completion lists as missing (protocol v1); empty
    for any other rejection."""
    detail = exc.detail
    if exc.status_code == 409 and isinstance(detail, dict):
        missing = detail.get("missing")
        if isinstance(missing, list):
            return [int(s) for s in missing if isinstance(s, int)]
    return []
