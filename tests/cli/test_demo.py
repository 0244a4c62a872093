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
