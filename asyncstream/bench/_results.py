"""The figures of a run, their ratios, and the performance targets: no I/O at all.

A :class:`Measurement` is what one child process reported; :class:`BenchResults`
files them by row and requested size (a capped row's one measurement stands for
every size above its cap). :func:`evaluate_targets` turns them into the verdicts
the table's "target" column shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._prefetch_depth import DEFAULT_BUDGET_BYTES
from ._rows import ROWS_BY_KEY, RowSpec

MEMORY_GROWTH_LIMIT = 1.2  # peak at the largest size / peak at the smallest


@dataclass(frozen=True, slots=True)
class Measurement:
    """One child's figures: ``paths`` really run in ``seconds``, peak memory."""

    row: str
    paths: int
    seconds: float
    rss_peak: int
    traced_peak: int | None = None
    rss_start: int = 0
    trace: str = "separate"
    load: Any = None

    @property
    def rate(self) -> float:
        """Paths per second (the rate a capped row stands for at any size)."""
        return self.paths / self.seconds if self.seconds > 0 else float("inf")

    @classmethod
    def from_child(cls, row: str, figures: dict[str, Any]) -> Measurement:
        """Build from the ``result`` line of :mod:`._child`."""
        names = ("paths", "seconds", "rss_peak", "traced_peak", "rss_start", "trace")
        return cls(row, load=figures.get("load"), **{k: figures[k] for k in names})


@dataclass(slots=True)
class BenchResults:
    """Measurements by ``(row key, requested size)``, and rows that failed."""

    sizes: tuple[int, ...]
    measurements: dict[tuple[str, int], Measurement] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, measurement: Measurement, sizes: tuple[int, ...]) -> None:
        """File ``measurement`` under every requested size it stands for."""
        for size in sizes:
            self.measurements[measurement.row, size] = measurement

    def get(self, row: str, size: int) -> Measurement | None:
        return self.measurements.get((row, size))

    def rate(self, row: str, size: int) -> float | None:
        m = self.get(row, size)
        return None if m is None else m.rate

    def rate_over(self, row: str, versus: str, size: int) -> float | None:
        """``row``'s rate over ``versus``'s at ``size`` (None if either is missing)."""
        rate, other = self.rate(row, size), self.rate(versus, size)
        return None if rate is None or not other else rate / other

    def ceiling_rate(self, spec: RowSpec, size: int) -> float | None:
        """The slowest of the row's ceilings at ``size`` (None if one is missing)."""
        rates = [self.rate(key, size) for key in spec.ceiling]
        if not rates or any(r is None for r in rates):
            return None
        return min(r for r in rates if r is not None)

    def ratio(self, spec: RowSpec, size: int) -> float | None:
        """The row's rate over its ceiling's at ``size``."""
        rate, ceiling = self.rate(spec.key, size), self.ceiling_rate(spec, size)
        return None if rate is None or not ceiling else rate / ceiling

    def extrapolated(self, row: str, size: int) -> bool:
        """True when the figure at ``size`` was measured on fewer paths."""
        m = self.get(row, size)
        return m is not None and m.paths < size


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One performance target, as met (True), missed (False) or unknown (None)."""

    key: str
    row: str
    text: str
    value: float | None
    met: bool | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RatioTarget:
    """``row`` runs at least ``minimum`` times as fast as ``versus``."""

    key: str
    row: str
    versus: str
    minimum: float
    text: str

    def evaluate(self, results: BenchResults, size: int) -> TargetResult:
        value = results.rate_over(self.row, self.versus, size)
        met = None if value is None else value >= self.minimum
        return TargetResult(self.key, self.row, self.text, value, met)


RATIO_TARGETS = (
    RatioTarget("sender_vs_raw_post", "sender.async.discard", "raw.post.discard",
                0.6, "≥0.6x raw POST"),
    RatioTarget("many_vs_raw_post", "sender.many.async.discard", "raw.post.discard",
                0.9, "≥0.9x raw POST"),
    RatioTarget("sync_vs_async", "sender.sync.discard", "sender.async.discard",
                0.85, "≥0.85x async"),
    RatioTarget("sync_vs_per_add", "sender.sync.discard", "base.add_per_call",
                100.0, "≥100x per-add hop"),
    RatioTarget("expand_auto_latency", "expand.auto.delay", "expand.auto",
                0.8, "≥0.8x no latency"),
    RatioTarget("expand_auto_latency100", "expand.auto.delay100", "expand.auto",
                0.8, "≥0.8x no latency"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BudgetTarget:
    """``row``'s traced peak stays within the reader's memory budget.

    The peak is the whole child's (pages, their JSON text while decoded, the
    client); the budget bounds the pages read ahead alone, so a peak within it
    leaves room for the rest."""

    key: str
    row: str
    budget: int
    text: str

    def evaluate(self, results: BenchResults, size: int) -> TargetResult:
        measured = results.get(self.row, size)
        peak = None if measured is None else measured.traced_peak
        value = None if peak is None else peak / self.budget
        met = None if value is None else value <= 1.0
        detail = f"budget {self.budget / 2**20:.0f} MiB"
        return TargetResult(self.key, self.row, self.text, value, met, detail)


BUDGET_TARGETS = tuple(
    BudgetTarget(f"budget:{row}", row, DEFAULT_BUDGET_BYTES, "traced peak ≤ budget")
    for row in ("expand.auto", "expand.auto.delay", "expand.auto.delay100")
)


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """``row`` ran to the end, and so passed the check its workload makes after
    the timing (:mod:`._one_task`: every valid result stored exactly once, the
    invalid one reported); the value shown is its rate over ``versus``'s."""

    key: str
    row: str
    versus: str
    text: str

    def evaluate(self, results: BenchResults, size: int) -> TargetResult:
        value = results.rate_over(self.row, self.versus, size)
        ran = results.rate(self.row, size) is not None
        met = False if self.row in results.errors else True if ran else None
        return TargetResult(self.key, self.row, self.text, value, met, "vs clean task")


