"""What every measured workload shares: its inputs, the path pool, checks.

Each workload (:mod:`._ceilings`, :mod:`._workloads`) takes a :class:`Workload`
(hubs, stream references, size) and a ``tick`` that reports progress, and
returns the seconds its timed part took. Path names come from a pool built
before timing starts, so that making strings is not what is measured. Every
workload checks that all ``n`` results arrived: a fast figure is never a lost one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Tick = Callable[[int], None]
QUEUE = "local.bench#custom"
POOL_SIZE = 1 << 16
POOL = [
    f"/mmfs1/data/bench-fileset/dir{i % 97:02d}/file{i}.dat" for i in range(POOL_SIZE)
]
CHUNK = 4096  # paths between two progress ticks


@dataclass(frozen=True, slots=True)
class Workload:
    """What one measurement needs to know: where the hubs are and how big it is."""

    n: int
    taskid: str
    results_url: str | None = None
    streams_url: str | None = None
    api_key: str | None = None
    refs: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 500
    in_flight: int = 4
    page_size: int = 1000
    prefetch: int | None = 2  # None: unset, the adaptive depth

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else {}

    def stream_options(self) -> dict[str, Any]:
        return {"hub_url": self.results_url, "api_key": self.api_key,
                "batch_size": self.batch_size,
                "max_inflight_batches": self.in_flight}  # fmt: skip


def chunks(n: int) -> Iterator[range]:
    """``range(n)`` in pieces of ``CHUNK``, one progress tick each."""
    for start in range(0, n, CHUNK):
        yield range(start, min(n, start + CHUNK))


def check_delivered(w: Workload, delivered: int) -> None:
    if delivered != w.n:
        raise RuntimeError(f"{w.taskid}: {delivered} of {w.n} paths arrived")
