"""``asyncstream run`` on names that are not UTF-8, and on a feed that fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncstream._run_task import load_task
from asyncstream.hub import running_hub
from asyncstream.run._hub import HubLocation
from asyncstream.run._runner import run_task

from .conftest import HERE, asyncstream, stored_results

RAW_NAMES = [b"\xffbad.txt", b"latin1-\xe9t\xe9", "café.txt".encode(), b"plain"]


def make_tree(root: Path) -> set[str]:
    root.mkdir()
    for raw in RAW_NAMES:
        with open(os.fsencode(root) + b"/" + raw, "wb") as out:
            out.write(b"x")
    return {os.fsdecode(os.fsencode(root) + b"/" + raw) for raw in RAW_NAMES}


def test_run_deletes_files_whose_names_are_not_utf8_and_reports_them(
    tmp_path: Path,
) -> None:
    names = make_tree(tmp_path / "tree")
    db = tmp_path / "hub.sqlite3"
    result = asyncstream(
        "run", "runtasks:unlinks", str(tmp_path / "tree"), "--db", str(db)
    )
    assert result.code == 0, result.err
    assert result.summary["processed"] == len(names)
    assert os.listdir(tmp_path / "tree") == []
    stored = stored_results(db, result.taskid)
    assert {r["path"] for r in stored} == names


def test_run_reads_names_that_are_not_utf8_from_stdin(tmp_path: Path) -> None:
    names = make_tree(tmp_path / "tree")
    db = tmp_path / "hub.sqlite3"
    lines = b"".join(os.fsencode(name) + b"\n" for name in sorted(names))
    # Text stdin as in a user's en_US.UTF-8 locale: strict about bytes.
    env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONIOENCODING": "utf-8:strict"}
    done = subprocess.run(
        [sys.executable, "-m", "asyncstream", "run", "runtasks:unlinks", "-",
         "--db", str(db)],
        input=lines, capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert os.listdir(tmp_path / "tree") == []


def failing_feed(paths: list[str]) -> Iterator[dict[str, Any]]:
    """The first two paths, then the error a listing may raise mid-way."""
    yield from ({"path": p} for p in paths[:2])
    raise OSError("the listing became unreadable")


async def test_a_run_whose_feed_fails_is_never_complete_at_the_hub(
    tmp_path: Path,
) -> None:
    names = sorted(make_tree(tmp_path / "tree"))
    target = load_task("tests.cli.runtasks:sizes_async")
    async with running_hub(store="sqlite") as hub:
        location = HubLocation(hub.url, hub.api_key)
        # The feed's error says why the run failed, not the task's cut input.
        with pytest.raises(OSError, match="the listing became unreadable"):
            await run_task(
                target,
                failing_feed(names),
                location,
                jobid=1,
                taskid="cut-short",
                input_total=len(names),
            )
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as http:
            task = await http.get("/api/tasks/cut-short/")
    # Not complete: absent, or running with what it did see.
    assert task.status_code == 404 or task.json()["state"] == "running", task.text
