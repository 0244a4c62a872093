"""The SQLite database file, checked before the hub serves it.

A hub that cannot use its database must say so in one line and exit, never
start half-way: the store's driver thread would otherwise keep a failed process
alive. So before the store opens, the file is checked here with the standard
library's ``sqlite3`` (closed again at once): its directory exists, and an
existing file is a SQLite database that opens. An existing empty file is refused
too: SQLite would take it as a new database, which hides a truncated one.

A new database file is created here, private to its owner (0600) whatever the
umask: it holds every path and message the tasks report. SQLite gives its
``-wal`` and ``-shm`` files the mode of the database file.
"""

from __future__ import annotations

import os
import sqlite3
from os import PathLike
from pathlib import Path

from ._errors import HubStartupError

SQLITE_MAGIC = b"SQLite format 3\x00"
DB_FILE_MODE = 0o600


class DatabaseFileError(HubStartupError):
    """The database file cannot be served; the message names it and says why."""


def prepare_sqlite_file(path: str | PathLike[str]) -> bool:
    """Check the database at ``path``, or create it empty and private.

    Returns True when the file was created now. Raises
    :class:`DatabaseFileError` naming the file when it cannot be served.
    """
    file = Path(path)
    if str(path) == ":memory:":
        return False
    if not file.parent.is_dir():
        raise DatabaseFileError(
            f"cannot use database {file}: its directory {file.parent} does not exist"
        )
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_FILE_MODE)
    except FileExistsError:
        _check_existing(file)
        return False
    except OSError as exc:
        raise DatabaseFileError(
            f"cannot create database {file}: {exc.strerror}"
        ) from None
    os.close(fd)
    return True


def _check_existing(file: Path) -> None:
    if file.is_dir():
        raise DatabaseFileError(f"cannot use database {file}: it is a directory")
    try:
        with file.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise DatabaseFileError(
            f"cannot read database {file}: {exc.strerror}"
        ) from None
    if not head:
        raise DatabaseFileError(
            f"database {file} is an empty file, not a SQLite database"
            " (remove it to start a new one)"
        )
    if head != SQLITE_MAGIC:
        raise DatabaseFileError(f"database {file} is not a SQLite database")
    try:
        connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=rw", uri=True)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseFileError(
            f"database {file} is not a usable SQLite database: {exc}"
        ) from None
