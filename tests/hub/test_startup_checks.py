"""The checks ``hub serve`` makes before serving, and the disk-full test, alone."""

from __future__ import annotations

import errno
import sqlite3
import stat
from pathlib import Path

import pytest

from asyncstream.hub._dbfile import DatabaseFileError, prepare_sqlite_file
from asyncstream.hub._errors import HubStartupError, is_disk_full
from asyncstream.hub._listen import bind_listening_socket


class DiskFullFromPostgres(Exception):
    sqlstate = "53100"


def test_disk_full_is_recognised_from_every_store_and_through_causes() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert is_disk_full(full)
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(DiskFullFromPostgres())
    wrapped = RuntimeError("write failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert is_disk_full(wrapped)
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    assert not is_disk_full(locked)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_a_new_database_file_is_created_empty_and_private(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    assert prepare_sqlite_file(db) is True
    assert db.stat().st_size == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    assert prepare_sqlite_file(db) is False  # a database now: accepted as is


def test_a_directory_is_no_database_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseFileError, match="it is a directory"):
        prepare_sqlite_file(tmp_path)
    assert isinstance(DatabaseFileError("x"), HubStartupError)


def test_an_unknown_host_cannot_be_listened_on() -> None:
    with pytest.raises(HubStartupError, match=r"cannot listen on no\.such\.host\."):
        bind_listening_socket("no.such.host.invalid", 0)
