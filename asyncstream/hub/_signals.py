"""The in-process wake-up of long-polling stream readers."""

from __future__ import annotations

import asyncio


class StreamSignals:
    """Wakes long-polling readers of a stream when it grows or closes.

    A reader takes the stream's current event *before* reading the store, so an
    append between its read and its wait still wakes it.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.stopping = False

    def event(self, stream_id: str) -> asyncio.Event:
        return self._events.setdefault(stream_id, asyncio.Event())

    def notify(self, stream_id: str) -> None:
        event = self._events.pop(stream_id, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        """End every long poll now (the server is stopping): readers answer what
        they have instead of holding the shutdown for up to their ``wait``."""
        self.stopping = True
        for stream_id in list(self._events):
            self.notify(stream_id)
