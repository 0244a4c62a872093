"""The pieces of ``run`` and ``demo`` that need no hub: walking, fields, diffs."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import pytest

from asyncstream.cli._run import RunUsageError, parse_fields, stream_by_default
from asyncstream.demo._tree import (
    build_tree,
    change_source,
    snapshot_diff,
    take_snapshot,
    tree_differences,
)
from asyncstream.run._feed import InputListing, absolute_path, iter_paths, walk_files


def test_walk_yields_files_only_and_skips_an_unreadable_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    (tmp_path / "g").write_text("y")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "hidden").write_text("z")
    real_scandir = os.scandir

    def scandir(path: str) -> Any:
        # chmod cannot lock root out, and the tests may run as root.
        if path == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    errors: list[OSError] = []

    found = sorted(walk_files(str(tmp_path), errors.append))

    assert found == [str(tmp_path / "a" / "b" / "f"), str(tmp_path / "g")]
    assert [e.filename for e in errors] == [str(locked)]


def test_iter_paths_reads_stdin_lines_and_makes_every_path_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    monkeypatch.chdir(tmp_path)
    stdin = io.StringIO("/one\n\n./sub//two with spaces\r\n")

    paths = list(iter_paths(["d/./f", "-", "d"], stdin))

    assert paths == [
        str(tmp_path / "d" / "f"),
        "/one",
        str(tmp_path / "sub" / "two with spaces"),
        str(tmp_path / "d" / "f"),
    ]


def test_absolute_path_folds_dotdot_only_where_it_names_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real" / "inner").mkdir(parents=True)
    (tmp_path / "real" / "f").write_text("real")
    (tmp_path / "f").write_text("top")
    (tmp_path / "link").symlink_to(tmp_path / "real" / "inner")
    monkeypatch.chdir(tmp_path)

    # link/.. is real/, not the working directory: folding it would name ./f.
    assert absolute_path("link/../f") == str(tmp_path / "link" / ".." / "f")
    assert Path(absolute_path("link/../f")).read_text() == "real"
    assert absolute_path("real/inner/../f") == str(tmp_path / "real" / "f")
    # A symlink the user names stays that symlink.
    assert absolute_path("link") == str(tmp_path / "link")


def test_input_listing_counts_and_returns_any_file_name_exactly(
    tmp_path: Path,
) -> None:
    names = [
        "/plain",
        "/with\nnewline",
        os.fsdecode(b"/latin1-\xe9"),  # not UTF-8: a surrogate escape
        "/" + "x" * 5000,
    ] * 300  # several read blocks' worth
    listing = InputListing(tmp_path / "listing")

    assert listing.write(iter(names)) == len(names) == listing.count
    assert list(listing) == names
    assert list(listing) == names  # read again from the start
    assert os.fsencode(list(listing)[2]) == b"/latin1-\xe9"


def test_fields_decode_json_values_and_keep_other_strings() -> None:
    fields = parse_fields(("n=42", "flag=true", "root=/data", "names=[1, 2]"))

    assert fields == {"n": 42, "flag": True, "root": "/data", "names": [1, 2]}
    with pytest.raises(RunUsageError, match="set by the runner"):
        parse_fields(("jobid=3",))


def test_streams_by_default_for_trees_stdin_and_long_lists(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")

    assert not stream_by_default((str(tmp_path / "f"),))
    assert stream_by_default((str(tmp_path),))
    assert stream_by_default(("-",))
    assert stream_by_default(tuple(str(tmp_path / "f") for _ in range(1001)))


def test_snapshot_diff_finds_deletes_and_moves_by_inode(tmp_path: Path) -> None:
    tree = build_tree(tmp_path, 400)
    before = take_snapshot(tree.source)
    change_source(tree, random.Random(1))

    diff = snapshot_diff(before, take_snapshot(tree.source), tree.source)

    # One directory of 100 files as a whole, then 35% of the other 300 files.
    assert tree.deleted_dirs == 1
    assert len(diff.deleted) == 1 + tree.deleted_files == 1 + 100 + 105
    assert diff.deleted[0]["path"] == str(tree.source / "d000")
    assert len(diff.moved) == tree.moved_files == 105
    assert all(not os.path.exists(m["from"]) for m in diff.moved)
    assert all(os.path.exists(m["path"]) for m in diff.moved)
    assert len(tree_differences(tree.source, tree.replica)) == 5  # not replayed yet
