"""The bare ``COPY`` baseline of a load run on PostgreSQL.

What the hub's PostgreSQL store does with a batch, minus HTTP and the hub: the
same rows a load task sends (its paths, states and numbering), in batches of the
sender's default size, each batch one transaction with one ``COPY`` into the
store's ``results`` table, on one connection, one batch after another as one
sender's batches arrive. It writes into the run's own schema, beside the hub's
rows, under task ids no load task uses, so that the table and its index are the
ones the hub wrote into.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .._paths import STATES, State
from .._stream_results import AsyncStreamTaskResults
from ._load_worker import result_path

# The batch size a load task's sender uses: its default.
BATCH_SIZE: int = (
    inspect.signature(AsyncStreamTaskResults).parameters["batch_size"].default
)

_COPY = "COPY results (taskid, seq, idx, state, path, extra) FROM STDIN"


@dataclass(frozen=True, slots=True)
class CopyFigures:
    """How fast bare ``COPY`` stored ``rows`` results."""

    rows: int
    batches: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def batch_rows(
    taskid: str, seq: int, start: int, stop: int
) -> Iterator[tuple[Any, ...]]:
    """The ``results`` rows the store writes for a load task's batch of results
    ``start`` to ``stop``: grouped by state in the order first seen, numbered
    within the batch, as the hub numbers a batch it receives."""
    by_state: dict[State, list[str]] = {}
    for i in range(start, stop):
        by_state.setdefault(STATES[i % 2], []).append(result_path(taskid, i))
    idx = 0
    for state, paths in by_state.items():
        for path in paths:
            yield (taskid, seq, idx, state, path, None)
            idx += 1


async def copy_baseline(
    dsn: str, taskid: str, results: int, batch_size: int = BATCH_SIZE
) -> CopyFigures:
    """Store ``results`` rows of task ``taskid`` by bare ``COPY``, one transaction
    per batch of ``batch_size``; time it from connected to the last commit."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        batches = 0
        for seq, first in enumerate(range(0, results, batch_size)):
            last = min(results, first + batch_size)
            async with conn.transaction(), conn.cursor().copy(_COPY) as copy:
                for row in batch_rows(taskid, seq, first, last):
                    await copy.write_row(row)
            batches += 1
        seconds = time.perf_counter() - start
    return CopyFigures(results, batches, seconds)


def render_copy(copy: CopyFigures, hub_rates: dict[str, float]) -> list[str]:
    """The baseline, then each hub rate against it."""
    lines = [
        f"bare COPY: {copy.rows:,} rows in {copy.batches:,} transactions of"
        f" {BATCH_SIZE} in {copy.seconds:.1f}s = {copy.rate:,.0f} rows/s"
    ]
    for name, rate in hub_rates.items():
        ratio = rate / copy.rate if copy.rate > 0 else 0.0
        lines.append(
            f"ratio: {name} {rate:,.0f} / bare COPY {copy.rate:,.0f} results/s"
            f" = {ratio:.2f}"
        )
    return lines


def copy_json(copy: CopyFigures) -> dict[str, Any]:
    return {
        "rows": copy.rows,
        "batches": copy.batches,
        "batch_size": BATCH_SIZE,
        "seconds": copy.seconds,
        "rows_per_second": copy.rate,
    }
