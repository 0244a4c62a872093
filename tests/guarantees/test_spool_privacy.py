"""Spools are private, the shared fallback is checked, and a full disk is said.

Spool directories are made 0700 and spool files 0600; the fallback directory
under the system's temporary directory is used only when it is this user's and
closed to others; a spool that cannot be written (a real full file system)
gives an error saying the results were not kept and where they were meant to go.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncstream.hub import RunningHub
from tests.conftest import fill_disk
from tests.guarantees._support import read_spool_file, undeliverable

# The full-disk test's 900 results carry a message each: a spool of some 200 KB.
BULK = "x" * 200


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def default_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path]]:
    """The cache and temporary directories the default spool place derives from."""
    monkeypatch.delenv("ASYNCSTREAM_SPOOL_DIR", raising=False)
    old = os.umask(0o022)  # the common default, under which mkdir gives 0755
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    try:
        yield cache, tmp
    finally:
        os.umask(old)


async def test_the_default_spool_directory_and_files_are_private(
    hub: RunningHub, default_places: tuple[Path, Path]
) -> None:
    cache, _ = default_places
    cache.mkdir()
    error = await undeliverable(hub, "private", None)
    assert error.spool_path is not None
    spool = Path(error.spool_path)
    assert spool.parent == cache / "asyncstream" / "spool"
    assert mode(spool) == 0o600
    assert mode(spool.parent) == 0o700
    assert mode(cache / "asyncstream") == 0o700


async def test_a_given_spool_directory_is_made_private(
    hub: RunningHub, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    try:
        error = await undeliverable(hub, "given", tmp_path / "a" / "spool")
    finally:
        os.umask(old)
    assert mode(tmp_path / "a" / "spool") == 0o700
    assert mode(tmp_path / "a") == 0o700
    assert error.spool_path is not None
    assert mode(error.spool_path) == 0o600


async def test_the_tmp_fallback_is_used_when_it_is_ours_and_private(
    hub: RunningHub, default_places: tuple[Path, Path]
) -> None:
    _, tmp = default_places  # no cache directory: the fallback is used
    error = await undeliverable(hub, "fallback", None)
    assert error.spool_path is not None
    assert Path(error.spool_path).parent == tmp / f"asyncstream-spool-{os.getuid()}"
    assert mode(Path(error.spool_path).parent) == 0o700


async def test_a_world_writable_tmp_fallback_is_refused(
    hub: RunningHub, default_places: tuple[Path, Path]
) -> None:
    _, tmp = default_places
    planted = tmp / f"asyncstream-spool-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    error = await undeliverable(hub, "planted", None)
    assert error.spool_path is None
    assert list(planted.iterdir()) == []  # nothing written where others can reach
    assert "could NOT be kept" in str(error)
    assert str(planted) in str(error)


async def test_a_tmp_fallback_of_another_user_is_refused(
    hub: RunningHub, default_places: tuple[Path, Path]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a directory of another user needs root")
    _, tmp = default_places
    planted = tmp / f"asyncstream-spool-{os.getuid()}"
    planted.mkdir(mode=0o700)
    os.chown(planted, os.getuid() + 4242, -1)
    error = await undeliverable(hub, "foreign", None)
    assert error.spool_path is None
    assert "owner uid" in str(error)
    assert list(planted.iterdir()) == []


async def test_a_full_disk_says_the_results_were_not_kept_and_where(
    hub: RunningHub, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = small_disk / "spool"
    spool_dir.mkdir()
    filler = fill_disk(small_disk)
    error = await undeliverable(hub, "no-room", spool_dir, n=900, message=BULK)
    message = str(error)
    assert error.spool_path is None
    assert error.undelivered_items == 900
    assert "could NOT be kept" in message
    assert str(spool_dir) in message
    assert "No space left on device" in message
    assert os.listdir(spool_dir) == []  # no partial file left behind
    assert any(
        r.levelno == logging.ERROR and "could NOT be kept" in r.getMessage()
        for r in caplog.records
    )
    # With room again, a task spools in full. Another task id: a request of the
    # first task that the hub took in after that task gave up on it is stored
    # (the fault is off by then), and would count as delivered under its key.
    filler.unlink()
    again = await undeliverable(hub, "room-again", spool_dir, n=900, message=BULK)
    assert again.spool_path is not None
    assert len(read_spool_file(again.spool_path).paths) == 900
