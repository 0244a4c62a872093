"""``asyncstream demo`` end to end, as the README's first command runs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Result, asyncstream


@dataclass(frozen=True)
class ScratchDemo:
    """A demo run without ``--db`` and the ``TMPDIR`` its scratch went to."""

    result: Result
    tmpdir: Path


@pytest.fixture(scope="module")
def scratch_demo(tmp_path_factory: pytest.TempPathFactory) -> ScratchDemo:
    # One run serves every test that reads a default demo's output or leftovers:
    # each demo run pays an embedded hub process and a child interpreter.
    tmpdir = tmp_path_factory.mktemp("gone")
    return ScratchDemo(asyncstream("demo", "--files", "200", tmpdir=tmpdir), tmpdir)


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


def test_demo_leaves_nothing_behind_unless_kept(
    scratch_demo: ScratchDemo, tmp_path: Path
) -> None:
    gone, removed = scratch_demo.tmpdir, scratch_demo.result
    kept = tmp_path / "kept"
    kept.mkdir()

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


def test_demo_times_each_phase_and_counts_only_the_hub_runs_in_its_figure(
    scratch_demo: ScratchDemo,
) -> None:
    result = scratch_demo.result

    assert result.code == 0, result.err
    out = result.out
    diff_line = next(line for line in out.splitlines() if "snapshot diff:" in line)
    deleted = int(diff_line.split("snapshot diff: ")[1].split(" deleted")[0])
    moved = int(diff_line.split(" deleted paths, ")[1].split(" moved")[0])
    figure = next(line for line in out.splitlines() if line.startswith("demo: "))
    assert figure.startswith(f"demo: {deleted + moved} paths through the hub in ")
    assert "tree building and the snapshot diff not counted" in figure
    for phase in ("scratch tree:", "embedded hub at", "replica compared with"):
        assert phase in out
    assert diff_line.count(" s)") == 2  # the change and the diff, each timed
