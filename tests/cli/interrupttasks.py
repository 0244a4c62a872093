"""Tasks that ``asyncstream run`` is interrupted in (``interrupttasks:NAME``).

Each writes the file named by its ``started`` field once it has recorded its
first results, so a test knows when to press Ctrl-C.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from asyncstream.utils.inputs import expand_paths


def slow_sync(status: Any, *, paths: list[Any], started: str, **_: Any) -> Any:
    """Records each path, slowly, with the sync shims."""
    for n, item in enumerate(expand_paths(paths)):
        status.add("processed", item)
        if n == 50:
            Path(started).write_text("started")
        time.sleep(0.01)
    return status.dump()


async def slow_async(status: Any, *, paths: list[Any], started: str, **_: Any) -> Any:
    """The same in an ``async def`` task."""
    import anyio

    n = 0
    async for item in expand_paths(paths):
        await status.add("processed", item)
        if n == 50:
            await anyio.Path(started).write_text("started")
        n += 1
        await anyio.sleep(0.01)
    return await status.dump()


def stubborn(status: Any, *, paths: list[Any], started: str, **_: Any) -> Any:
    """Ignores the first Ctrl-C: only the second can stop the run."""
    for item in expand_paths(paths):
        status.add("processed", item)
    Path(started).write_text("started")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            continue
    return status.dump()
