"""A hub child process that dies with the process that started it.

A test run or a benchmark killed outright (SIGKILL, a time limit, a mutation
tester stopping a test process) gets no chance to stop the hub it started; the
hub would go on serving its port and holding its database. On Linux the child
asks the kernel, between ``fork`` and ``exec``, for SIGKILL when its parent
dies (``prctl(PR_SET_PDEATHSIG)``). Elsewhere there is no such request and the
hub is stopped only by ``HubProcess.stop()``/``kill()``, as before.

Linux sends the signal when the *thread* that forked the child ends, not the
process, so the request is made only for a hub started from the main thread: a
hub started from a worker thread (``anyio.to_thread``, whose threads end when
idle) would otherwise be killed under its still-running parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["die_with_parent"]

# From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


def die_with_parent(*, platform: str = sys.platform) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that makes the child die with
    this process; ``None`` where that cannot be asked for (not Linux, no libc,
    not the main thread)."""
    if not platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def request_kill_on_parent_death() -> None:
        # Runs in the child between fork and exec: only the call prepared above
        # and plain system calls, nothing that could wait on a lock another
        # thread of the parent held at the fork.
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return  # refused (a sandbox): the hub runs without it, as elsewhere
        if os.getppid() != parent:
            # The parent died before the request was made: no signal will come.
            os.kill(os.getpid(), signal.SIGKILL)

    return request_kill_on_parent_death
