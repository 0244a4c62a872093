"""What the behavioural tests read back: the hub's stored data and spool files.

Everything here goes through public surfaces only (the hub's HTTP API, the
documented JSON-lines spool format, the ``asyncstream`` command line), so the
tests keep working whatever the runtime's internals look like.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from click.testing import CliRunner, Result

from asyncstream import AsyncStreamTaskResults, DeliveryError
from asyncstream.cli import main
from asyncstream.hub import RunningHub

RESULTS = "/api/tasks/"


def knobs(hub: RunningHub, **more: Any) -> dict[str, Any]:
    """Options of a stream status talking to ``hub``; linger long unless asked."""
    base: dict[str, Any] = {
        "hub_url": hub.url,
        "api_key": hub.api_key,
        "batch_size": 10,
        "linger": 60.0,
        "max_pending_items": 1000,
        "delivery_timeout": 30.0,
    }
    return base | more


async def undeliverable(
    hub: RunningHub,
    taskid: str,
    spool_dir: Path | str | None,
    n: int = 30,
    *,
    message: str | None = None,
) -> DeliveryError:
    """Run a task whose hub refuses every request of it; return its delivery error.

    ``spool_dir=None`` leaves the spool to its default place. The delivery
    deadline is short (1 s): every call waits it out in full.
    """
    hub.faults.fail_next(
        10_000, status=503, retry_after=0.01, path_prefix=f"/api/tasks/{taskid}/"
    )
    options = knobs(hub, delivery_timeout=1.0)
    if spool_dir is not None:
        options["spool_dir"] = str(spool_dir)
    status = AsyncStreamTaskResults("p", [], 1, "q", taskid, **options)
    for i in range(n):
        await status.add("processed", f"/{taskid}/{i}", message=message)
    try:
        await status.dump()
    except DeliveryError as exc:
        return exc
    finally:
        hub.faults.reset()
    raise AssertionError("dump() delivered to a hub that refused everything")


async def hub_task(hub: RunningHub, taskid: str) -> dict[str, Any] | None:
    """The hub's summary of a task, ``None`` if it never heard of it."""
    async with httpx.AsyncClient(
        base_url=hub.url, headers=hub.headers, timeout=10
    ) as client:
        response = await client.get(f"/api/tasks/{taskid}/")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        task: dict[str, Any] = response.json()
        return task


async def hub_paths(hub: RunningHub, taskid: str) -> list[str]:
    """Every result path the hub stores for a task, duplicates kept."""
    found: list[str] = []
    cursor: str | None = None
    async with httpx.AsyncClient(
        base_url=hub.url, headers=hub.headers, timeout=10
    ) as client:
        while True:
            params: dict[str, Any] = {"page_size": 1000}
            if cursor:
                params["cursor"] = cursor
            response = await client.get(f"/api/tasks/{taskid}/results/", params=params)
            if response.status_code == 404:
                return found
            response.raise_for_status()
            page = response.json()
            found += [r["path"] for r in page["results"]]
            cursor = page["next"]
            if cursor is None:
                return found


@dataclass(frozen=True)
class Spool:
    """A spool file as written on disk: its header line and its batch lines."""

    path: Path
    header: dict[str, Any]
    batches: list[dict[str, Any]]

    @property
    def seqs(self) -> list[int]:
        return [b["seq"] for b in self.batches]

    @property
    def paths(self) -> list[str]:
        out: list[str] = []
        for batch in self.batches:
            body = json.loads(batch["body"])
            for objs in body["items"].values():
                out += [o["path"] for o in objs]
        return out


def read_spool_file(path: str | Path) -> Spool:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return Spool(Path(path), json.loads(lines[0]), [json.loads(x) for x in lines[1:]])


def spools_of(folder: Path, taskid: str) -> list[Spool]:
    return [read_spool_file(p) for p in sorted(folder.glob(f"{taskid}*.jsonl"))]


async def resend(spool: str | Path, hub: RunningHub) -> Result:
    """``asyncstream resend SPOOL`` against ``hub``, run as a user would."""

    def invoke() -> Result:
        return CliRunner().invoke(
            main,
            [
                "resend",
                str(spool),
                "--hub",
                hub.url,
                "--api-key",
                hub.api_key or "",
                "--timeout",
                "10",
            ],
        )

    return await anyio.to_thread.run_sync(invoke)


async def wait_until(predicate: Callable[[], Any], what: str) -> None:
    """Poll an observable condition (never a fixed sleep); fail after 10 s."""
    with anyio.fail_after(10):
        # The runtime offers no event for these conditions: statistics() is polled.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.01)
    assert predicate(), what
