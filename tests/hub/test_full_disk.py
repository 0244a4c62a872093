"""A full disk under a SQLite hub: documented JSON errors, then recovery."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub
from tests.conftest import fill_disk

from .conftest import batch, key

RESULTS = "/api/tasks/t1/results/"


@pytest.fixture
async def hub_on_small_disk(small_disk: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(db_path=small_disk / "hub.sqlite3") as hub:
        yield hub


def items(seq: int, n: int = 200) -> dict[str, list[dict[str, str]]]:
    return {
        "processed": [
            {"path": f"/fs/{seq}/{i}", "message": "x" * 200} for i in range(n)
        ]
    }


def assert_disk_full(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "insufficient_storage"
    assert float(response.headers["Retry-After"]) > 0


async def test_a_full_disk_answers_json_507_and_the_hub_recovers(
    hub_on_small_disk: RunningHub, small_disk: Path
) -> None:
    hub = hub_on_small_disk
    async with httpx.AsyncClient(
        base_url=hub.url, headers=hub.headers, timeout=30
    ) as c:
        first = await c.post(RESULTS, json=batch(0, items(0)), headers=key("t1", 0))
        assert first.status_code == 200, first.text
        filler = fill_disk(small_disk)
        seq, response = 0, first
        while response.status_code == 200 and seq < 40:  # the WAL has some room
            seq += 1
            response = await c.post(
                RESULTS, json=batch(seq, items(seq)), headers=key("t1", seq)
            )
        assert_disk_full(response)
        stream = await c.post("/api/streams/", json={"paths": ["/a"] * 20_000})
        assert stream.status_code in (200, 507), stream.text
        if stream.status_code == 507:
            assert_disk_full(stream)
        filler.unlink()
        again = await c.post(
            RESULTS, json=batch(seq, items(seq)), headers=key("t1", seq)
        )
        assert again.status_code == 200, again.text
        done = await c.post(
            "/api/tasks/t1/complete", json={"batches": seq + 1, "payload": {}}
        )
        assert done.status_code == 200, done.text
        assert done.json()["summary"]["processed"] == 200 * (seq + 1)


async def test_an_unexpected_failure_is_a_json_500_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_hub(store="memory") as hub:

        async def broken(*args: Any) -> None:
            raise RuntimeError("secret internals")

        hub.store.get_task = broken  # type: ignore[method-assign]
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as c:
            with caplog.at_level(logging.ERROR):
                response = await c.get("/api/tasks/t1/")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "internal_error"
    assert "secret internals" not in response.text
