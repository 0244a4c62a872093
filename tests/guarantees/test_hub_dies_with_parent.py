"""A hub process does not outlive the process that started it (Linux).

A test process killed outright (a time limit, a mutation tester's kill) cannot
stop its hub; the kernel does it for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from asyncstream.hub import HubProcess
from asyncstream.hub._parent_death import die_with_parent

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"
)

ROOT = Path(__file__).resolve().parents[2]

# A parent that starts a hub, says where it is, and waits to be killed.
PARENT = """
import time
from asyncstream.hub import HubProcess

hub = HubProcess(None, store="memory", api_key="parent-death-key")
hub.start(timeout=60)
print(hub.pid, hub.url, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (reaped, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@linux_only
def test_a_hub_is_killed_when_the_process_that_started_it_is_killed() -> None:
    hub_pid: int | None = None
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as parent:
        try:
            assert parent.stdout is not None
            pid, url = parent.stdout.readline().split()
            hub_pid = int(pid)
            assert httpx.get(url + "/api/health/", timeout=10).status_code == 200
            parent.kill()
            parent.wait(30)
            deadline = time.monotonic() + 30
            while not _gone(hub_pid):
                assert time.monotonic() < deadline, "the hub outlived its parent"
                time.sleep(0.02)
        finally:
            parent.kill()
            if hub_pid is not None and not _gone(hub_pid):
                os.kill(hub_pid, signal.SIGKILL)  # the orphan this test is about


@linux_only
def test_a_hub_started_from_a_thread_outlives_that_thread() -> None:
    # Linux signals the death of the forking *thread*: a hub started from a
    # worker thread (anyio.to_thread, the soak's runner) must not die with it.
    hub = HubProcess(None, store="memory", api_key="thread-start-key")
    starter = threading.Thread(target=hub.start)
    starter.start()
    starter.join(90)
    try:
        assert hub.pid is not None
        assert httpx.get(hub.url + "/api/health/", timeout=10).status_code == 200
        assert not _gone(hub.pid)
    finally:
        hub.kill()


def test_nothing_is_asked_for_outside_linux() -> None:
    assert die_with_parent(platform="darwin") is None
    assert die_with_parent(platform="win32") is None


@linux_only
def test_on_linux_the_main_thread_gets_the_request() -> None:
    assert callable(die_with_parent())
    found: list[object] = []
    worker = threading.Thread(target=lambda: found.append(die_with_parent()))
    worker.start()
    worker.join()
    assert found == [None]
