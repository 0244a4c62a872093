"""The per-process loop thread: calls, misuse on the loop thread, interrupts, fork."""

from __future__ import annotations

import contextvars
import json
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import anyio
import pytest

from asyncstream import _portal
from asyncstream._exceptions import UsageError
from asyncstream.utils.inputs import expand_paths
from tests.runtime._pager_fakes import main_thread_waits_on_a_future

# --import-mode=importlib keeps test modules from importing each other.


async def _loop_thread_id() -> int:
    return threading.get_native_id()


def test_call_runs_the_coroutine_on_the_one_loop_thread() -> None:
    first = _portal.call(_loop_thread_id)
    assert first == _portal.call(_loop_thread_id)
    assert first != threading.get_native_id()
    assert _portal.loop_portal() is _portal.loop_portal()


_CALLER_ONLY: contextvars.ContextVar[str] = contextvars.ContextVar(
    "caller_only", default="unset"
)


def test_a_call_runs_in_a_context_of_its_own_and_raises_what_it_raised() -> None:
    async def read_and_set() -> str:
        seen = _CALLER_ONLY.get()
        _CALLER_ONLY.set("set on the loop")
        return seen

    async def fail() -> None:
        raise KeyError("from the loop")

    token = _CALLER_ONLY.set("the caller's")
    try:
        # Neither side sees the other's context variables.
        assert _portal.call(read_and_set) == "unset"
        assert _CALLER_ONLY.get() == "the caller's"
        with pytest.raises(KeyError, match="from the loop"):
            _portal.call(fail)
    finally:
        _CALLER_ONLY.reset(token)


def test_post_runs_on_the_loop_thread_before_what_is_called_next() -> None:
    _portal.call(_loop_thread_id)  # the loop thread is running
    ran: list[tuple[str, int, str]] = []

    def record(name: str) -> None:
        # In a task of the loop (anyio works there), in a context of its own.
        anyio.get_current_task()
        ran.append((name, threading.get_native_id(), _CALLER_ONLY.get()))
        _CALLER_ONLY.set("set by a post")

    async def record_call() -> None:
        record("called")

    token = _CALLER_ONLY.set("the caller's")
    try:
        assert _portal.post(record, "first")
        assert _portal.post(record, "second")
        _portal.call(record_call)
    finally:
        _CALLER_ONLY.reset(token)
    loop_thread = _portal.call(_loop_thread_id)
    assert ran == [
        ("first", loop_thread, "unset"),
        ("second", loop_thread, "unset"),
        ("called", loop_thread, "unset"),
    ]


def test_sync_shim_on_the_loop_thread_is_a_usage_error_not_a_deadlock() -> None:
    ref = {"stream": "/api/streams/x/paths/", "count": 1}

    def shims_on_loop_thread() -> list[str]:
        assert _portal.in_loop_thread()
        errors = []
        for shim in (
            lambda: _portal.call(_loop_thread_id),
            lambda: list(expand_paths([ref], hub_url="http://hub.test")),
        ):
            try:
                shim()
            except UsageError as exc:
                errors.append(str(exc))
        return errors

    errors = _portal.loop_portal().call(shims_on_loop_thread)
    assert len(errors) == 2
    assert all("would deadlock" in e for e in errors)


def _to_the_process() -> None:
    os.kill(os.getpid(), signal.SIGALRM)


def _to_the_loop_thread() -> None:
    # Where the kernel may deliver a signal sent to the process: the thread the
    # handler must run in (the main one) is not woken by it.
    signal.pthread_kill(threading.get_ident(), signal.SIGALRM)


@pytest.mark.parametrize("send", [_to_the_process, _to_the_loop_thread])
def test_exception_in_the_waiting_thread_cancels_the_loop_side_work(
    send: Callable[[], None],
) -> None:
    class TimeLimit(Exception):
        pass

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise TimeLimit

    outcome: list[str] = []

    async def slow_work() -> None:
        # The signal interrupts the main thread, blocked waiting for this.
        await main_thread_waits_on_a_future()
        send()
        try:
            await anyio.sleep(30)
            outcome.append("finished")
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        started = time.monotonic()
        with pytest.raises(TimeLimit):
            _portal.call(slow_work)
    finally:
        signal.signal(signal.SIGALRM, previous)
    # Cancelled, and unwound before the exception reached the caller.
    assert outcome == ["cancelled"]
    assert time.monotonic() - started < 5


def test_a_timeout_error_of_the_work_itself_reaches_the_caller() -> None:
    # The wait wakes on a timeout of its own; the work's TimeoutError is not it.
    async def times_out() -> None:
        raise TimeoutError("the work's own")

    with pytest.raises(TimeoutError, match="the work's own"):
        _portal.call(times_out)


def test_forked_child_gets_a_fresh_working_loop_thread() -> None:
    parent_loop = _portal.call(_loop_thread_id)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            forgotten = _portal._thread is None and _portal._portal is None
            child_loop = _portal.call(_loop_thread_id)
            paths = list(expand_paths(["/a", {"path": "/b"}]))
            report = {
                "forgotten": forgotten,
                "fresh": child_loop not in (parent_loop, threading.get_native_id()),
                "paths": paths,
            }
            os.write(write_end, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20)
        assert ready, "the forked child did not answer within 20s"
        report = json.loads(os.read(read_end, 65536))
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == {
        "forgotten": True,
        "fresh": True,
        "paths": [{"path": "/a"}, {"path": "/b"}],
    }
    assert _portal.call(_loop_thread_id) == parent_loop  # the parent's is untouched
