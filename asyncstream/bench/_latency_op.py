"""The latency model's ``async`` operation: it completes 2 ms after it starts, as I/O.

An ``await`` on a network file system ends when the reply arrives: the kernel
marks a socket readable, the event loop's poll returns, the task resumes. The
model's operation ends the same way, on a kernel timer armed for 2 ms (a
``timerfd``, which the loop polls as it polls a socket), so the bound
``concurrency / 2 ms`` holds it to what it models.

``await anyio.sleep(0.002)`` would not: uvloop's timers count whole milliseconds
from a clock it reads when its iteration begins. With 64 tasks some fired after
1.2 ms; waiting out the rest by the monotonic clock took 2-3 ms an operation,
2.4 ms on average, so the rows were held to a bound their operation could not
reach (bare tasks, no runtime: 0.82x of it; with kernel timers 0.89x). Where
there is no ``timerfd`` (not Linux) the operation sleeps and waits out the rest.

Each operation in flight has a timer of its own, taken from a pool and put back,
so a run opens about ``concurrency`` of them; :class:`TimedOps` closes them.
Linux's ``timerfd`` calls are reached through ctypes: ``os.timerfd_create``
comes with Python 3.13.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from typing import Any, Final

import anyio

OP_SECONDS: Final = 0.002  # the latency model's wait per operation
_CLOCK_MONOTONIC: Final = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> Any | None:
    """libc's timerfd calls, or ``None`` where there are none."""
    if not sys.platform.startswith("linux"):
        return None
    # PyDLL: the GIL is kept across the call, a system call that returns at
    # once; handing the GIL over and back would cost more than the call.
    libc = ctypes.PyDLL(None, use_errno=True)
    if not hasattr(libc, "timerfd_create"):
        return None
    libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.timerfd_settime.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(_Itimerspec),
        ctypes.c_void_p,
    ]
    return libc


_LIBC: Final = _libc()
_WAIT: Final = _Itimerspec(_Timespec(0, 0), _Timespec(0, int(OP_SECONDS * 1e9)))


def kernel_timers() -> bool:
    """True where operations end on kernel timers (Linux), not on sleeps."""
    return _LIBC is not None


async def _sleep_op() -> None:
    end = time.monotonic() + OP_SECONDS
    while (left := end - time.monotonic()) > 0:  # noqa: ASYNC110 (a time, no event)
        await anyio.sleep(left)


class TimedOps:
    """2 ms operations for one run, on the loop that runs them: ``await ops(item)``
    inside ``with TimedOps() as ops``, which closes the timers.

    A timer stays registered with the loop from its first operation to the end
    of the run, as an open connection's socket does: an operation arms it and
    awaits a future that the loop's reader callback resolves. anyio's
    ``wait_readable`` registers and unregisters the descriptor each time, and
    with its own bookkeeping cost more of the loop than the runtime under test.
    """

    def __init__(self) -> None:
        self._free: list[int] = []
        self._opened: list[int] = []
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> TimedOps:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in list(self._opened):
            self._close(fd)
        self._free.clear()

    def _close(self, fd: int) -> None:
        assert self._loop is not None
        self._loop.remove_reader(fd)
        os.close(fd)
        self._opened.remove(fd)

    def _timer(self, loop: asyncio.AbstractEventLoop) -> int:
        if self._free:
            return self._free.pop()
        assert _LIBC is not None
        fd = int(_LIBC.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._loop = loop
        self._opened.append(fd)
        loop.add_reader(fd, self._expired, fd)
        return fd

    def _expired(self, fd: int) -> None:
        os.read(fd, 8)  # the expiry count: the timer is disarmed again
        waiter = self._waiting.pop(fd)
        if not waiter.done():
            waiter.set_result(None)

    async def __call__(self, item: dict[str, Any]) -> str:
        if _LIBC is None:
            await _sleep_op()
            return "processed"
        loop = asyncio.get_running_loop()
        fd = self._timer(loop)
        self._waiting[fd] = waiter = loop.create_future()
        if _LIBC.timerfd_settime(fd, 0, ctypes.byref(_WAIT), None) < 0:
            errno = ctypes.get_errno()
            self._waiting.pop(fd, None)
            self._close(fd)
            raise OSError(errno, "timerfd_settime failed")
        try:
            await waiter
        except BaseException:
            # Cancelled mid-wait, the timer may still fire: never reused.
            self._waiting.pop(fd, None)
            self._close(fd)
            raise
        self._free.append(fd)
        return "processed"
