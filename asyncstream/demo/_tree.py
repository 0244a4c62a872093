"""The demo's scratch tree: a source, its replica, a snapshot diff, a comparison.

A scratch tree gets a source and an identical replica. Files of the source are
then deleted (one whole directory among them) and moved; a snapshot diff by inode
finds what changed, as a file system's snapshot diff would; the example delete
and move handlers (:mod:`.snapdiff`) replay it on the replica through an embedded
hub with streamed results; and the replica is checked to match the source again.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._paths import PathObject
from ._spread import spread_subdirectories

FILES_PER_DIR = 100
# Most files change, so that most of the tree's paths go through the hub.
DELETE_FRACTION = 0.35
MOVE_FRACTION = 0.35

# Snapshot: (device, inode) -> path relative to the root.
Snapshot = dict[tuple[int, int], str]


@dataclass(slots=True)
class DemoTree:
    """A source tree, its replica, and what was done to the source."""

    root: Path
    files: int
    deleted_files: int = 0
    deleted_dirs: int = 0
    moved_files: int = 0

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def replica(self) -> Path:
        return self.root / "replica"


@dataclass(frozen=True, slots=True)
class SnapshotDiff:
    """Paths of the source deleted, and moved (each with its old path ``from``)."""

    deleted: list[PathObject] = field(default_factory=list)
    moved: list[PathObject] = field(default_factory=list)


def build_tree(root: Path, files: int) -> DemoTree:
    """Write ``files`` small files under ``source/`` and link them under ``replica/``.

    The replica's names are hard links to the source's files: writing a file costs
    an order of magnitude more than linking one, and the build is not what the
    demo measures. The handlers act on names, so this changes nothing they do: by
    the time they delete a replica's name, the source's name is gone and the
    delete frees the file, as it would on a real replica; a rename is a rename.
    The comparison at the end still catches a name moved to the wrong place, since
    every file's content is its own.
    """
    tree = DemoTree(root, files)
    source, replica = str(tree.source), str(tree.replica)
    for top in (source, replica):
        os.makedirs(top)
        spread_subdirectories(top)  # quick to build after a run (see ._spread)
    for index in range(files):
        relative = f"/d{index // FILES_PER_DIR:03d}/f{index:06d}.txt"
        if index % FILES_PER_DIR == 0:
            parent = relative.rpartition("/")[0]
            os.makedirs(source + parent)
            os.makedirs(replica + parent)
        content = f"file {index}\n".encode() * (1 + index % 7)
        fd = os.open(source + relative, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, content)
        finally:
            os.close(fd)
        os.link(source + relative, replica + relative)
    return tree


def take_snapshot(root: Path) -> Snapshot:
    """Every file and directory below ``root`` by inode.

    The inode comes from the directory entry (no ``stat`` per entry), the device
    from ``root``: the scratch tree lives on one file system.
    """
    device = os.lstat(root).st_dev
    snapshot: Snapshot = {}
    stack = [("", str(root))]
    while stack:
        relative, path = stack.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                snapshot[(device, entry.inode())] = name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((name, entry.path))
    return snapshot


def change_source(tree: DemoTree, rng: random.Random) -> None:
    """Delete one directory and some files of the source; move some others.

    Moves never touch the deleted directory: replaying a delete of a directory
    whose files moved out later would need the diff's ordering rules, which
    are not what the demo shows.
    """
    dirs = sorted(p for p in tree.source.iterdir() if p.is_dir())
    doomed = dirs[0] if len(dirs) > 2 else None
    if doomed is not None:
        tree.deleted_dirs = 1
        tree.deleted_files += sum(1 for _ in doomed.iterdir())
        shutil.rmtree(doomed)
        dirs = dirs[1:]
    candidates = sorted(f for d in dirs for f in d.iterdir())
    rng.shuffle(candidates)
    n_delete = int(len(candidates) * DELETE_FRACTION)
    n_move = int(len(candidates) * MOVE_FRACTION)
    for path in candidates[:n_delete]:
        path.unlink()
    for path in candidates[n_delete : n_delete + n_move]:
        path.rename(rng.choice(dirs) / f"moved-{path.name}")
    tree.deleted_files += n_delete
    tree.moved_files = n_move


def snapshot_diff(before: Snapshot, after: Snapshot, root: Path) -> SnapshotDiff:
    """What changed between two snapshots, as paths of the source.

    Deleted paths are sorted, so a deleted directory comes before its files (they
    are then already gone from the replica: "skipped").
    """
    diff = SnapshotDiff()
    for inode, old in sorted(before.items(), key=lambda item: item[1]):
        new = after.get(inode)
        if new is None:
            diff.deleted.append({"path": str(root / old)})
        elif new != old:
            diff.moved.append({"path": str(root / new), "from": str(root / old)})
    return diff


def tree_differences(source: Path, replica: Path, limit: int = 5) -> list[str]:
    """Up to ``limit`` differences between two trees (names, then contents)."""
    src, rep = take_listing(source), take_listing(replica)
    problems = [f"only in the source: {p}" for p in sorted(src - rep)]
    problems += [f"only in the replica: {p}" for p in sorted(rep - src)]
    for relative in sorted(src & rep):
        a, b = source / relative, replica / relative
        if a.is_file() and a.read_bytes() != b.read_bytes():
            problems.append(f"contents differ: {relative}")
        if len(problems) >= limit:
            break
    return problems[:limit]


def take_listing(root: Path) -> set[str]:
    """Relative paths of everything below ``root``."""
    return set(take_snapshot(root).values())


def count_files(root: Path) -> int:
    """How many files are below ``root``."""
    return sum(len(files) for _, _, files in os.walk(root))


Echo = Callable[[str], None]
