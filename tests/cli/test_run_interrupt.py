"""Ctrl-C on ``asyncstream run``: the task stops, what it has is kept and named.

The run is a real child process in a process group of its own, and SIGINT goes
to the whole group, as a terminal sends it: the embedded hub dies with it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from asyncstream.hub import HubProcess
from asyncstream.hub._serve import free_port

from .conftest import HERE, asyncstream

STOP_WITHIN = 20.0  # seconds; a run left alone takes minutes


@contextmanager
def started_run(
    task: str, tree: Path, tmp_path: Path, *extra: str
) -> Iterator[subprocess.Popen[str]]:
    """The run, started; its whole group killed at the end if still there."""
    process = start_run(task, tree, tmp_path, *extra)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def start_run(
    task: str, tree: Path, tmp_path: Path, *extra: str
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [env.get("PYTHONPATH")])]
    )
    env["ASYNCSTREAM_SPOOL_DIR"] = str(tmp_path / "spool")
    env["TMPDIR"] = str(tmp_path)
    env.pop("ASYNCSTREAM_API_KEY", None)
    env.pop("ASYNCSTREAM_HUB_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "asyncstream", "run", f"interrupttasks:{task}",
         str(tree), "--stream", "--no-progress",
         "--field", f"started={tmp_path / 'started'}", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many")
    for i in range(3000):
        (root / f"f{i}").write_bytes(b"")
    return root


@pytest.mark.parametrize("task", ["slow_sync", "slow_async"])
def test_ctrl_c_stops_the_task_spools_and_says_how_to_resume(
    many_files: Path, tmp_path: Path, task: str
) -> None:
    db = tmp_path / "hub.sqlite3"
    with started_run(task, many_files, tmp_path, "--db", str(db)) as process:
        wait_for(tmp_path / "started", process)
        os.killpg(process.pid, signal.SIGINT)
        sent = time.monotonic()
        out, err = process.communicate(timeout=STOP_WITHIN + 30)
        took = time.monotonic() - sent

    assert took < STOP_WITHIN, f"stopped after {took:.1f}s: {err}"
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert f"hub database: {db}" in err
    spools = re.findall(r"undelivered results spooled to: (\S+)", err)
    assert len(spools) == 1, err
    assert f"asyncstream hub serve --db {db}" in err
    assert f"asyncstream resend {spools[0]} --hub http://127.0.0.1:8000" in err
    assert "asyncstream run interrupttasks:" in err

    # The commands it prints work: serve the database, re-send the spool.
    with HubProcess(db, api_key=None, port=free_port()) as hub:
        result = asyncstream("resend", spools[0], "--hub", hub.url)
        assert result.code == 0, result.err
        tasks = httpx.get(f"{hub.url}/api/tasks/", timeout=10).json()["results"]
    stored = sum(sum(t["summary"].values()) for t in tasks)
    assert stored > 50  # what the task recorded before Ctrl-C is at the hub


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(
    many_files: Path, tmp_path: Path
) -> None:
    db = tmp_path / "h"
    with started_run("stubborn", many_files, tmp_path, "--db", str(db)) as process:
        wait_for(tmp_path / "started", process)
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(1.0)  # a moment to be sure the first one did not end it
        assert process.poll() is None  # the task ignores the first one
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=STOP_WITHIN)

    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "exiting now" in err
