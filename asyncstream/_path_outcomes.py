"""What a per-path function made of each path of a chunk, cheaply.

Most paths end in a plain state. A chunk's outcomes are therefore kept as the
chunk's path objects beside one entry per path: the state string itself in the
common case, a :class:`PathOutcome` only when there is more to say (an updated
path object, a message, an error). Building an object per path would cost more
than the system call it reports on; :class:`PathOutcome` objects are made when
someone iterates the outcomes (:meth:`ChunkOutcomes.outcomes`).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._exceptions import InvalidStateError
from ._paths import STATES, PathObject, State, check_state, is_wire_text

_STATE_SET = frozenset(STATES)


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """What became of one path: its state, its path object, why it failed.

    A per-path function may return one (to give an updated path object or a
    message) instead of a bare state; ``error`` is the exception that made a
    path a failure, its traceback dropped.
    """

    state: State
    path: PathObject
    message: str | list[str] | None = None
    error: Exception | None = None


PathFunction: TypeAlias = Callable[[PathObject], "str | PathOutcome"]
AsyncPathFunction: TypeAlias = Callable[[PathObject], Awaitable["str | PathOutcome"]]
# One path's entry: its state, or the full outcome when there is more to it.
Settled: TypeAlias = "State | PathOutcome"


@dataclass(frozen=True, slots=True)
class ChunkOutcomes:
    """The outcomes of a chunk: ``settled[i]`` is what became of ``paths[i]``.

    ``settled`` may be shorter than ``paths`` when the engine stopped mid-chunk;
    the paths past its end were left undone.
    """

    paths: list[PathObject]
    settled: list[Settled]

    def __len__(self) -> int:
        return len(self.settled)

    def joined(self, other: ChunkOutcomes) -> ChunkOutcomes:
        """This chunk's settled paths followed by ``other``'s outcomes."""
        paths = self.paths[: len(self.settled)] + other.paths
        return ChunkOutcomes(paths, self.settled + other.settled)

    def outcomes(self) -> Iterator[PathOutcome]:
        """Each path's :class:`PathOutcome`, made now."""
        for item, entry in zip(self.paths, self.settled, strict=False):
            yield entry if isinstance(entry, PathOutcome) else PathOutcome(entry, item)


def state_runs(
    chunk: ChunkOutcomes,
) -> Iterator[PathOutcome | tuple[State, list[PathObject]]]:
    """The chunk's results in order: runs of paths that ended in one state (one
    ``add_many`` each), and on its own each outcome that carries a message or a
    changed path."""
    settled, paths = chunk.settled, chunk.paths
    first = settled[0] if settled else None
    if isinstance(first, str) and settled.count(first) == len(settled):
        # The common case, every path in one plain state: counted in C, not
        # looked at one by one.
        yield first, paths if len(paths) == len(settled) else paths[: len(settled)]
        return
    run: list[PathObject] = []
    run_state: State | None = None
    for item, entry in zip(chunk.paths, chunk.settled, strict=False):
        if isinstance(entry, PathOutcome):
            if run_state is not None:
                yield run_state, run
                run, run_state = [], None
            yield entry
        elif entry == run_state:
            run.append(item)
        else:
            if run_state is not None:
                yield run_state, run
            run, run_state = [item], entry
    if run_state is not None:
        yield run_state, run


# Characters of an exception's message kept in a failure: room for two paths
# of PATH_MAX and the words around them.
MAX_MESSAGE_CHARS = 10_000


def _message(exc: Exception) -> str:
    """The message of a failure: why, as a person reading the results needs it.

    One path's error must never stop the run because its text cannot travel:
    a huge message (a tool's whole output) is cut, a lone surrogate that is
    no byte of a file name is written as its escape, and an exception whose
    ``str()`` fails is named by its type.
    """
    try:
        text = str(exc) or type(exc).__name__
    except Exception:
        return type(exc).__name__
    if len(text) > MAX_MESSAGE_CHARS:
        cut = len(text) - MAX_MESSAGE_CHARS
        text = f"{text[:MAX_MESSAGE_CHARS]}... ({cut} more characters)"
    if not text.isascii() and not is_wire_text(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def settle(fn: Any, item: PathObject, result: object) -> Settled:
    """The entry of ``item`` from what ``fn`` returned; a bad value raises."""
    if type(result) is str and result in _STATE_SET:  # the common case first
        return result
    try:
        if isinstance(result, str):
            return check_state(result)
        if isinstance(result, PathOutcome):
            check_state(result.state)
            return result
    except InvalidStateError as exc:
        # A misspelt state is a bug of the function: say which one, and where.
        raise InvalidStateError(f"{_returned(fn, item, result)}: {exc}") from None
    raise InvalidStateError(
        f"{_returned(fn, item, result)}: return a state such as 'processed',"
        " or a PathOutcome"
    )


def _returned(fn: Any, item: PathObject, result: object) -> str:
    name = getattr(fn, "__qualname__", fn)
    return f"{name!r} returned {result!r:.200} for {item.get('path')!r:.200}"


def failed(item: PathObject, exc: Exception) -> PathOutcome:
    """The ``failures`` outcome of a path whose function raised ``exc``."""
    return PathOutcome("failures", item, _message(exc), exc.with_traceback(None))


def run_chunk(
    fn: PathFunction, chunk: list[PathObject], stop: threading.Event
) -> list[Settled]:
    """Apply ``fn`` to each path of ``chunk`` in this (worker) thread."""
    settled: list[Settled] = []
    append = settled.append
    states = _STATE_SET
    for item in chunk:
        if stop.is_set():  # the engine is closing: leave the rest undone
            break
        try:
            result = fn(item)
        except Exception as exc:
            append(failed(item, exc))
            continue
        if type(result) is str and result in states:
            append(result)
        else:
            append(settle(fn, item, result))
    return settled


async def run_chunk_async(
    fn: AsyncPathFunction, chunk: list[PathObject], settled: list[Settled]
) -> list[Settled]:
    """Apply ``async def fn`` to each path of ``chunk``, one after the other,
    appending each entry to ``settled`` as it comes: the caller keeps what was
    done when the chunk is cancelled half-way."""
    for item in chunk:
        try:
            result = await fn(item)
        except Exception as exc:
            settled.append(failed(item, exc))
        else:
            settled.append(settle(fn, item, result))
    return settled
