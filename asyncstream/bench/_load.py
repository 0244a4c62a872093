"""Figures of a load run: pure functions over what the workers and the hub said.

A load run streams results from many tasks at once into one hub, the shape of a
site whose workers all run their handlers at the same time. What it must show:

* every task completes (``failed`` is zero) at the delivery deadline;
* every result is stored exactly once: the hub's summary of each completed task
  counts what the task sent; a failed task's results are stored or spooled,
  never lost;
* aggregate ingest under contention against one sender alone, measured in the
  same run (``ratio``), and how far the slowest task lags the median
  (``spread``): a starved sender shows as a large spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from textwrap import shorten
from typing import Any


@dataclass(frozen=True, slots=True)
class LoadShape:
    """How much load: worker processes x tasks per process x results per task."""

    processes: int
    tasks: int
    results: int

    @property
    def total_tasks(self) -> int:
        return self.processes * self.tasks

    @property
    def total_results(self) -> int:
        return self.total_tasks * self.results

    def __str__(self) -> str:
        return f"{self.processes} x {self.tasks} x {self.results:,}"


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """One task as its worker saw it, and as the hub stored it."""

    task: str
    sent: int
    seconds: float
    retries: int
    error: str | None
    stored: int = 0
    completed: bool = False

    @classmethod
    def from_worker(
        cls, line: Mapping[str, Any], hub_task: Mapping[str, Any] | None
    ) -> TaskOutcome:
        """Join a worker's line with the hub's summary of that task (if any)."""
        stored = sum(hub_task["summary"].values()) if hub_task else 0
        return cls(
            task=str(line["task"]),
            sent=int(line["sent"]),
            seconds=float(line["seconds"]),
            retries=int(line["retries"]),
            error=line.get("error"),
            stored=stored,
            completed=bool(hub_task and hub_task.get("state") == "completed"),
        )

    @property
    def exact(self) -> bool:
        """A finished task: completed, holding exactly what it sent. A failed task
        (its undelivered results spooled): holding no more than it sent."""
        if self.error is not None:
            return self.stored <= self.sent
        return self.completed and self.stored == self.sent


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """One phase of a run (the single sender, or the contention)."""

    shape: LoadShape
    wall_seconds: float
    tasks: int
    failed: tuple[str, ...]
    not_exact: tuple[str, ...]
    sent: int
    stored: int
    retries: int
    slowest: float
    median: float
    overloaded: int | None = None
    errors: tuple[str, ...] = field(default=())

    @property
    def rate(self) -> float:
        """Results stored per second of wall time."""
        return self.stored / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def spread(self) -> float:
        """Slowest task's time over the median task's."""
        return self.slowest / self.median if self.median > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every task finished and every result was stored exactly once."""
        return not self.failed and not self.not_exact and self.tasks > 0


def phase_figures(
    shape: LoadShape,
    outcomes: Sequence[TaskOutcome],
    wall_seconds: float,
    *,
    overloaded: int | None = None,
) -> PhaseFigures:
    """Sum up a phase. A task the workers never reported counts as failed."""
    reported = len(outcomes)
    missing = shape.total_tasks - reported
    failed = [o.task for o in outcomes if o.error is not None]
    failed += [f"<{missing} tasks never reported>"] if missing > 0 else []
    times = [o.seconds for o in outcomes] or [0.0]
    return PhaseFigures(
        shape=shape,
        wall_seconds=wall_seconds,
        tasks=reported,
        failed=tuple(failed),
        not_exact=tuple(o.task for o in outcomes if not o.exact),
        sent=sum(o.sent for o in outcomes),
        stored=sum(o.stored for o in outcomes),
        retries=sum(o.retries for o in outcomes),
        slowest=max(times),
        median=statistics.median(times),
        overloaded=overloaded,
        errors=tuple(sorted({o.error for o in outcomes if o.error is not None})),
    )


def rejections(metrics_text: str, reason: str = "overloaded") -> int | None:
    """The hub's count of requests refused for ``reason``, from ``/metrics``
    (None when the hub does not publish it)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(metrics_text):
        if family.name != "asyncstream_hub_rejections":
            continue
        return sum(
            int(sample.value)
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels.get("reason") == reason
        )
    return None


def render_phase(name: str, figures: PhaseFigures) -> list[str]:
    """Lines describing one phase, for a terminal."""
    overloaded = "?" if figures.overloaded is None else f"{figures.overloaded:,}"
    lines = [
        f"{name}: {figures.shape} → {figures.tasks} tasks reported,"
        f" {len(figures.failed)} failed, {len(figures.not_exact)} not exact",
        f"  stored {figures.stored:,} of {figures.sent:,} sent in"
        f" {figures.wall_seconds:.1f}s = {figures.rate:,.0f} results/s;"
        f" {overloaded} x 503 overloaded; {figures.retries:,} client retries",
        f"  task time: median {figures.median:.2f}s, slowest {figures.slowest:.2f}s"
        f" ({figures.spread:.2f}x median)",
    ]
    lines += [f"  error: {shorten(error, 160)}" for error in figures.errors[:3]]
    if figures.not_exact:
        lines.append(f"  not exact: {', '.join(figures.not_exact[:5])}")
    return lines


def render_report(
    baseline: PhaseFigures | None, contention: PhaseFigures, hub: str | None = None
) -> str:
    """The whole report: the hub, both phases, then the ratios the run is judged
    by."""
    lines: list[str] = [] if hub is None else [f"hub: {hub}"]
    if baseline is not None:
        lines += render_phase("single sender", baseline)
    lines += render_phase("contention", contention)
    if baseline is not None and baseline.rate > 0:
        lines.append(
            f"ratio: contention {contention.rate:,.0f} / single sender"
            f" {baseline.rate:,.0f} results/s = {contention.rate / baseline.rate:.2f}"
        )
    verdict = "ok" if contention.ok and (baseline is None or baseline.ok) else "FAILED"
    lines.append(f"exactly once, no failed task: {verdict}")
    return "\n".join(lines)


def figures_json(phase: PhaseFigures) -> dict[str, Any]:
    """One phase as plain JSON values (for ``--json``)."""
    return {
        "processes": phase.shape.processes,
        "tasks_per_process": phase.shape.tasks,
        "results_per_task": phase.shape.results,
        "wall_seconds": phase.wall_seconds,
        "tasks_reported": phase.tasks,
        "failed": list(phase.failed),
        "not_exact": list(phase.not_exact),
        "sent": phase.sent,
        "stored": phase.stored,
        "results_per_second": phase.rate,
        "overloaded_503": phase.overloaded,
        "client_retries": phase.retries,
        "median_task_seconds": phase.median,
        "slowest_task_seconds": phase.slowest,
        "slowest_over_median": phase.spread,
        "errors": list(phase.errors),
    }
