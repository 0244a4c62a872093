"""The bare ``COPY`` baseline of a load run on PostgreSQL.

What the hub's PostgreSQL store does with a batch, minus HTTP and the hub: the
same rows a load task sends (its paths, states and numbering), in batches of the
sender's default size, each batch one transaction with one ``COPY`` into the
store's ``results`` table, as many batches at once (each on a connection of its
own) as one sender keeps in flight: one transaction at a time would measure the
commit's round trip, which the hub overlaps. It writes into the run's own
schema, beside the hub's rows, under task ids no load task uses, so that the
table and its index are the ones the hub wrote into.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .._paths import STATES, State
from .._sender import DEFAULT_BATCH_SIZE, DEFAULT_MAX_INFLIGHT_BATCHES
from ._load_worker import result_path

# The batch size a load task's sender uses: its default.
BATCH_SIZE: int = DEFAULT_BATCH_SIZE
# The batches one sender keeps in flight (its default): as many transactions as
# the hub may have open for one task at once.
IN_FLIGHT: int = DEFAULT_MAX_INFLIGHT_BATCHES

_COPY = "COPY results (taskid, seq, idx, state, path, extra) FROM STDIN"


@dataclass(frozen=True, slots=True)
class CopyFigures:
    """How fast bare ``COPY`` stored ``rows`` results."""

    rows: int
    batches: int
    seconds: float
    connections: int = 1

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
    dsn: str,
    taskid: str,
    results: int,
    batch_size: int = BATCH_SIZE,
    connections: int = IN_FLIGHT,
) -> CopyFigures:
    """Store ``results`` rows of task ``taskid`` by bare ``COPY``, one transaction
    per batch of ``batch_size``, ``connections`` batches at once (each connection
    takes the next batch not yet taken); time it from connected to the last
    commit."""
    import anyio
    import psycopg

    seqs = iter(enumerate(range(0, results, batch_size)))
    conns = [
        await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        for _ in range(connections)
    ]

    async def copy_batches(conn: psycopg.AsyncConnection) -> None:
        # One event loop: taking the next batch never races another taker.
        for seq, first in seqs:
            last = min(results, first + batch_size)
            async with conn.transaction(), conn.cursor().copy(_COPY) as copy:
                for row in batch_rows(taskid, seq, first, last):
                    await copy.write_row(row)

    try:
        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for conn in conns:
                group.start_soon(copy_batches, conn)
        seconds = time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()
    return CopyFigures(results, -(-results // batch_size), seconds, connections)


def render_copy(copy: CopyFigures, hub_rates: dict[str, float]) -> list[str]:
    """The baseline, then each hub rate against it."""
    lines = [
        f"bare COPY: {copy.rows:,} rows in {copy.batches:,} transactions of"
        f" {BATCH_SIZE} on {copy.connections} connection(s) at once in"
        f" {copy.seconds:.1f}s = {copy.rate:,.0f} rows/s"
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
        "connections": copy.connections,
        "seconds": copy.seconds,
        "rows_per_second": copy.rate,
    }
