"""The bounded buffer between the reading of the input and the workers.

A deque of path objects with room for ``capacity``, filled by one feed task and
emptied by the workers a chunk at a time. An anyio memory stream would cost a
send and a receive per path, more than deleting a file takes; here a page of
paths goes in with one ``extend`` and a chunk comes out with one slice, and a
task waits only when the buffer is full (the feed) or empty (a worker).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import islice

import anyio

from ._paths import PathObject


class PathBuffer:
    """Paths waiting for a worker: at most ``capacity`` of them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[PathObject] = deque()
        self._closed = False
        self._readable = anyio.Event()
        self._writable = anyio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<PathBuffer {len(self._items)}/{self.capacity} {state}>"

    def put_nowait(self, item: PathObject) -> bool:
        """Add one path if there is room; False (nothing added) if full."""
        if len(self._items) >= self.capacity:
            return False
        self._items.append(item)
        self._readable.set()
        return True

    async def put(self, item: PathObject) -> None:
        """Add one path, waiting while the buffer is full."""
        while len(self._items) >= self.capacity:
            await self._wait_writable()
        self._items.append(item)
        self._readable.set()

    async def put_many(self, items: Sequence[PathObject]) -> None:
        """Add ``items`` in order, as many at a time as there is room for."""
        start, end = 0, len(items)
        while start < end:
            room = self.capacity - len(self._items)
            if room <= 0:
                await self._wait_writable()
                continue
            stop = min(end, start + room)
            self._items.extend(islice(items, start, stop))
            start = stop
            self._readable.set()

    def close(self) -> None:
        """No more paths will come: workers take what is left, then get ``[]``."""
        self._closed = True
        self._readable.set()

    async def take(self, most: int, share_of: int) -> list[PathObject]:
        """Up to ``most`` paths, at least one, never waiting for more than one;
        ``[]`` once the buffer is closed and empty.

        A taker gets a fair share of what is buffered (``1 / share_of`` of it), so
        that a short input still keeps every worker busy while a full buffer
        makes full chunks.
        """
        items = self._items
        while not items:
            if self._closed:
                return []
            if self._readable.is_set():
                self._readable = anyio.Event()
            await self._readable.wait()
        count = min(most, 1 + len(items) // share_of, len(items))
        popleft = items.popleft
        chunk = [popleft() for _ in range(count)]
        self._writable.set()
        return chunk

    async def _wait_writable(self) -> None:
        if self._writable.is_set():
            self._writable = anyio.Event()
        await self._writable.wait()
