"""The example delete handler on real files: concurrent paths never race."""

from __future__ import annotations

import os
from pathlib import Path

from asyncstream import AsyncFileActionStatus
from asyncstream.demo.snapdiff import delete_handler


def tree(root: Path, dirs: int, files: int) -> list[str]:
    paths = []
    for d in range(dirs):
        directory = root / f"d{d}"
        directory.mkdir(parents=True)
        paths.append(str(directory))
        for f in range(files):
            (directory / f"f{f}").write_text("x")
            paths.append(str(directory / f"f{f}"))
    return paths


async def test_directory_deleted_as_a_whole_while_its_files_are_deleted(
    tmp_path: Path,
) -> None:
    source, replica = tmp_path / "source", tmp_path / "replica"
    # The snapshot diff lists a deleted directory and the files in it: their
    # deletions run at once, so rmtree meets files removed under its feet.
    paths = [p.replace(str(replica), str(source), 1) for p in tree(replica, 8, 400)]
    status = AsyncFileActionStatus("delete", paths, 1, None)
    payload = await delete_handler(
        status,
        paths=paths,
        source_root=str(source),
        replica_root=str(replica),
    )
    summary = payload["status"]["summary"]
    assert summary["failures"] == 0, payload["status"]["details"]["failures"][:3]
    assert summary["processed"] + summary["skipped"] == len(paths)
    assert os.listdir(replica) == []
