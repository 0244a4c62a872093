"""Fixtures every test folder may use: a PostgreSQL server and a schema per test;
and how the tests are shared out between the processes that run them.

The PostgreSQL store needs a server: ``ASYNCSTREAM_TEST_POSTGRES`` names it (CI
sets it; a test then fails if the server cannot be reached). Unset, the tests try
the local default and, if nothing answers there, skip saying so. Each test gets a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from asyncstream.hub._dsn import redact_dsn

# scripts/test runs the suite in two processes (pytest-xdist, --dist loadgroup):
# it mostly waits on hubs, workers and sockets, so two processes on two cores take
# about half the time. A folder whose tests share session fixtures (one hub, one set
# of Celery workers) goes to one process whole, so that they start once; every other
# test file is a unit of its own, so that its module fixtures start once too.
SHARED_FOLDERS = frozenset({"celery", "cli"})


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Put each test in its ``xdist_group``; groups holding a slow test run first,
    so that the longest units do not start last and leave one process idle."""
    tests = config.rootpath / "tests"
    groups: dict[pytest.Item, str] = {}
    slow: set[str] = set()
    for item in items:
        where = item.path.relative_to(tests)
        group = where.parts[0] if where.parts[0] in SHARED_FOLDERS else where.as_posix()
        groups[item] = group
        item.add_marker(pytest.mark.xdist_group(group))
        if item.get_closest_marker("slow") is not None:
            slow.add(group)
    first_seen = {
        group: index for index, group in reversed(list(enumerate(groups.values())))
    }
    items.sort(key=lambda item: (groups[item] not in slow, first_seen[groups[item]]))


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


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A DSN whose tables live in a fresh schema of ``server``, dropped at the end."""
    import psycopg

    schema = f"asyncstream_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(server, schema)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A DSN whose tables live in a fresh schema, dropped after the test."""
    with postgres_schema(postgres_server) as dsn:
        yield dsn


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 4 MiB file system of its own, to fill up for real.

    A tmpfs mounted for the test (root only; skipped, saying why, elsewhere) and
    unmounted afterwards. :func:`fill_disk` fills it; removing the file it returns
    gives the space back.
    """
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full-disk test mounts a tmpfs, which needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(directory: Path) -> Path:
    """Write to ``directory`` until its file system is full; return the filler file."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler
