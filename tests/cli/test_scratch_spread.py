"""Scratch trees of the demo and the files bench spread their directories.

On ext4 a tree built right after another was deleted otherwise lands among the
inodes just freed, which the allocator scans one by one (see demo._spread).
"""

from __future__ import annotations

import array
import fcntl
import os
from pathlib import Path

import pytest

from asyncstream.bench._filework import _Scratch
from asyncstream.demo._spread import (
    FS_IOC_GETFLAGS,
    FS_TOPDIR_FL,
    spread_subdirectories,
)
from asyncstream.demo._tree import build_tree


def _flags(path: str | Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        return flags[0]
    finally:
        os.close(fd)


@pytest.fixture
def spreading_fs(tmp_path: Path) -> Path:
    """A directory on a file system that takes the flag (ext4), else skip."""
    probe = tmp_path / "probe"
    probe.mkdir()
    if not spread_subdirectories(probe):
        pytest.skip("the temporary directory's file system has no FS_TOPDIR_FL")
    return tmp_path


def test_the_flag_is_set_and_the_others_kept(spreading_fs: Path) -> None:
    directory = spreading_fs / "d"
    directory.mkdir()
    before = _flags(directory)
    assert spread_subdirectories(directory)
    assert _flags(directory) == before | FS_TOPDIR_FL


def test_what_is_no_directory_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert not spread_subdirectories(tmp_path / "file")
    assert not spread_subdirectories(tmp_path / "missing")


def test_the_demo_tree_spreads_its_source_and_replica(spreading_fs: Path) -> None:
    tree = build_tree(spreading_fs / "demo", 3)
    assert _flags(tree.source) & FS_TOPDIR_FL
    assert _flags(tree.replica) & FS_TOPDIR_FL
    assert len(os.listdir(tree.replica / "d000")) == 3


def test_the_bench_tree_spreads_its_directories(
    spreading_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(spreading_fs))
    monkeypatch.setattr("tempfile.tempdir", None)
    with _Scratch(150) as scratch:
        assert scratch.root.startswith(str(spreading_fs))
        assert _flags(scratch.replica) & FS_TOPDIR_FL
        assert sum(len(os.listdir(d.path)) for d in os.scandir(scratch.replica)) == 150
