"""The example handlers on real files: concurrent paths never race, a stray path
touches nothing, any file name is deleted and reported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncstream import AsyncFileActionStatus, AsyncStreamTaskResults
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.demo.snapdiff import delete_handler, move_handler
from asyncstream.hub import running_hub


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


ODD_NAMES = [
    b"caf\xe9",
    b"caf\xc3\xa9",
    b"new\nline",
    b"cr\r\nlf",
    b"\xff\xfe",
    b'q"\\',
]


def files_named(directory: Path, names: list[bytes]) -> list[str]:
    """The files, made; their paths as ``os`` gives them."""
    directory.mkdir(parents=True)
    paths = [os.fsencode(directory) + b"/" + raw for raw in names]
    for path in paths:
        Path(os.fsdecode(path)).write_bytes(b"x")
    return [os.fsdecode(path) for path in paths]


async def test_names_that_are_bytes_are_deleted_and_named_back_by_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, replica = tmp_path / "source", tmp_path / "replica"
    made = files_named(replica / "d\xe9", ODD_NAMES)  # U+00E9 in a directory name
    paths = [p.replace(str(replica), str(source), 1) for p in made]
    async with running_hub(store="sqlite") as hub:
        # Where the handler's expand_paths finds the hub, as on a worker.
        monkeypatch.setenv("ASYNCSTREAM_HUB_URL", hub.url)
        monkeypatch.setenv("ASYNCSTREAM_API_KEY", hub.api_key or "")
        options = {"hub_url": hub.url, "api_key": hub.api_key}
        async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
            stream = await client.create_stream([{"path": p} for p in paths])
            await client.close_stream(stream["id"])
            reference = [{"stream": stream["url"], "count": len(paths)}]
            async with AsyncStreamTaskResults(
                "delete", reference, 1, "q", "odd-names", **options
            ) as status:
                payload = await delete_handler(
                    status,
                    paths=reference,
                    source_root=str(source),
                    replica_root=str(replica),
                )
            stored = await client.get_results("odd-names", page_size=100)
    assert payload["status"]["summary"]["processed"] == len(paths)
    assert os.listdir(replica / "d\xe9") == []
    assert sorted(r["path"] for r in stored["results"]) == sorted(paths)


# Root ignores file modes: as root the handler runs without the capabilities
# that let it (setpriv), as any other user it runs as that user.
WITHOUT_ROOTS_OVERRIDE = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search,-fowner",
    "--inh-caps=-dac_override,-dac_read_search,-fowner",
]
DELETE_IN_A_CHILD = """
import json, sys
from asyncstream import FileActionStatus
from asyncstream.demo.snapdiff import delete_handler_sync
source, replica, *paths = sys.argv[1:]
status = FileActionStatus("delete", paths, 1, None)
payload = delete_handler_sync(
    status, paths=paths, source_root=source, replica_root=replica
)
print(json.dumps(payload["status"]["details"]))
"""


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="root without setpriv: file modes cannot refuse anything",
)
def test_a_file_in_a_directory_it_may_not_write_is_a_failure_naming_why(
    tmp_path: Path,
) -> None:
    source, replica = tmp_path / "source", tmp_path / "replica"
    (replica / "locked").mkdir(parents=True)
    (replica / "locked" / "f").write_text("x")
    (replica / "open").mkdir()
    (replica / "open" / "g").write_text("x")
    (replica / "locked").chmod(0o555)
    paths = [f"{source}/locked/f", f"{source}/open/g"]
    prefix = WITHOUT_ROOTS_OVERRIDE if os.geteuid() == 0 else []
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", DELETE_IN_A_CHILD,
             str(source), str(replica), *paths],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    finally:
        (replica / "locked").chmod(0o755)
    assert done.returncode == 0, done.stderr
    details = json.loads(done.stdout)
    assert details["processed"] == [{"path": paths[1]}]
    [failure] = details["failures"]
    assert failure["path"] == paths[0]
    assert "Permission denied" in failure["message"][0]
    assert (replica / "locked" / "f").exists()


@pytest.mark.parametrize(
    ("source_root", "replica_root"),
    [("/data", ""), ("", "/replica"), ("/data", "replica"), ("data", "/replica")],
)
async def test_a_root_that_is_empty_or_relative_is_refused_before_any_path(
    tmp_path: Path, source_root: str, replica_root: str
) -> None:
    # An empty replica root would make "/data/x" the file "/x" of this machine.
    kept = tmp_path / "kept"
    kept.write_text("x")
    paths = [f"{source_root}/{kept.relative_to('/')}"]
    for handler in (delete_handler, move_handler):
        status = AsyncFileActionStatus("t", paths, 1, None)
        with pytest.raises(ValueError, match="absolute"):
            await handler(
                status, paths=paths, source_root=source_root, replica_root=replica_root
            )
    assert kept.exists()
