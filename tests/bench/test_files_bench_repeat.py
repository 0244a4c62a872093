"""``bench --files --repeat K``: every row K times, alternated, judged by medians."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from asyncstream.bench import _filework_run
from asyncstream.bench._filework_report import FileFigures, FileRow
from asyncstream.bench._filework_run import run_rows


def test_the_median_run_sets_the_rate_and_the_highest_peaks_stay() -> None:
    figures = FileFigures(FileRow("delete:raw", "raw", "files:delete:raw", 1000))
    figures.add_run(2.0, 10, None)
    figures.add_run(1.0, 30, 5)
    figures.add_run(4.0, 20, 7)
    assert figures.seconds == 2.0
    assert figures.rate == 500.0
    assert (figures.rss_peak, figures.traced_peak) == (30, 7)
    assert figures.spread == "250-1,000"


def test_one_run_shows_no_spread() -> None:
    figures = FileFigures(FileRow("delete:raw", "raw", "files:delete:raw", 1000))
    figures.add_run(2.0, 10, None)
    assert figures.spread == ""


class _NoHubs:
    def __enter__(self) -> _NoHubs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    @contextlib.contextmanager
    def for_row(self, row: FileRow) -> Iterator[tuple[None, None]]:
        yield None, None


def test_rows_alternate_and_memory_rows_run_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []
    seconds = iter([1.0, 2.0, 3.0, 5.0, 4.0, 6.0, 9.0])

    def fake_child(spec: dict[str, Any], tick: Any, timeout: float) -> dict[str, Any]:
        order.append(spec["workload"])
        if spec["workload"] == "broken":
            raise RuntimeError("no such row")
        return {"seconds": next(seconds), "rss_peak": 1, "traced_peak": None}

    monkeypatch.setattr(_filework_run, "_Hubs", _NoHubs)
    monkeypatch.setattr(_filework_run, "run_child", fake_child)
    rows = [
        FileRow("delete:raw", "raw", "raw", 10),
        FileRow("delete:async:discard", "async", "async", 10),
        FileRow("memory:10", "memory", "memory", 10),
        FileRow("x", "broken", "broken", 10),
    ]
    figures = run_rows(rows, Console(quiet=True), repeat=3)

    assert order == [
        *("raw", "async", "memory", "broken"),
        *("raw", "async"),
        *("raw", "async"),
    ]
    raw, handler, memory, broken = figures
    assert raw.runs == [1.0, 5.0, 6.0]
    assert raw.seconds == 5.0
    assert handler.runs == [2.0, 4.0, 9.0]
    assert handler.seconds == 4.0
    assert memory.runs == [3.0]
    assert broken.error is not None
    assert broken.runs == []
