"""Feed a hub input stream from the command line's paths: files, trees, stdin.

Every path is made absolute against the working directory, so that what the hub
stores names the file wherever the results are read. Directories are walked
lazily (an explicit stack of ``os.scandir`` iterators, never a list of the whole
tree) into an :class:`InputListing` on disk: the run then knows how many paths
its input holds before the task starts (the stream reference's ``count``, the
payload's ``input_total``) while memory holds one block at a time. Paths go to
the hub in chunks while the task already reads the stream: the task sees its
first page as soon as the first chunk lands.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TextIO

import anyio

from .._deadline import Deadline
from .._exceptions import AsyncStreamError, InvalidPathError
from .._hub_client import HubClient
from .._paths import PathObject

DEFAULT_CHUNK = 1000
# Chunks double from the first up to this: the first lands soon, so the task
# starts reading at once; later ones are fewer, bigger appends, each one commit
# (one fsync on a durable hub) and one request less per thousand paths.
MAX_CHUNK = 16_000
LISTING_BLOCK = 1 << 20  # bytes read from the listing at a time
# Seconds a cancelled feed tries to close its stream (a live hub answers in ms).
CLOSE_WHEN_CANCELLED = 1.0

OnWalkError = Callable[[OSError], None]


def check_inputs(args: Iterable[str]) -> list[str]:
    """Return the arguments as given, raising for the first one that is missing."""
    checked = list(args)
    for arg in checked:
        if arg != "-" and not os.path.lexists(arg):
            raise InvalidPathError(f"no such file or directory: {arg!r}")
    return checked


def absolute_path(path: str) -> str:
    """``path`` made absolute against the working directory, naming the same file.

    ``.`` and doubled slashes go; ``..`` is folded only where that still names
    the same file (after a symlinked directory, ``..`` is not its lexical parent).
    Symlinks are not resolved: a link the user named stays that link.
    """
    joined = os.path.join(os.getcwd(), path)  # ``path`` itself if absolute
    normal = os.path.normpath(joined)
    if os.pardir not in Path(path).parts:
        return normal
    try:
        same = os.path.samestat(os.lstat(normal), os.lstat(joined))
    except OSError:
        same = False
    return normal if same else joined


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


def stdin_names(stdin: TextIO) -> Iterator[str]:
    """The non-blank lines of ``stdin`` as file names.

    Read from its bytes when it has them and decoded as ``os`` decodes names
    (``os.fsdecode``): a name that is not UTF-8 then names its file, where the
    text layer would fail on it or replace its bytes.
    """
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:
        lines: Iterator[str] = (line.rstrip("\r\n") for line in stdin)
    else:
        lines = (os.fsdecode(line.rstrip(b"\r\n")) for line in buffer)
    return (line for line in lines if line.strip())


def iter_paths(
    args: Iterable[str], stdin: TextIO, on_error: OnWalkError | None = None
) -> Iterator[str]:
    """The absolute paths named by ``args``: files, directories walked, ``-`` stdin.

    A symlink to a directory is a path of its own, not walked (the task decides
    what a link means). Blank lines on stdin are ignored.
    """
    for arg in args:
        if arg == "-":
            yield from (absolute_path(line) for line in stdin_names(stdin))
        elif os.path.isdir(arg) and not os.path.islink(arg):
            yield from walk_files(absolute_path(arg), on_error)
        else:
            yield absolute_path(arg)


class InputListing:
    """A run's input paths written to a file, counted, then read back lazily.

    Paths are stored as the file system's bytes (``os.fsencode``) separated by
    NUL, the one byte no path holds, so any file name -- newlines and bytes that
    are not UTF-8 among them -- comes back exactly as it was listed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def write(self, paths: Iterable[str]) -> int:
        """List ``paths`` (replacing any earlier listing); return how many."""
        count = 0
        with self.path.open("wb") as out:
            for item in paths:
                out.write(os.fsencode(item) + b"\0")
                count += 1
        self.count = count
        return count

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as listing:
            rest = b""
            while block := listing.read(LISTING_BLOCK):
                *names, rest = (rest + block).split(b"\0")
                yield from (os.fsdecode(name) for name in names)

    def __repr__(self) -> str:
        return f"InputListing({str(self.path)!r}, count={self.count})"


def as_path_objects(paths: Iterable[str]) -> Iterator[PathObject]:
    """``{"path": p}`` for every path string, lazily."""
    return ({"path": p} for p in paths)


def _take(paths: Iterator[PathObject], count: int) -> list[PathObject]:
    return list(islice(paths, count))


async def feed_stream(
    client: HubClient,
    stream_id: str,
    paths: Iterator[PathObject],
    *,
    chunk: int = DEFAULT_CHUNK,
    max_chunk: int = MAX_CHUNK,
    deadline: Callable[[], Deadline],
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Append ``paths`` to an open stream in chunks, close it, return the count.

    The first chunk holds ``chunk`` paths, each next one twice as many as the
    last, up to ``max_chunk``: the task gets its first page soon, and a long
    input costs few appends.
    The walk runs in a worker thread, one chunk at a time, so a slow disk never
    blocks the event loop. ``deadline()`` gives each request's retry deadline.
    The stream is closed even when ``paths`` raises, so that the task reading it
    ends on what was fed instead of waiting for more until its idle timeout.
    """
    fed = 0
    size = chunk
    try:
        while True:
            batch = await anyio.to_thread.run_sync(_take, paths, size)
            if not batch:
                break
            size = min(2 * size, max_chunk)
            # The offset makes a retried append (its answer lost) a no-op.
            await client.append_stream(
                stream_id, batch, offset=fed, deadline=deadline()
            )
            fed += len(batch)
            if on_chunk is not None:
                on_chunk(len(batch))
    except BaseException as exc:
        # Best effort: the original error is the one worth reporting. Cancelled,
        # the task has stopped reading and the hub may be gone with the same
        # Ctrl-C: the close only tidies up, and must not hold the exit for the
        # whole request deadline.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            close_by = client.deadline(CLOSE_WHEN_CANCELLED)
        else:
            close_by = deadline()
        with anyio.CancelScope(shield=True), contextlib.suppress(AsyncStreamError):
            await client.close_stream(stream_id, deadline=close_by)
        raise
    await client.close_stream(stream_id, deadline=deadline())
    return fed
