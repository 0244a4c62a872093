"""What ``asyncstream bench`` measures: one :class:`RowSpec` per table row.

A row names the workload a child process runs (:mod:`._workloads`), the hubs it
talks to, the raw ceiling it is compared with, and whether its memory must stay
flat as the number of paths grows. Slow baselines are *capped*: they run at most
``cap`` paths and their rate stands for every larger size (extrapolated). A
*fixed* row measures one task of a given size, whatever the sizes asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from .._prefetch_policy import DEFAULT_PAGE_SIZE
from ._one_task import TASK_SIZE

# Results go to a hub that validates and discards (the HTTP ceiling) or to one
# that commits to SQLite; input streams are read from an in-memory hub.
ResultsHub = Literal["discard", "sqlite"]
Group = Literal[
    "raw ceiling", "StreamTaskResults", "expand_paths", "end to end", "baseline"
]

DEFAULT_SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (2_000, 20_000)
LATENCY = 0.020  # seconds added to every stream page by the hub's delay fault
SLOW_LATENCY = 0.100  # a far-away hub
# expand_paths at its default settings: pages of 5000, prefetch depth adaptive.
_DEFAULTS: dict[str, Any] = {
    "prefetch": None,
    "page_size": DEFAULT_PAGE_SIZE,
    "reads_streams": True,
    "streaming": True,
}


@dataclass(frozen=True, slots=True)
class Caps:
    """The most paths the slow rows run; their rate is extrapolated beyond it."""

    post_per_path: int = 10_000
    add_per_call: int = 50_000
    # Rows with 20 ms per page are latency-bound: 10M paths would be 10k pages
    # of sleeping; their rate does not depend on the length of the stream.
    latency: int = 1_000_000

    @classmethod
    def quick(cls) -> Caps:
        """Caps for ``--quick``: a few seconds in all."""
        return cls(post_per_path=500, add_per_call=2_000, latency=20_000)


@dataclass(frozen=True, slots=True)
class RowSpec:
    """One row of the table: a workload, its hubs, its ceiling and its caps.

    ``ceiling`` names the rows whose slowest rate this row is compared with;
    ``streaming`` rows must keep their peak memory flat as N grows, ``grows``
    rows are expected to grow with N.
    """

    key: str
    group: Group
    label: str
    workload: str
    results_hub: ResultsHub | None = None
    reads_streams: bool = False
    prefetch: int | None = 2  # None: unset, the adaptive depth
    page_size: int | None = None  # None: the run's page size
    latency: float = 0.0
    ceiling: tuple[str, ...] = ()
    cap: Literal["post_per_path", "add_per_call", "latency"] | None = None
    streaming: bool = False
    grows: bool = False
    fixed: int | None = None  # a row of one task of this size, whatever is asked

    def effective_size(self, size: int, caps: Caps) -> int:
        """How many paths this row really runs when ``size`` is asked for."""
        if self.fixed is not None:
            return self.fixed
        if self.cap is None:
            return size
        cap: int = getattr(caps, self.cap)
        return min(size, cap)


_RAW_POST = ("raw.post.discard",)
_DELAYED = {"latency": LATENCY, "cap": "latency"}

ROWS: tuple[RowSpec, ...] = (
    RowSpec("raw.post.discard", "raw ceiling", "raw POST → discard hub", "raw_post",
            results_hub="discard"),
    RowSpec("raw.post.sqlite", "raw ceiling", "raw POST → SQLite hub", "raw_post",
            results_hub="sqlite"),
    RowSpec("raw.get", "raw ceiling", "raw GET pages", "raw_get", reads_streams=True),
    RowSpec("raw.get.delay", "raw ceiling", "raw GET pages, +20 ms/page", "raw_get",
            reads_streams=True, latency=LATENCY, cap="latency"),
    RowSpec("sender.async.discard", "StreamTaskResults", "async → discard hub",
            "sender_async", results_hub="discard", ceiling=_RAW_POST, streaming=True),
    RowSpec("sender.sync.discard", "StreamTaskResults", "sync shim → discard hub",
            "sender_sync", results_hub="discard", ceiling=_RAW_POST, streaming=True),
    RowSpec("sender.many.async.discard", "StreamTaskResults",
            "add_many async → discard hub", "sender_many_async",
            results_hub="discard", ceiling=_RAW_POST, streaming=True),
    RowSpec("sender.many.sync.discard", "StreamTaskResults",
            "add_many sync shim → discard hub", "sender_many_sync",
            results_hub="discard", ceiling=_RAW_POST, streaming=True),
    RowSpec("sender.async.sqlite", "StreamTaskResults", "async → SQLite hub",
            "sender_async", results_hub="sqlite", ceiling=("raw.post.sqlite",),
            streaming=True),
    RowSpec("sender.sync.sqlite", "StreamTaskResults", "sync shim → SQLite hub",
            "sender_sync", results_hub="sqlite", ceiling=("raw.post.sqlite",),
            streaming=True),
    RowSpec("task.clean.sqlite", "StreamTaskResults", "one task of 10k → SQLite hub",
            "task_clean", results_hub="sqlite", ceiling=("raw.post.sqlite",),
            fixed=TASK_SIZE),
    RowSpec("task.one_bad.sqlite", "StreamTaskResults",
            "one task of 10k, 1 item refused → SQLite hub", "task_one_bad",
            results_hub="sqlite", ceiling=("task.clean.sqlite",), fixed=TASK_SIZE),
    RowSpec("expand.p2", "expand_paths", "prefetch 2", "expand",
            reads_streams=True, ceiling=("raw.get",), streaming=True),
    RowSpec("expand.p1", "expand_paths", "prefetch 1 (off)", "expand",
            reads_streams=True, prefetch=1, ceiling=("raw.get",), streaming=True),
    RowSpec("expand.p2.delay", "expand_paths", "prefetch 2, +20 ms/page", "expand",
            reads_streams=True, latency=LATENCY, cap="latency",
            ceiling=("raw.get.delay",), streaming=True),
    RowSpec("expand.p1.delay", "expand_paths", "prefetch 1, +20 ms/page", "expand",
            reads_streams=True, prefetch=1, latency=LATENCY, cap="latency",
            ceiling=("raw.get.delay",), streaming=True),
    RowSpec("expand.auto", "expand_paths", "default settings (adaptive depth)",
            "expand", ceiling=("raw.get",), **_DEFAULTS),
    RowSpec("expand.auto.delay", "expand_paths", "default settings, +20 ms/page",
            "expand", latency=LATENCY, cap="latency", **_DEFAULTS),
    RowSpec("expand.auto.delay100", "expand_paths", "default settings, +100 ms/page",
            "expand", latency=SLOW_LATENCY, cap="latency", **_DEFAULTS),
    RowSpec("e2e.sync", "end to end", "expand → add → hub, plain thread", "e2e_sync",
            results_hub="discard", reads_streams=True,
            ceiling=("raw.get", "raw.post.discard"), streaming=True),
    RowSpec("e2e.async", "end to end", "expand → add → hub, async", "e2e_async",
            results_hub="discard", reads_streams=True,
            ceiling=("raw.get", "raw.post.discard"), streaming=True),
    RowSpec("base.post_per_path", "baseline", "one POST per path", "post_per_path",
            results_hub="discard", ceiling=_RAW_POST, cap="post_per_path"),
    RowSpec("base.add_per_call", "baseline", "sync shim, thread hop per add()",
            "add_per_call", results_hub="discard", ceiling=_RAW_POST,
            cap="add_per_call"),
    RowSpec("base.file_action_status", "baseline", "FileActionStatus in memory",
            "file_action_status", grows=True),
)  # fmt: skip

ROWS_BY_KEY = {row.key: row for row in ROWS}


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One child process to run: a row at one effective size, for some sizes."""

    row: RowSpec
    paths: int
    sizes: tuple[int, ...]  # the requested sizes this measurement stands for


