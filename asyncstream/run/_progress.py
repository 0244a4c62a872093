"""The progress display of a local run: paths fed, results acknowledged by the hub.

A :class:`~._runner.RunObserver` drawn with rich. Until the feed is complete the
number of paths is unknown, so both bars pulse; then "results" gets its total.
Each bar shows its rate over the last few seconds (:class:`LiveRate`): the
results bar is the task's own pace, which an average since the start would hide
behind the time it took to begin.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# Seconds of history a live rate is taken over.
RATE_WINDOW = 3.0


class LiveRate:
    """Paths per second over the last :data:`RATE_WINDOW` seconds of updates."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._points: deque[tuple[float, int]] = deque()

    def update(self, total: int) -> str:
        """Record that ``total`` paths are done now; the rate to show, or ""."""
        now = self._clock()
        points = self._points
        points.append((now, total))
        # Keep one point at or before the window's start, to measure across it.
        while len(points) > 2 and points[1][0] <= now - RATE_WINDOW:
            points.popleft()
        then, done = points[0]
        if now - then < 0.5:
            return ""
        return f"{(total - done) / (now - then):,.0f} paths/s"


class RunProgress:
    """Two bars, updated from the run's event loop; rich redraws them itself."""

    def __init__(self, label: str, *, console: Console | None = None) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._label = label
        self._fed = self._progress.add_task("fed", total=None, rate="")
        self._acked = self._progress.add_task("results", total=None, rate="")
        self._fed_rate = LiveRate()
        self._acked_rate = LiveRate()

    def __enter__(self) -> Self:
        self._progress.console.print(self._label)
        self._fed_rate.update(0)
        self._acked_rate.update(0)
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def fed(self, total: int) -> None:
        """``total`` paths are in the input stream so far."""
        rate = self._fed_rate.update(total)
        self._progress.update(self._fed, completed=total, rate=rate)

    def feed_done(self, total: int) -> None:
        """The input stream is complete: both bars now know the total."""
        self._progress.update(self._fed, total=total, completed=total)
        self._progress.update(self._acked, total=total)

    def acknowledged(self, total: int) -> None:
        """The hub holds ``total`` results so far."""
        rate = self._acked_rate.update(total)
        self._progress.update(self._acked, completed=total, rate=rate)
