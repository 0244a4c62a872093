"""What ``asyncstream run`` leaves behind: absolute paths, the real input count, and
no scratch directory unless it is asked to keep one."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncstream.hub import HubProcess

from .conftest import Tree, asyncstream, fetched_results, stored_results, task_of


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_relative_paths_are_stored_absolute_and_input_total_is_the_count_fed(
    tree: Tree, hub: HubProcess, stream: str
) -> None:
    stdin = "bad/b0.bad\n./good/d04/sub1/../sub1/f4\n"
    result = asyncstream(
        "run", "runtasks:sizes_sync", "good/d05", "-", stream,
        "--hub", hub.url, "--api-key", str(hub.api_key),
        cwd=tree.root, stdin=stdin,
    )  # fmt: skip

    assert result.code == 1, result.err  # b0.bad fails by name
    expected = {p for p in tree.sizes if p.startswith(f"{tree.good}/d05/")}
    expected |= {tree.bad[0], str(tree.good / "d04" / "sub1" / "f4")}
    assert {r["path"] for r in fetched_results(hub, result.taskid)} == expected
    status = task_of(hub, result.taskid)["payload"]["status"]
    assert status["input_total"] == len(expected) == 102
    assert status["input_paths"][0]["count"] == 102


def test_the_scratch_directory_and_its_database_go_unless_kept(
    tree: Tree, tmp_path: Path
) -> None:
    result = asyncstream(
        "run", "runtasks:sizes_async", str(tree.good / "d06"), tmpdir=tmp_path
    )

    assert result.code == 0, result.err
    assert result.summary["processed"] == 100
    assert list(tmp_path.iterdir()) == []
    assert "hub serve --db" not in result.out
    assert "--keep or --db PATH keeps it" in result.out


def test_keep_leaves_the_scratch_directory_and_says_where_the_database_is(
    tree: Tree, tmp_path: Path
) -> None:
    result = asyncstream(
        "run", "runtasks:sizes_async", str(tree.good / "d06"), "--keep",
        tmpdir=tmp_path,
    )  # fmt: skip

    assert result.code == 0, result.err
    (scratch,) = tmp_path.iterdir()
    db = scratch / "hub.sqlite3"
    assert f"hub database: {db}\n" in result.out
    assert f"asyncstream hub serve --db {db}\n" in result.out
    assert result.out.endswith(f"scratch directory kept: {scratch}\n")
    stored = stored_results(db, result.taskid)
    assert len(stored) == 100


def test_a_database_named_with_db_is_kept_and_the_scratch_removed(
    tree: Tree, tmp_path: Path
) -> None:
    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    db = tmp_path / "mine.sqlite3"
    result = asyncstream(
        "run", "runtasks:sizes_sync", str(tree.good / "d08"), "--db", str(db),
        tmpdir=scratch_parent,
    )  # fmt: skip

    assert result.code == 0, result.err
    assert list(scratch_parent.iterdir()) == []
    assert f"asyncstream hub serve --db {db}" in result.out
    assert len(stored_results(db, result.taskid)) == 100