def matching_keys(keys: Iterable[str], patterns: Iterable[str], what: str) -> set[str]:
    """The ``keys`` matching any of ``patterns`` (shell-style); ``ValueError``
    naming a pattern that matches none (``what`` names the kind of row)."""
    keys = list(keys)
    chosen: set[str] = set()
    for pattern in patterns:
        matched = {key for key in keys if fnmatchcase(key, pattern)}
        if not matched:
            raise ValueError(f"{pattern!r} matches no {what}")
        chosen |= matched
    return chosen


def select_rows(
    patterns: tuple[str, ...], needs: Mapping[str, tuple[str, ...]] | None = None
) -> frozenset[str]:
    """The keys of the rows matching any of ``patterns`` (shell-style, e.g.
    ``expand.auto*``), with every row they are compared with: their ceilings and,
    through ``needs``, the rows their targets divide by.

    Raises ``ValueError`` naming a pattern that matches no row."""
    chosen = matching_keys([row.key for row in ROWS], patterns, "bench row")
    needs = needs or {}
    pending = list(chosen)
    while pending:
        row = ROWS_BY_KEY[pending.pop()]
        for other in (*row.ceiling, *needs.get(row.key, ())):
            if other not in chosen:
                chosen.add(other)
                pending.append(other)
    return frozenset(chosen)


def plan(
    sizes: tuple[int, ...], caps: Caps, rows: frozenset[str] | None = None
) -> list[PlannedRun]:
    """Every measurement to make, ceilings first; a capped row runs once per
    distinct effective size and stands for every requested size it covers.
    ``rows``, if given, keeps only the rows with those keys."""
    runs: list[PlannedRun] = []
    for row in ROWS:
        if rows is not None and row.key not in rows:
            continue
        by_paths: dict[int, list[int]] = {}
        for size in sorted(set(sizes)):
            by_paths.setdefault(row.effective_size(size, caps), []).append(size)
        runs += [PlannedRun(row, n, tuple(s)) for n, s in sorted(by_paths.items())]
    return runs
