"""The PostgreSQL store's connection, schema migration and stream notifications.

Migrations run under a transaction-scoped advisory lock: N hub processes that
start at once on one database take turns, the first migrates, the others find
nothing left to do. Every append to or close of a stream sends a ``NOTIFY`` on
commit; each hub process ``LISTEN``\\ s on one connection of its own and wakes its
long-polling readers, so a reader on one process sees an append through another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

from ._dsn import redact_dsn
from ._migrations import VERSIONS_TABLE, Migration, pending_migrations
from ._store import StoreError, utc_now

logger = logging.getLogger("asyncstream.hub")

STREAMS_CHANNEL = "asyncstream_streams"
# How long a lost LISTEN connection waits before it connects again.
RELISTEN_DELAY = 1.0


class StoreUnavailableError(StoreError):
    """The database cannot be reached (named without its password)."""

    code = "store_unavailable"


async def connect(dsn: str, *, autocommit: bool = True) -> psycopg.AsyncConnection:
    """One connection to ``dsn``; a failure names the server, not the password."""
    try:
        return await psycopg.AsyncConnection.connect(dsn, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(
            f"cannot connect to PostgreSQL at {redact_dsn(dsn)}: {exc}"
        ) from exc


async def migrate(conn: psycopg.AsyncConnection, where: str) -> list[Migration]:
    """Bring the schema of ``conn``'s search path to the latest version, at once.

    DDL is transactional in PostgreSQL: one transaction applies every pending
    step or none. The advisory lock is keyed by the schema, so hubs on other
    schemas of the same database do not wait for each other.
    """
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('asyncstream.schema.'"
            " || current_schema()))"
        )
        await conn.execute(VERSIONS_TABLE)
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        applied = {row[0] for row in await cursor.fetchall()}
        pending = pending_migrations(applied, where)
        for migration in pending:
            for statement in migration.postgres:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                (migration.version, migration.summary, utc_now()),
            )
    return pending


class StreamListener:
    """Calls ``on_change(stream_id)`` for every stream change any process commits.

    ``start()`` returns once ``LISTEN`` is in force, so nothing committed after
    it is missed. If the connection drops, it connects again after
    :data:`RELISTEN_DELAY`; readers waiting meanwhile answer at their ``wait``.
    """

    def __init__(self, dsn: str, on_change: Callable[[str], None]) -> None:
        self._dsn = dsn
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "listening" if self._task is not None else "stopped"
        return f"<StreamListener {redact_dsn(self._dsn)} {state}>"

    async def _listen(self) -> psycopg.AsyncConnection:
        conn = await connect(self._dsn)
        await conn.execute(f"LISTEN {STREAMS_CHANNEL}")
        return conn

    async def start(self) -> None:
        if self._task is None:
            conn = await self._listen()
            self._task = asyncio.create_task(self._run(conn), name=repr(self))

    async def _run(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            try:
                async with conn:
                    async for notify in conn.notifies():
                        self._on_change(notify.payload)
            except (psycopg.Error, StoreUnavailableError) as exc:
                logger.warning("stream notifications lost (%s); listening again", exc)
            await asyncio.sleep(RELISTEN_DELAY)
            with contextlib.suppress(StoreUnavailableError):
                conn = await self._listen()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
