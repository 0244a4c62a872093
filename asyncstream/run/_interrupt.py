"""Ctrl-C during ``asyncstream run``: stop the task promptly, keep what it has.

The task runs in a worker thread, where a terminal's SIGINT never lands. The
first Ctrl-C interrupts that thread as Ctrl-C would interrupt a worker's task
(``KeyboardInterrupt``: the task's status stops sending and spools what the hub
did not acknowledge, without waiting on a hub that may have died with the same
Ctrl-C); a second one exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from .. import _portal

T = TypeVar("T")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

__all__ = ["EXIT_INTERRUPTED", "TaskInterrupt"]


class TaskInterrupt:
    """The thread a task runs in, and a way to interrupt it from a signal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self.requested = False

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in this thread, interruptible by :meth:`interrupt`."""
        with self._lock:
            if self.requested:
                raise KeyboardInterrupt
            self._thread = threading.get_ident()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._thread = None

    def interrupt(self) -> bool:
        """Interrupt the task; False if none is running (interrupt the caller)."""
        with self._lock:
            self.requested = True
            if self._thread is None:
                return False
            _portal.interrupt_thread(self._thread)
            return True

    @contextmanager
    def on_sigint(self, notice: str) -> Iterator[None]:
        """While in the block, Ctrl-C interrupts the task; a second one exits."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.requested:
                os.write(2, b"\ninterrupted again: exiting now\n")
                os._exit(EXIT_INTERRUPTED)
            sys.stderr.write(f"\n{notice}\n")
            sys.stderr.flush()
            if not self.interrupt():
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