CHECKED_TARGETS = (
    CheckedTarget("one_bad_item", "task.one_bad.sqlite", "task.clean.sqlite",
                  "9,999 stored exactly once, 1 reported"),
)  # fmt: skip


def _growth(small: int | None, large: int | None) -> float | None:
    return None if not small or large is None else large / small


def memory_target(results: BenchResults, spec: RowSpec) -> TargetResult | None:
    """Peak memory at the largest size over the smallest, for rows with a target.

    Streaming rows must stay within :data:`MEMORY_GROWTH_LIMIT` in both RSS and
    tracemalloc peaks; a ``grows`` row is expected to exceed it.
    """
    if not (spec.streaming or spec.grows):
        return None
    key = f"memory:{spec.key}"
    text = "mem grows" if spec.grows else f"mem ≤ {MEMORY_GROWTH_LIMIT}x"
    small = results.get(spec.key, min(results.sizes))
    large = results.get(spec.key, max(results.sizes))
    if small is None or large is None or small.paths == large.paths:
        return TargetResult(key, spec.key, text, None, None, "one size measured")
    rss = _growth(small.rss_peak, large.rss_peak)
    traced = _growth(small.traced_peak, large.traced_peak)
    detail = "" if traced is None else f"traced {traced:.2f}x"
    if rss is None:
        return TargetResult(key, spec.key, text, None, None, detail)
    if spec.grows:
        grown = max(rss, traced or 0.0) > MEMORY_GROWTH_LIMIT
        return TargetResult(key, spec.key, text, rss, grown, detail)
    worst = max(rss, traced or 0.0)
    return TargetResult(key, spec.key, text, rss, worst <= MEMORY_GROWTH_LIMIT, detail)


def target_needs() -> dict[str, tuple[str, ...]]:
    """For each row with a target, the rows that target compares it with."""
    needs: dict[str, tuple[str, ...]] = {}
    for target in (*RATIO_TARGETS, *CHECKED_TARGETS):
        needs[target.row] = (*needs.get(target.row, ()), target.versus)
    return needs


def evaluate_targets(results: BenchResults) -> list[TargetResult]:
    """Every target: ratios at the largest size, then memory growth per row."""
    size = max(results.sizes)
    verdicts = [target.evaluate(results, size) for target in RATIO_TARGETS]
    verdicts += [target.evaluate(results, size) for target in BUDGET_TARGETS]
    verdicts += [target.evaluate(results, size) for target in CHECKED_TARGETS]
    for spec in ROWS_BY_KEY.values():
        verdict = memory_target(results, spec)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts
