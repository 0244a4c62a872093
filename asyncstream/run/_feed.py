"""Feed a hub input stream from the command line's paths: files, trees, stdin.

Directories are walked lazily (an explicit stack of ``os.scandir`` iterators, never
a list of the whole tree), and paths go to the hub in chunks, so feeding a tree of
millions of files holds one chunk at a time. The feed runs while the task already
reads the stream: the task sees its first page as soon as the first chunk lands.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TextIO

import anyio

from .._deadline import Deadline
from .._exceptions import AsyncStreamError, InvalidPathError
from .._hub_client import HubClient
from .._paths import PathObject

DEFAULT_CHUNK = 1000

OnWalkError = Callable[[OSError], None]


def check_inputs(args: Iterable[str]) -> list[str]:
    """Return the arguments as given, raising for the first one that is missing."""
    checked = list(args)
    for arg in checked:
        if arg != "-" and not os.path.lexists(arg):
            raise InvalidPathError(f"no such file or directory: {arg!r}")
    return checked


def walk_files(root: str, on_error: OnWalkError | None = None) -> Iterator[str]:
    """Every non-directory entry below ``root`` (symlinks not followed), lazily.

    A subdirectory that cannot be read is reported to ``on_error`` and skipped,
    as ``find`` does: one unreadable directory should not stop a run of millions.
    Without ``on_error`` the error propagates.
    """
    stack = [os.scandir(root)]
    try:
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop().close()
            elif entry.is_dir(follow_symlinks=False):
                try:
                    stack.append(os.scandir(entry.path))
                except OSError as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
            else:
                yield entry.path
    finally:
        for iterator in stack:
            iterator.close()


def iter_paths(
    args: Iterable[str], stdin: TextIO, on_error: OnWalkError | None = None
) -> Iterator[str]:
    """The paths named by ``args``: files as given, directories walked, ``-`` stdin.

    A symlink to a directory is a path of its own, not walked (the task decides
    what a link means). Blank lines on stdin are ignored.
    """
    for arg in args:
        if arg == "-":
            yield from (line.rstrip("\r\n") for line in stdin if line.strip())
        elif os.path.isdir(arg) and not os.path.islink(arg):
            yield from walk_files(arg, on_error)
        else:
            yield arg


def as_path_objects(paths: Iterable[str]) -> Iterator[PathObject]:
    """``{"path": p}`` for every path string, lazily."""
    return ({"path": p} for p in paths)


async def feed_stream(
    client: HubClient,
    stream_id: str,
    paths: Iterator[PathObject],
    *,
    chunk: int = DEFAULT_CHUNK,
    deadline: Callable[[], Deadline],
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Append ``paths`` to an open stream in chunks, close it, return the count.

    The walk runs in a worker thread, one chunk at a time, so a slow disk never
    blocks the event loop. ``deadline()`` gives each request's retry deadline.
    The stream is closed even when ``paths`` raises, so that the task reading it
    ends on what was fed instead of waiting for more until its idle timeout.
    """
    fed = 0
    try:
        while True:
            batch = await anyio.to_thread.run_sync(lambda: list(islice(paths, chunk)))
            if not batch:
                break
            # The offset makes a retried append (its answer lost) a no-op.
            await client.append_stream(
                stream_id, batch, offset=fed, deadline=deadline()
            )
            fed += len(batch)
            if on_chunk is not None:
                on_chunk(len(batch))
    except BaseException:
        # Best effort: the original error is the one worth reporting.
        with anyio.CancelScope(shield=True), contextlib.suppress(AsyncStreamError):
            await client.close_stream(stream_id, deadline=deadline())
        raise
    await client.close_stream(stream_id, deadline=deadline())
    return fed
