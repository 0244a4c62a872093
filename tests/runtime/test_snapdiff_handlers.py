"""The example delete handler on real files: concurrent paths never race."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asyncstream import AsyncFileActionStatus
from asyncstream.demo.snapdiff import delete_handler, move_handler


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


def replica_with_a_neighbour(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A source root, its replica holding one file, and a file beside the replica."""
    source, replica = tmp_path / "source", tmp_path / "replica"
    (replica / "kept").mkdir(parents=True)
    (replica / "kept" / "f").write_text("x")
    neighbour = tmp_path / "neighbour"
    neighbour.mkdir()
    (neighbour / "f").write_text("x")
    return source, replica, neighbour


# A path the snapshot diff (or whoever fed the stream) got wrong must name a file
# of the replica or fail: never the replica as a whole, never a file beside it.
STRAY_PATHS = ["{source}/", "{source}/.", "{source}/../neighbour/f", "{source}/kept/.."]


@pytest.mark.parametrize("stray", STRAY_PATHS)
async def test_delete_of_a_path_that_is_no_file_under_the_source_root_fails(
    tmp_path: Path, stray: str
) -> None:
    source, replica, neighbour = replica_with_a_neighbour(tmp_path)
    paths = [stray.format(source=source)]
    status = AsyncFileActionStatus("delete", paths, 1, None)
    payload = await delete_handler(
        status, paths=paths, source_root=str(source), replica_root=str(replica)
    )
    failures = payload["status"]["details"]["failures"]
    assert [f["path"] for f in failures] == paths
    assert "not a path under the source root" in failures[0]["message"][0]
    assert (replica / "kept" / "f").exists()
    assert (neighbour / "f").exists()


@pytest.mark.parametrize("key", ["path", "from"])
@pytest.mark.parametrize("stray", STRAY_PATHS)
async def test_move_from_or_to_a_path_that_is_no_file_under_the_source_root_fails(
    tmp_path: Path, stray: str, key: str
) -> None:
    source, replica, neighbour = replica_with_a_neighbour(tmp_path)
    item = {"path": f"{source}/moved", "from": f"{source}/kept/f"}
    item[key] = stray.format(source=source)
    status = AsyncFileActionStatus("move", [item], 1, None)
    payload = await move_handler(
        status, paths=[item], source_root=str(source), replica_root=str(replica)
    )
    failures = payload["status"]["details"]["failures"]
    assert [f["path"] for f in failures] == [item["path"]]
    assert "not a path under the source root" in failures[0]["message"][0]
    assert (replica / "kept" / "f").exists()
    assert (neighbour / "f").exists()
    assert sorted(os.listdir(replica)) == ["kept"]
