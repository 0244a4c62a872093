"""The SQLite store's transactions and schema migration.

The tables are described once for every SQL store in :mod:`._migrations`; rows
are converted in :mod:`._sql_rows`.
"""

from __future__ import annotations

import aiosqlite

from ._migrations import VERSIONS_TABLE, Migration, pending_migrations
from ._store import utc_now


class Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK if the block raises."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        await self._conn.execute("BEGIN IMMEDIATE")

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self._conn.execute("COMMIT")
        else:
            await self._conn.execute("ROLLBACK")


async def migrate(conn: aiosqlite.Connection, where: str) -> list[Migration]:
    """Bring the database of ``conn`` to the latest schema version, at once.

    One IMMEDIATE transaction holds SQLite's write lock from reading the
    versions to the last step, so two processes opening one file cannot both
    migrate it, and a failure leaves the previous version whole. Returns the
    migrations applied (none for an up-to-date database).
    """
    async with Transaction(conn):
        await conn.execute(VERSIONS_TABLE)
        async with conn.execute("SELECT version FROM schema_migrations") as cursor:
            applied = {row[0] async for row in cursor}
        pending = pending_migrations(applied, where)
        for migration in pending:
            for statement in migration.sqlite:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.summary, utc_now()),
            )
    return pending
