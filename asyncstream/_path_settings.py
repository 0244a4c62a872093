"""The settings of ``apply_paths``: how many paths at once, and what kind of function.

Kept apart from the engine so that the defaults and their reasons are in one
place, and so that bad values are refused, naming the setting, before anything
starts.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Final

from ._config import lookup_setting
from ._exceptions import InvalidInputError

# Local disks: a system call takes microseconds, and every thread wants the GIL
# back after each one, so the GIL, not the disk, is the limit. One thread keeps
# the calls going while the event loop reads pages and sends results; a second
# one only hands the GIL to and fro, each hand-off a few microseconds of futex
# calls in the kernel. The example handlers over 100,000 files on ext4 (2
# cores): one thread 1.4-1.6x as fast as two, delete 101-122k paths/s against
# 68-84k, move 70-77k against 49k (two plain threads unlinking, no loop: as fast
# as one). With one thread a path that takes long (a directory removed as a
# whole) holds back the paths after it until it is done; a task with many such
# paths can ask for concurrency=2 or more.
LOCAL_DISK_CONCURRENCY: Final = 1
# Network and parallel file systems: each operation waits on the network (~1 ms
# and more), so many wait at once; 64 keeps 1 ms operations near 64,000/s.
NETWORK_FS_CONCURRENCY: Final = 64
ENV_PATH_CONCURRENCY: Final = "ASYNCSTREAM_PATH_CONCURRENCY"
# Paths a worker takes at once, at most. Each chunk costs the event loop a
# wake-up, a hand-over and a status call, during which a worker thread back from
# its system call waits for the GIL: the example delete handler (one thread, a
# local disk) ran 143-156k paths/s with chunks of 1024 against 120-135k with 256.
DEFAULT_CHUNK_SIZE: Final = 1024
# Paths the input buffer holds, at least; a worker's chunk is its share of it,
# and the feed refills the rest while a lone worker is busy with a full chunk.
BUFFER_PATHS: Final = 2048
# A worker's share at high concurrency, at least: each chunk's outcomes cost the
# event loop a wake-up and the status a call, which at 64 workers of 16-path
# chunks of 2 ms operations (32 ms each) kept threads waiting for their next one.
MIN_SHARE: Final = 64


def buffer_paths(concurrency: int) -> int:
    """How many paths the input buffer holds for ``concurrency`` workers:
    :data:`BUFFER_PATHS`, or :data:`MIN_SHARE` per worker when that is more."""
    return max(BUFFER_PATHS, MIN_SHARE * concurrency)


def positive(name: str, value: object) -> int:
    """``value`` as a positive integer (a setting may be a string); else raise."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value)
    if type(value) is not int or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def concurrency_setting(value: int | None) -> int:
    """The concurrency given, else the setting, else the local-disk default."""
    if value is not None:
        return positive("concurrency", value)
    setting = lookup_setting(ENV_PATH_CONCURRENCY)
    if setting is None:
        return LOCAL_DISK_CONCURRENCY
    return positive(f"the setting {ENV_PATH_CONCURRENCY}", setting)


def is_async_function(fn: object) -> bool:
    """True for an ``async def`` (also partial, or an object with one as call)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (an object with async __call__)
    )
