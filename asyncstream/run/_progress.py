"""The progress display of a local run: paths fed, results acknowledged by the hub.

A :class:`~._runner.RunObserver` drawn with rich. Until the feed is complete the
number of paths is unknown, so both bars pulse; then "results" gets its total.
"""

from __future__ import annotations

import time
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
        self._started = time.monotonic()

    def __enter__(self) -> Self:
        self._progress.console.print(self._label)
        self._started = time.monotonic()
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def _rate(self, completed: int) -> str:
        elapsed = time.monotonic() - self._started
        return f"{completed / elapsed:.0f} paths/s" if elapsed > 0.5 else ""

    def fed(self, total: int) -> None:
        """``total`` paths are in the input stream so far."""
        self._progress.update(self._fed, completed=total, rate=self._rate(total))

    def feed_done(self, total: int) -> None:
        """The input stream is complete: both bars now know the total."""
        self._progress.update(self._fed, total=total, completed=total)
        self._progress.update(self._acked, total=total)

    def acknowledged(self, total: int) -> None:
        """The hub holds ``total`` results so far."""
        self._progress.update(self._acked, completed=total, rate=self._rate(total))
