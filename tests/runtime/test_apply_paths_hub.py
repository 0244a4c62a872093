"""apply_paths through the real hub: input streamed in, results streamed out."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncstream import (
    AsyncStreamTaskResults,
    StreamTaskResults,
    apply_paths,
    expand_paths,
)
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.hub import RunningHub, running_hub


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite") as running:
        yield running


@pytest.fixture
async def client(hub: RunningHub) -> AsyncIterator[HubClient]:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as opened:
        yield opened


def make_files(root: Path, n: int) -> list[dict[str, Any]]:
    root.mkdir()
    paths = []
    for i in range(n):
        (root / f"f{i}").write_text("x")
        paths.append({"path": str(root / f"f{i}")})
    return [*paths, {"path": str(root / "absent")}]


def remaining(root: Path) -> int:
    return len(os.listdir(root))


async def file_stream(client: HubClient, root: Path, n: int) -> dict[str, Any]:
    paths = make_files(root, n)
    info = await client.create_stream()
    await client.append_stream(info["id"], paths)
    await client.close_stream(info["id"])
    return {"stream": info["url"], "count": n + 1}


def unlink(item: dict[str, Any]) -> str:
    os.unlink(item["path"])
    return "processed"


async def test_async_task_deletes_a_streamed_input_and_streams_the_results(
    hub: RunningHub, client: HubClient, tmp_path: Path
) -> None:
    paths = [await file_stream(client, tmp_path / "tree", 2500)]
    options = {"hub_url": hub.url, "api_key": hub.api_key, "batch_size": 100}
    async with AsyncStreamTaskResults(
        "delete", paths, 1, "q", "apply-async", **options
    ) as status:
        summary = await apply_paths(
            unlink, expand_paths(paths, hub_url=hub.url, api_key=hub.api_key), status
        )
        payload = await status.dump()
    assert summary["processed"] == 2500
    assert summary["failures"] == 1
    assert payload["status"]["summary"] == summary
    assert remaining(tmp_path / "tree") == 0
    task = await client.get_task("apply-async")
    assert task["summary"] == summary
    assert task["state"] == "completed"


async def test_sync_task_gets_the_same_concurrency_through_the_shim(
    hub: RunningHub, client: HubClient, tmp_path: Path
) -> None:
    paths = [await file_stream(client, tmp_path / "tree", 2500)]
    options = {"hub_url": hub.url, "api_key": hub.api_key, "batch_size": 100}

    def task_body() -> dict[str, Any]:
        # A plain task body, in a thread of its own as in a Celery worker.
        status = StreamTaskResults("delete", paths, 1, "q", "apply-sync", **options)
        inputs = expand_paths(paths, hub_url=hub.url, api_key=hub.api_key)
        apply_paths(unlink, inputs, status, concurrency=8).run()
        return status.dump()

    payload = await anyio.to_thread.run_sync(task_body)
    assert payload["status"]["summary"]["processed"] == 2500
    assert payload["status"]["summary"]["failures"] == 1
    assert remaining(tmp_path / "tree") == 0
    task = await client.get_task("apply-sync")
    assert task["summary"]["processed"] == 2500
    assert task["state"] == "completed"


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


def fails_in_ways_that_cannot_travel(item: dict[str, Any]) -> str:
    name = item["path"]
    if name == "/data/huge":  # e.g. a subprocess's whole output
        raise RuntimeError("x" * 9_000_000)
    if name == "/data/surrogate":  # a lone surrogate names no byte of a file
        raise ValueError("bad \ud800 text")
    if name == "/data/unprintable":
        raise UnprintableError
    return "processed"


async def test_a_failure_whose_message_cannot_travel_is_cut_not_fatal(
    hub: RunningHub, client: HubClient
) -> None:
    names = ["/data/a", "/data/huge", "/data/surrogate", "/data/unprintable", "/data/b"]
    options = {"hub_url": hub.url, "api_key": hub.api_key}
    async with AsyncStreamTaskResults(
        "t", names, 1, "q", "messages", **options
    ) as status:
        summary = await apply_paths(fails_in_ways_that_cannot_travel, names, status)
        await status.dump()
    assert summary["processed"] == 2
    assert summary["failures"] == 3
    stored = await client.get_results("messages", state="failures")
    messages = {r["path"]: r["message"][0] for r in stored["results"]}
    assert messages["/data/huge"].startswith("xxxx")
    assert len(messages["/data/huge"]) < 20_000
    assert "more characters" in messages["/data/huge"]
    assert messages["/data/surrogate"] == "bad \\ud800 text"
    assert messages["/data/unprintable"] == "UnprintableError"
