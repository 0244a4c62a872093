"""The input buffer that worker threads take chunks from themselves.

:class:`~._path_buffer.PathBuffer` is the event loop's own: a thread can only
reach it through the loop, one ``to_thread`` hand-off per chunk. At 64 threads
of 2 ms operations that hand-off was part of the runtime's loss against plain
threads: the loop's time per chunk (anyio's worker queue, cancel scopes, a
wake-up each way) added to the bursts in which the loop holds the GIL and
woken threads wait for it, and a thread that finished a chunk waited for the
loop to hand it the next one (about 2 ms per chunk, with the results sent).

:class:`SharedPathBuffer` is filled by the feed on the event loop and emptied
by long-lived worker threads under one lock, so that a thread goes from one
chunk to the next without the loop. It also holds the *credits*: a chunk taken
costs one, and one comes back when the consumer takes the chunk's outcomes, so
chunks being worked on or waiting to be taken stay bounded (as the ordered
window and the outcome stream bound them for ``async def`` workers). The feed
waits, on the loop, while the buffer is full; a thread that makes room wakes
it with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from itertools import islice

import anyio

from ._paths import PathObject


class SharedPathBuffer:
    """Paths waiting for a worker thread: at most ``capacity`` of them, and at
    most ``credits`` chunks out (taken and not yet consumed).

    Chunks are up to ``chunk_size`` paths, a fair share (``1 / share_of``) of
    what is buffered, so that a short input keeps every thread busy. A thread
    takes a chunk when its share is at least a quarter of a full chunk, or when
    the feed has paused (its task waits on the loop: for the input, or for
    room); a waiting thread is woken when the feed pauses, not for each path
    that comes in: it would take chunks of a path or two, and each chunk costs
    the loop a wake-up and the status a call.
    """

    def __init__(
        self, capacity: int, *, credits: int, chunk_size: int, share_of: int
    ) -> None:
        self.capacity = capacity
        self.chunk_size = chunk_size
        self._share_of = share_of
        # Buffered paths from which a share is a quarter chunk (1 + n // share_of).
        self._least = (max(1, chunk_size // 4) - 1) * share_of
        self._items: deque[PathObject] = deque()
        self._credits = credits
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._idle = 0  # threads waiting on _changed
        self._paused = True  # the feed is not in the middle of a burst
        self._pause_noted = False  # a call to _feed_paused is scheduled
        self._closed = False  # no more paths will come
        self._halted = False  # stop now, leave the rest
        self._taken = 0  # chunks taken: the next chunk's sequence number
        self._loop = asyncio.get_running_loop()
        self._writable = anyio.Event()
        self._feed_waiting = False

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        state = "halted" if self._halted else "closed" if self._closed else "open"
        return (
            f"<SharedPathBuffer {len(self._items)}/{self.capacity}"
            f" credits={self._credits} {state}>"
        )

    @property
    def taken(self) -> int:
        """How many chunks were taken so far."""
        return self._taken

    # -- the feed, on the event loop ---------------------------------------------

    def put_nowait(self, item: PathObject) -> bool:
        """Add one path if there is room; False (nothing added) if full."""
        # No lock: only the feed adds, and deque appends and pops are atomic,
        # so a length read here can only be too high (a thread took since).
        items = self._items
        if len(items) >= self.capacity:
            return False
        items.append(item)
        self._burst()
        return True

    async def put(self, item: PathObject) -> None:
        """Add one path, waiting while the buffer is full."""
        while not self.put_nowait(item):
            await self._wait_writable()

    async def put_many(self, items: Sequence[PathObject]) -> None:
        """Add ``items`` in order, as many at a time as there is room for."""
        start, end = 0, len(items)
        while start < end:
            stop = min(end, start + self.capacity - len(self._items))
            if stop <= start:
                await self._wait_writable()
                continue
            self._items.extend(islice(items, start, stop))
            start = stop
            self._burst()

    def _burst(self) -> None:
        """Paths came in: the feed is busy until its task next waits, when
        :meth:`_feed_paused` runs (at the latest once the buffer is full)."""
        self._paused = False
        if not self._pause_noted:
            self._pause_noted = True
            self._loop.call_soon(self._feed_paused)

    def _feed_paused(self) -> None:
        # A callback: it runs once the feed's task has given the loop back.
        self._pause_noted = False
        with self._lock:
            self._paused = True
            if self._idle:
                self._changed.notify_all()

    async def _wait_writable(self) -> None:
        with self._lock:
            if len(self._items) < self.capacity and not self._halted:
                return
            if self._writable.is_set():
                self._writable = anyio.Event()
            writable, self._feed_waiting = self._writable, not self._halted
        # Halted, nothing sets it: halting comes with the cancellation of the
        # feed's task group, which this waits for rather than read on.
        await writable.wait()

    def close(self) -> None:
        """No more paths will come: threads take what is left, then stop."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()

    def halt(self) -> None:
        """Stop now: every thread stops waiting and takes nothing more. Safe from
        any thread."""
        with self._lock:
            self._halted = True
            self._changed.notify_all()

    # -- the consumer, on the event loop -----------------------------------------

    def give_back(self, chunks: int = 1) -> None:
        """The outcomes of ``chunks`` chunks were taken: as many more may go out."""
        with self._lock:
            self._credits += chunks
            if self._idle:
                self._changed.notify(chunks)

    # -- the worker threads --------------------------------------------------------

    def take(self) -> tuple[int, list[PathObject]] | None:
        """The next chunk and its sequence number, waiting (in this thread) for
        paths and for a credit; ``None`` once halted, or closed and empty.

        Taken and numbered under the lock, so that the numbers follow the input.
        """
        with self._lock:
            items = self._items
            while True:
                if self._halted:
                    return None
                if items and self._credits:
                    if len(items) >= self._least or self._paused or self._closed:
                        break
                elif not items and self._closed:
                    return None
                self._idle += 1
                try:
                    self._changed.wait()
                finally:
                    self._idle -= 1
            count = min(self.chunk_size, 1 + len(items) // self._share_of, len(items))
            popleft = items.popleft
            chunk = [popleft() for _ in range(count)]
            self._credits -= 1
            seq, self._taken = self._taken, self._taken + 1
            if self._feed_waiting:
                self._feed_waiting = False
                self._loop.call_soon_threadsafe(self._writable.set)
        return seq, chunk
