"""A real hub on loopback for every test that asks, and a client authorised for it.

The hub runs over each store a test module names. The PostgreSQL store needs a
server: ``ASYNCSTREAM_TEST_POSTGRES`` names it (CI sets it; a test then fails if
the server cannot be reached). Unset, the tests try the local default and, if
nothing answers there, skip saying so. Each test gets a schema of its own,
dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub
from asyncstream.hub._dsn import redact_dsn

POSTGRES_ENV = "ASYNCSTREAM_TEST_POSTGRES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The DSN of the PostgreSQL server the tests use (skip or fail if none)."""
    dsn = os.environ.get(POSTGRES_ENV)
    chosen = dsn is not None
    dsn = dsn or DEFAULT_POSTGRES
    try:
        import psycopg
    except ImportError:
        if chosen:
            pytest.fail(f"{POSTGRES_ENV} is set but psycopg is not installed")
        pytest.skip("psycopg is not installed: the postgres store is not tested")
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if chosen:
            pytest.fail(f"{POSTGRES_ENV}={redact_dsn(dsn)} cannot be reached: {exc}")
        pytest.skip(
            f"{POSTGRES_ENV} is unset and no PostgreSQL answers at {DEFAULT_POSTGRES}:"
            " the postgres store is not tested"
        )
    return dsn


def with_search_path(dsn: str, schema: str) -> str:
    """``dsn`` with ``schema`` as the session's search path."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A DSN whose tables live in a fresh schema, dropped after the test."""
    import psycopg

    schema = f"asyncstream_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


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
