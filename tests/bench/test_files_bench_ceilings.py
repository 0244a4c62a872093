"""Each latency row of ``bench --files`` is judged against the same waits made
without the runtime: threads against plain threads, ``async`` against bare
asyncio tasks on one event loop."""

from __future__ import annotations

from asyncstream.bench._filework_report import FileFigures, FileRow, _ceiling
from asyncstream.bench._filework_run import plan


def _figures(key: str, seconds: float) -> FileFigures:
    return FileFigures(FileRow(key, key, key, 32_000, bound=32_000.0), [seconds])


def test_async_rows_are_compared_with_bare_event_loop_tasks() -> None:
    rows = [
        _figures("latency:async:64", 4.0),
        _figures("latency:threads:64", 2.0),
        _figures("latency:plain:64", 1.0),
        _figures("latency:loop:64", 2.0),
    ]
    by = {f.row.key: f for f in rows}

    assert _ceiling(by["latency:async:64"], by).endswith("0.50x bare loop")
    assert _ceiling(by["latency:threads:64"], by).endswith("0.50x plain threads")
    assert _ceiling(by["latency:loop:64"], by).endswith("0.50x plain threads")


def test_an_async_row_without_its_loop_row_shows_only_the_bound() -> None:
    row = _figures("latency:async:16", 2.0)
    assert _ceiling(row, {row.row.key: row}) == "0.50x bound (32,000/s)"


def test_the_plan_measures_the_bare_loop_at_the_top_concurrency() -> None:
    keys = [row.key for row in plan(1000, quick=True)]
    assert "latency:loop:64" in keys
    assert keys.index("latency:loop:64") > keys.index("latency:async:64")
