"""``asyncstream demo`` end to end, as the README's first command runs it."""

from __future__ import annotations

from pathlib import Path

from .conftest import asyncstream


def test_demo_replays_the_snapshot_diff_and_the_replica_matches(
    tmp_path: Path,
) -> None:
    db = tmp_path / "hub.sqlite3"
    result = asyncstream("demo", "--files", "500", "--db", str(db))

    assert result.code == 0, result.err
    assert "task asyncstream.demo.snapdiff:delete_handler (async)" in result.out
    assert "task asyncstream.demo.snapdiff:move_handler (async)" in result.out
    assert "replica matches the source" in result.out
    assert f"asyncstream hub serve --db {db}" in result.out
    assert db.exists()


def test_demo_leaves_nothing_behind_unless_kept(tmp_path: Path) -> None:
    gone, kept = tmp_path / "gone", tmp_path / "kept"
    gone.mkdir()
    kept.mkdir()

    removed = asyncstream("demo", "--files", "200", tmpdir=gone)
    keeping = asyncstream("demo", "--files", "200", "--keep", tmpdir=kept)

    assert removed.code == 0, removed.err
    assert list(gone.iterdir()) == []
    assert "--keep or --db PATH keeps it" in removed.out
    assert keeping.code == 0, keeping.err
    (scratch,) = kept.iterdir()
    assert sorted(p.name for p in scratch.iterdir()) == [
        "hub.sqlite3", "replica", "source"
    ]  # fmt: skip
    assert f"asyncstream hub serve --db {scratch / 'hub.sqlite3'}\n" in keeping.out
    assert keeping.out.endswith(f"scratch directory kept: {scratch}\n")
