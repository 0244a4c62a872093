"""Streaming tasks that return something other than their payload.

``asyncstream run returnstasks:NAME`` finds this module on the child's PYTHONPATH
(the same folder as ``runtasks``).
"""

from __future__ import annotations

from typing import Any

from asyncstream.utils.inputs import expand_paths


def returns_a_string(status: Any, *, paths: list[Any], **_: Any) -> str:
    """Streams every path, then returns a message instead of the payload."""
    for item in expand_paths(paths):
        status.add("processed", item)
    status.dump()
    return "all good!"


def returns_dump_uncalled(status: Any, *, paths: list[Any], **_: Any) -> Any:
    """Streams every path, then returns the method instead of calling it."""
    for item in expand_paths(paths):
        status.add("processed", item)
    return status.dump


async def async_returns_a_string(status: Any, *, paths: list[Any], **_: Any) -> str:
    """The same mistake in an ``async def`` task."""
    async for item in expand_paths(paths):
        await status.add("processed", item)
    await status.dump()
    return "all good!"
