"""A real hub on loopback for every test that asks, and a client authorised for it.

The hub runs over each store a test module names; the PostgreSQL fixtures
(``postgres_server``, ``postgres_dsn``) are in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub


@asynccontextmanager
async def hub_over(
    request: pytest.FixtureRequest, store: str, **options: Any
) -> AsyncIterator[RunningHub]:
    """A hub over ``store``; for ``postgres``, in a schema of the test's own."""
    dsn = request.getfixturevalue("postgres_dsn") if store == "postgres" else None
    async with running_hub(store=store, dsn=dsn, **options) as running:  # type: ignore[arg-type]
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    async with hub_over(request, request.param) as running:
        yield running


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_hub(request: pytest.FixtureRequest) -> AsyncIterator[RunningHub]:
    """A hub over each store, the memory store included."""
    async with hub_over(request, request.param) as running:
        yield running


@pytest.fixture
async def client(hub: RunningHub) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=hub.url, headers=hub.headers, timeout=10
    ) as c:
        yield c


def batch(seq: int, items: dict[str, list[Any]], **fields: Any) -> dict[str, Any]:
    """A results body as the client sends it."""
    body: dict[str, Any] = {"jobid": 7, "task": "my-plugin", "queue": "london.q#custom"}
    body.update(fields, seq=seq, items=items)
    return body


def key(taskid: str, seq: int) -> dict[str, str]:
    return {"Idempotency-Key": f"{taskid}:{seq}"}
