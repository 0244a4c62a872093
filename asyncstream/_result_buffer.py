"""The one accumulator of a task's results: per state, until a batch is due.

A :class:`ResultBuffer` holds validated results per state since the last batch
and says when the next batch is due: when it holds ``batch_size`` results, or
when its first result was added ``linger`` seconds ago (by an injected clock). It
also counts the bytes its results will take in the batch body
(:func:`~._batch_body.item_size`), so that a batch is cut before it would pass
``max_batch_bytes``, and it refuses a result too large for any batch.

The sender keeps one for results added from async code; the sync
``StreamTaskResults`` gets one from its core, fills it in the caller's thread,
encodes what it takes there too (:meth:`ResultBuffer.take_encoded`), and hands
over whole :class:`PendingResults`, so that only batches cross to the event-loop
thread, never single results. A result that is a printable ASCII path alone is
held as that string, a plain path (see :mod:`._batch_body`). No I/O, no locks: one
owner at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from ._batch_body import PLAIN_PATH_ITEM as _PATH_ITEM
from ._batch_body import (
    BatchEnvelope,
    Result,
    all_plain_paths,
    as_path_object,
    item_size,
)
from ._exceptions import InvalidInputError, InvalidPathError
from ._paths import STATES, PathObject, State, to_path_object
from ._retry import Clock

__all__ = ["DEFAULT_MAX_BATCH_BYTES", "PendingResults", "ResultBuffer", "Run"]

# A quarter of the embedded hub's default body limit (32 MiB), so that a batch is
# far below it and a hub behind a proxy with a smaller limit is still served.
DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024


def _lists_per_state() -> dict[State, list[Result]]:
    return {state: [] for state in STATES}


@dataclass(slots=True)
class PendingResults:
    """Results taken out of a buffer together, on their way to become a batch.

    ``nbytes`` bounds what their items take in a body. ``fragment``, when set, is
    their ``items`` object already encoded (in the thread that took them).
    ``taken`` is set by whoever takes them for good, so a hand-over that was
    interrupted and repeated is taken once.
    """

    items: dict[State, list[Result]] = field(repr=False)
    count: int
    nbytes: int = 0
    fragment: bytes | None = field(default=None, repr=False)
    taken: bool = False

    def counts(self) -> dict[State, int]:
        """How many results per state."""
        return {state: len(objs) for state, objs in self.items.items()}

    def merge(self, other: PendingResults) -> None:
        """Take ``other``'s results too (their encoding is then redone)."""
        for state, objs in other.items.items():
            self.items.setdefault(state, []).extend(objs)
        self.count += other.count
        self.nbytes += other.nbytes
        self.fragment = None


@dataclass(slots=True)
class Run:
    """Results read from a caller's list for ``add_many``, validated and measured.

    ``carry`` is the result that did not fit (to go into the next batch);
    ``error`` the item that was not valid, raised once the run is taken.
    """

    objs: list[Result]
    nbytes: int = 0
    carry: tuple[Result, int] | None = None
    error: InvalidInputError | None = None
    exhausted: bool = False


