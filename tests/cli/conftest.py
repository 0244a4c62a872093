"""Run ``asyncstream`` as a child process on real trees, and read what the hub kept."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncstream.hub import HubProcess

HERE = Path(__file__).parent
STATES = ("processed", "skipped", "aborted", "failures", "inprogress")


@dataclass(frozen=True)
class Tree:
    """A tree of real files: ``good/`` (sizes known) and ``bad/`` (``*.bad``)."""

    root: Path
    sizes: dict[str, int]  # every file of good/ -> its size
    bad: list[str]

    @property
    def good(self) -> Path:
        return self.root / "good"


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    root = tmp_path_factory.mktemp("tree")
    sizes = {}
    for index in range(3000):
        path = root / "good" / f"d{index % 30:02d}" / f"sub{index % 3}" / f"f{index}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (index % 97))
        sizes[str(path)] = index % 97
    bad = []
    for index in range(3):
        path = root / "bad" / f"b{index}.bad"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        bad.append(str(path))
    return Tree(root, sizes, bad)


@dataclass(frozen=True)
class Result:
    """A finished ``asyncstream`` process and what it printed."""

    code: int
    out: str
    err: str

    @property
    def summary(self) -> dict[str, int]:
        counts = dict(re.findall(r"^  (\w+) +(\d+)$", self.out, re.MULTILINE))
        return {state: int(counts[state]) for state in STATES}

    @property
    def taskid(self) -> str:
        match = re.search(r"task id ([0-9a-f-]+),", self.out)
        assert match, self.out
        return match.group(1)


def asyncstream(
    *args: str,
    stdin: str | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
    tmpdir: Path | None = None,
) -> Result:
    """``python -m asyncstream ARGS`` with the test tasks importable.

    ``tmpdir`` becomes the child's ``TMPDIR``, where its scratch directory goes.
    """
    env = dict(os.environ)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop("ASYNCSTREAM_API_KEY", None)
    env.pop("ASYNCSTREAM_HUB_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "asyncstream", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def stored_results(db_path: Path, taskid: str) -> list[dict[str, Any]]:
    """The results the hub stored for ``taskid``, read from its SQLite file."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT state, path, extra FROM results WHERE taskid = ?", (taskid,)
        ).fetchall()
    return [
        {"state": state, "path": path, **(json.loads(extra) if extra else {})}
        for state, path, extra in rows
    ]


def fetched_results(hub: HubProcess, taskid: str) -> list[dict[str, Any]]:
    """The results of ``taskid``, read page by page over protocol v1."""
    results: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page_size": 1000}
    headers = {"Authorization": f"Api-Key {hub.api_key}"}
    while True:
        url = f"{hub.url}/api/tasks/{taskid}/results/"
        page = httpx.get(url, params=params, headers=headers, timeout=10).json()
        results += page["results"]
        if page["next"] is None:
            return results
        params["cursor"] = page["next"]


def task_of(hub: HubProcess, taskid: str) -> dict[str, Any]:
    """The hub's record of ``taskid``, with its completion payload."""
    headers = {"Authorization": f"Api-Key {hub.api_key}"}
    task: dict[str, Any] = httpx.get(
        f"{hub.url}/api/tasks/{taskid}/", headers=headers, timeout=10
    ).json()
    return task


def sizes_of(results: list[dict[str, Any]]) -> dict[str, int]:
    """``path -> size`` of the processed results."""
    return {r["path"]: r["size"] for r in results if r["state"] == "processed"}


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    db = tmp_path_factory.mktemp("hub") / "hub.sqlite3"
    with HubProcess(db, api_key="cli-test-key") as process:
        yield process
    process.log_path.unlink(missing_ok=True)
