"""The SQLite store's transactions and schema migration.

The tables are described once for every SQL store in :mod:`._migrations`; rows
are converted in :mod:`._sql_rows`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import aiosqlite

from ._migrations import VERSIONS_TABLE, Migration, pending_migrations
from ._store import utc_now

T = TypeVar("T")


async def on_connection_thread(
    conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]
) -> T:
    """``work(connection)`` run on the connection's own thread, in one trip.

    Each awaited aiosqlite call is a trip to that thread and back to the event
    loop (a queue put, a thread switch, a loop wake-up): tens of microseconds of
    the hub's CPU apiece. An operation of several statements pays one trip here
    instead of one per statement and per cursor step. aiosqlite has no public
    call for it; its own methods queue their work with ``_execute`` this way.
    """
    result: T = await conn._execute(work, conn._conn)  # type: ignore[no-untyped-call]
    return result


def in_transaction(conn: sqlite3.Connection, work: Callable[[], T]) -> T:
    """``work()`` inside BEGIN IMMEDIATE … COMMIT (on the connection's thread).

    Rolled back if ``work`` or the commit raises, so the connection is never left
    inside a transaction that the next operation would join.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


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
