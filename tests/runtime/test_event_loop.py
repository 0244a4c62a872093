"""The runtime's own loops: uvloop where it is installed, the stock loop otherwise."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from asyncstream import _event_loop

uvloop = pytest.importorskip("uvloop")


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def test_run_uses_uvloop_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_event_loop.ENV_UVLOOP, raising=False)
    assert _event_loop.loop_name() == "uvloop"
    assert _event_loop.run(_loop_module) == "uvloop"


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_setting_turns_uvloop_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(_event_loop.ENV_UVLOOP, value)
    assert _event_loop.loop_name() == "asyncio"
    assert _event_loop.run(_loop_module) == "asyncio"


def test_without_uvloop_the_stock_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_event_loop.ENV_UVLOOP, raising=False)
    # None in sys.modules makes 'import uvloop' raise ImportError, as when it
    # is not installed.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert _event_loop.loop_factory() is None
    assert _event_loop.run(_loop_module) == "asyncio"


_PORTAL_LOOP = """
import asyncio, sys
if sys.argv[1] == "missing":
    sys.modules["uvloop"] = None
from asyncstream import _portal

async def module():
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]

print(_portal.call(module))
"""


@pytest.mark.parametrize(
    ("uvloop_state", "expected"), [("installed", "uvloop"), ("missing", "asyncio")]
)
def test_sync_shims_loop_thread_runs_on_the_chosen_loop(
    uvloop_state: str, expected: str
) -> None:
    # A process of its own: this process's loop thread is started once, early.
    done = subprocess.run(
        [sys.executable, "-c", _PORTAL_LOOP, uvloop_state],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == expected


_BROKEN_LOOP = """
from asyncstream import _event_loop, _portal

def broken(*args):
    raise RuntimeError("no loop can be made here")

_event_loop.run = broken
async def nothing():
    return None
try:
    _portal.call(nothing)
except RuntimeError as exc:
    print("raised:", exc)
"""


def test_a_loop_thread_that_cannot_start_raises_in_the_caller_not_hangs() -> None:
    # A process of its own, as above; a hang would end at the timeout, failing.
    done = subprocess.run(
        [sys.executable, "-c", _BROKEN_LOOP],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == "raised: no loop can be made here"