class ResultBuffer:
    """Accumulate results per state; say when a batch is due; hand them over."""

    __slots__ = (
        "_clock",
        "batch_size",
        "by_state",
        "envelope",
        "first_at",
        "linger",
        "max_batch_bytes",
        "nbytes",
        "pending",
        "room",
    )

    def __init__(
        self,
        *,
        batch_size: int,
        linger: float,
        envelope: BatchEnvelope,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        clock: Clock = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(
                f"batch_size must be at least 1, got {batch_size!r}"
            )
        if linger < 0:
            raise InvalidInputError(f"linger must not be negative, got {linger!r}")
        # What is left for items once the envelope (ids, seq, state names) is in.
        room = max_batch_bytes - envelope.overhead
        if room < 64:
            raise InvalidInputError(
                f"max_batch_bytes must leave room for results besides the"
                f" {envelope.overhead} bytes of a batch's envelope,"
                f" got {max_batch_bytes!r}"
            )
        self.batch_size = batch_size
        self.linger = linger
        self.envelope = envelope
        self.max_batch_bytes = max_batch_bytes
        self.room = room
        self._clock = clock
        # A list per state, every state present: one lookup both checks a state
        # and finds where its result goes (the sender's per-result fast path).
        self.by_state: dict[State, list[Result]] = _lists_per_state()
        self.pending = 0
        self.nbytes = 0
        self.first_at = 0.0

    def __repr__(self) -> str:
        return (
            f"<ResultBuffer pending={self.pending}/{self.batch_size}"
            f" bytes={self.nbytes}/{self.room} linger={self.linger}s>"
        )

    def sibling(self) -> ResultBuffer:
        """An empty buffer with this one's settings, for another thread to fill."""
        return ResultBuffer(
            batch_size=self.batch_size,
            linger=self.linger,
            envelope=self.envelope,
            max_batch_bytes=self.max_batch_bytes,
            clock=self._clock,
        )

    def measure(self, obj: PathObject) -> int:
        """Bytes ``obj`` adds to a batch body; refuse it if no batch can hold it."""
        size = item_size(obj) + 1  # and a comma
        if size > self.room:
            raise InvalidPathError(
                f"path object {obj.get('path')!r:.100} takes {size - 1} bytes"
                f" encoded, more than a batch can carry: {self.room} bytes"
                f" (max_batch_bytes {self.max_batch_bytes} less"
                f" {self.envelope.overhead} for the batch's envelope)"
            )
        return size

    def read_run(
        self, source: Iterator[object], want: int, room: int, held: list[object]
    ) -> Run:
        """Validate and measure up to ``want`` items, ``room`` bytes, of ``held``
        (items read before but not taken, first) then ``source``.

        The hot loop of ``add_many``. A run of printable ASCII path strings is
        checked and sized at once and taken as plain paths; otherwise item by
        item: a plain path is sized inline, anything else goes through
        ``to_path_object`` and :meth:`measure`. Items read but not taken (after
        a carry or an error) are put back in ``held``, at most ``want``.
        """
        want = max(1, want)
        if held:
            chunk = held[:want]
            del held[:want]
            chunk += islice(source, want - len(chunk))
        else:
            chunk = list(islice(source, want))
        last = len(chunk) < want  # the source ran out within this chunk
        run = Run([])
        if chunk and set(map(type, chunk)) == {str}:
            # Every item a str: the run's checks and sizes at C speed, the same
            # as the item-by-item loop's for each (a printable ASCII character
            # takes at most two bytes in a body).
            paths: list[str] = chunk  # type: ignore[assignment]
            joined = "".join(paths)
            nbytes = _PATH_ITEM * len(paths) + 2 * len(joined)
            if nbytes <= room and all_plain_paths(joined) and all(paths):
                run.objs = chunk  # type: ignore[assignment]
                run.nbytes, run.exhausted = nbytes, last
                return run
        objs, nbytes, items = run.objs, 0, iter(chunk)
        try:
            for item in items:
                obj: Result
                if type(item) is str and item and item.isascii() and item.isprintable():
                    obj, size = item, _PATH_ITEM + 2 * len(item)
                else:
                    obj = to_path_object(item)
                    size = self.measure(obj)
                if nbytes + size > room:
                    if size > self.room:
                        self.measure(as_path_object(obj))  # raises, naming the limit
                    run.carry = (obj, size)
                    break
                objs.append(obj)
                nbytes += size
            else:
                run.exhausted = last
        except InvalidInputError as exc:
            run.error = exc
        held[:0] = items  # what this run read and did not take
        run.nbytes = nbytes
        return run

    def fits(self, size: int) -> bool:
        """True if a result of ``size`` bytes still fits the batch being filled."""
        return self.nbytes + size <= self.room

    def add(self, state: State, obj: Result, size: int) -> int:
        """Accumulate one validated result of ``size`` bytes (see :meth:`measure`);
        return how many are pending now."""
        pending = self.pending
        if not pending:
            self.first_at = self._clock()
        self.by_state[state].append(obj)
        self.pending = pending = pending + 1
        self.nbytes += size
        return pending

    def started(self) -> None:
        """Note the time of the first pending result, for one added directly to
        :attr:`by_state` (a caller that keeps ``pending`` and ``nbytes`` too)."""
        self.first_at = self._clock()

    def extend(self, state: State, objs: list[Result], nbytes: int) -> None:
        """Accumulate validated results of ``nbytes`` bytes in all."""
        if not objs:
            return
        if not self.pending:
            self.first_at = self._clock()
        self.by_state[state].extend(objs)
        self.pending += len(objs)
        self.nbytes += nbytes

    @property
    def full(self) -> bool:
        """True when a batch is due by size."""
        return self.pending >= self.batch_size

    def linger_remaining(self, now: float) -> float | None:
        """Seconds until a batch is due by time; ``None`` with nothing pending."""
        if not self.pending:
            return None
        return max(0.0, self.first_at + self.linger - now)

    def counts(self) -> dict[State, int]:
        """How many results per state are pending."""
        return {state: len(objs) for state, objs in self.by_state.items() if objs}

    def take(self) -> PendingResults | None:
        """Everything pending, to hand over; ``None`` if nothing is."""
        if not self.pending:
            return None
        items = {state: objs for state, objs in self.by_state.items() if objs}
        taken = PendingResults(items, self.pending, self.nbytes)
        self.by_state, self.pending, self.nbytes = _lists_per_state(), 0, 0
        return taken

    def take_encoded(self) -> PendingResults | None:
        """:meth:`take`, with the items encoded here, in the caller's thread."""
        taken = self.take()
        if taken is not None:
            taken.fragment = self.envelope.encode_items(taken.items)
        return taken
