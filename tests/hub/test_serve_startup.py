"""``hub serve`` starting, or refusing to: one clear line, a documented status.

Each test that gets as far as opening the store or the port runs the real command
in a child process, as a user would, with a deadline: a hub that hangs instead of
exiting fails the test. Usage errors, refused before anything is opened, run the
command in this process (a child interpreter would only add its start-up time).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from asyncstream.cli import main
from asyncstream.hub import HubProcess, running_hub

SERVE = [sys.executable, "-m", "asyncstream", "hub", "serve", "--host", "127.0.0.1"]
DEADLINE = 30.0


def serve(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("ASYNCSTREAM_API_KEY", None)
    environment.pop("ASYNCSTREAM_HUB_DB", None)
    return subprocess.run(
        [*SERVE, *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=environment,
        check=False,
    )


def serve_usage(*args: str) -> Result:
    """``hub serve ARGS`` in this process, for arguments refused before serving."""
    unset = {"ASYNCSTREAM_API_KEY": None, "ASYNCSTREAM_HUB_DB": None}
    return CliRunner().invoke(
        main, ["hub", "serve", "--host", "127.0.0.1", *args], env=unset
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"name,size\n/a,1\n" * 100, "is not a SQLite database"),
        (b"", "is an empty file"),
        (b"SQLite format 3\x00" + b"\xa5" * 8000, "is not a usable SQLite database"),
    ],
    ids=["csv", "empty", "corrupt"],
)
def test_a_file_that_is_no_database_exits_naming_it(
    tmp_path: Path, content: bytes, says: str
) -> None:
    db = tmp_path / "hub.sqlite3"
    db.write_bytes(content)
    line = one_error_line(serve("--port", "0", "--db", str(db)))
    assert str(db) in line
    assert says in line
    assert db.read_bytes() == content  # refused, not "repaired"


def test_a_database_in_a_missing_directory_exits_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "hub.sqlite3"
    line = one_error_line(serve("--port", "0", "--db", str(db)))
    assert f"its directory {db.parent} does not exist" in line


def test_a_used_port_exits_with_one_line_and_creates_no_database(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "hub.sqlite3"
        line = one_error_line(serve("--port", str(port), "--db", str(db)))
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "in use" in line
    assert not db.exists()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``hub serve --port 0`` and the first line it printed."""
    env = {k: v for k, v in os.environ.items() if k != "ASYNCSTREAM_API_KEY"}
    process = subprocess.Popen(
        [*SERVE, "--port", "0", "--db", str(tmp_path / "hub.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline()
    finally:
        process.terminate()
        process.wait(DEADLINE)
        if process.stdout is not None:
            process.stdout.close()


def test_port_0_announces_the_real_port_once_it_answers(
    started: tuple[subprocess.Popen[str], str],
) -> None:
    _process, banner = started
    found = re.search(r"listening on http://127\.0\.0\.1:(\d+) ", banner)
    assert found, banner
    port = int(found.group(1))
    assert port != 0
    # Announced only once serving: the first request needs no retry.
    response = httpx.get(f"http://127.0.0.1:{port}/api/health/", timeout=10)
    assert response.status_code == 200


def test_serve_takes_the_key_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "hub.key"
    key_file.write_text("from-a-file\n")
    key_file.chmod(0o600)
    hub = HubProcess(
        None, store="memory", api_key=None, extra_args=("--api-key-file", str(key_file))
    )
    with hub:
        anonymous = httpx.get(hub.url + "/api/tasks/", timeout=10)
        keyed = httpx.get(
            hub.url + "/api/tasks/",
            headers={"Authorization": "Api-Key from-a-file"},
            timeout=10,
        )
    assert anonymous.status_code == 401
    assert keyed.status_code == 200
    log = hub.log_path.read_text()
    assert "from-a-file" not in log
    assert "Warning" not in log


@pytest.mark.parametrize(
    ("text", "says"),
    [("", "holds no key"), ("two words\n", "blank or control character")],
)
def test_a_key_file_without_a_usable_key_is_refused(
    tmp_path: Path, text: str, says: str
) -> None:
    key_file = tmp_path / "hub.key"
    key_file.write_text(text)
    result = serve_usage(
        "--port", "0", "--store", "memory", "--api-key-file", str(key_file)
    )
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert str(key_file) in result.stderr
    assert "words" not in result.stderr


def test_a_key_on_the_command_line_is_discouraged(tmp_path: Path) -> None:
    key_file = tmp_path / "hub.key"
    key_file.write_text("k\n")
    both = serve_usage(
        "--store", "memory", "--api-key", "k", "--api-key-file", str(key_file)
    )
    assert both.exit_code == 2, both.output
    assert "one way" in both.stderr
    hub = HubProcess(None, store="memory", api_key=None, extra_args=("--api-key", "k"))
    with hub:
        pass
    assert "shows in the process list" in hub.log_path.read_text()


def file_modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


async def test_a_new_database_is_private_to_its_owner(tmp_path: Path) -> None:
    db = tmp_path / "hub.sqlite3"
    old_umask = os.umask(0o022)
    try:
        async with running_hub(db_path=db) as hub:
            async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as c:
                assert (
                    await c.post("/api/streams/", json={"paths": ["/a"]})
                ).is_success
            modes = file_modes(tmp_path)  # the -wal and -shm files exist now
    finally:
        os.umask(old_umask)
    assert modes["hub.sqlite3"] == 0o600
    assert "hub.sqlite3-wal" in modes
    assert all(mode == 0o600 for mode in modes.values()), modes
