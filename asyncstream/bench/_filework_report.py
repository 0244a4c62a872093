"""The file-work bench's rows, figures, targets and table.

Each target is a ratio of two rows of the same run (a handler against the raw
loop, the async face against the sync one, a latency row against its bound,
memory at ten times the paths against memory at one), so that a loaded machine
moves both sides alike.

"The async face no slower than the sync face" is judged on the runs, not on the
ratio of medians alone: both faces run the very same engine on the event-loop
thread (``AppliedPaths.run``), so that ratio falls either side of 1.0 by chance
(0.93x to 1.12x over four full runs of one code). The async face is found
slower when every one of its runs was slower than every run of the sync face,
alternated with it: a one-sided rank test, which two faces of equal speed fail
by chance once in ``C(2k, k)`` (once in 20 at the default 3 runs each), and
which a real gap of more than the runs' spread always fails.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from rich.table import Table

from ._filework import FACES, OPS

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileRow:
    """One measurement: which workload, how many paths, which results hub."""

    key: str
    label: str
    workload: str
    paths: int
    hub: str | None = None  # "discard" or "sqlite"; None: no results sent
    bound: float | None = None  # latency rows: the rate no run can pass
    trace: str = "off"


@dataclass(slots=True)
class FileFigures:
    """What a row measured (``error`` if it failed to run).

    A row may run several times, alternated with the other rows: ``runs`` holds
    each run's seconds, :attr:`seconds` is their median (what the rate and the
    targets use), the peaks are the highest of any run.
    """

    row: FileRow
    runs: list[float] = field(default_factory=list)
    rss_peak: int = 0
    traced_peak: int | None = None
    error: str | None = None

    def add_run(self, seconds: float, rss_peak: int, traced_peak: int | None) -> None:
        """One more run of the row: the peaks follow it."""
        self.runs.append(seconds)
        self.rss_peak = max(self.rss_peak, rss_peak)
        if traced_peak is not None:
            self.traced_peak = max(self.traced_peak or 0, traced_peak)

    @property
    def seconds(self) -> float:
        """The median run's seconds (0.0 before any run)."""
        return statistics.median(self.runs) if self.runs else 0.0

    @property
    def rate(self) -> float:
        return self.row.paths / self.seconds if self.seconds > 0 else 0.0

    @property
    def spread(self) -> str:
        """The slowest and fastest run's paths/s, when there were several."""
        if len(self.runs) < 2:
            return ""
        n = self.row.paths
        return f"{n / max(self.runs):,.0f}-{n / min(self.runs):,.0f}"


@dataclass(frozen=True, slots=True)
class FileTarget:
    """One goal: its text, the measured ratio, the threshold, met or not."""

    text: str
    value: float | None
    threshold: float
    at_most: bool = False
    # Decided on the runs rather than by value against threshold (see the module).
    verdict: bool | None = None

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.verdict is not None:
            return self.verdict
        if self.at_most:
            return self.value <= self.threshold
        return self.value >= self.threshold


def _ratio(a: FileFigures | None, b: FileFigures | None, attr: str) -> float | None:
    if a is None or b is None or a.error or b.error:
        return None
    x, y = getattr(a, attr), getattr(b, attr)
    return x / y if x and y else None


def slower_in_every_run(a: FileFigures, b: FileFigures) -> bool:
    """Was every run of ``a`` slower (fewer paths/s) than every run of ``b``?"""
    return max(a.row.paths / s for s in a.runs) < min(b.row.paths / s for s in b.runs)


def _no_slower(op: str, by: dict[str, FileFigures]) -> FileTarget:
    faster, slower = by.get(f"{op}:async:discard"), by.get(f"{op}:sync:discard")
    value = _ratio(faster, slower, "rate")
    verdict = None
    if value is not None and faster is not None and slower is not None:
        verdict = not slower_in_every_run(faster, slower)
    return FileTarget(
        f"{op} handler: async face no slower than sync face (discard hub;"
        " slower: every run slower)",
        value,
        1.0,
        verdict=verdict,
    )


def targets(figures: list[FileFigures]) -> list[FileTarget]:
    """The goals, checked against this run's own figures."""
    by = {f.row.key: f for f in figures}
    found = []
    for op in OPS:
        raw = by.get(f"{op}:raw")
        for face in FACES:
            found.append(
                FileTarget(
                    f"{op} handler, {face} face, discard hub ≥ 0.5x raw loop",
                    _ratio(by.get(f"{op}:{face}:discard"), raw, "rate"),
                    0.5,
                )
            )
        found.append(_no_slower(op, by))
    for kind in ("threads", "async"):
        row = by.get(f"latency:{kind}:64")
        value = None if row is None or row.error else row.rate / (row.row.bound or 1)
        found.append(FileTarget(f"2 ms ops ({kind}) at 64 ≥ 0.8x 64/2ms", value, 0.8))
    memory = sorted(
        (f for f in figures if f.row.key.startswith("memory:")),
        key=lambda f: f.row.paths,
    )
    if len(memory) == 2:
        small, large = memory
        found.append(
            FileTarget(
                "memory at 10x the paths ≤ 1.2x (peak RSS)",
                _ratio(large, small, "rss_peak"),
                1.2,
                at_most=True,
            )
        )
        found.append(
            FileTarget(
                "memory at 10x the paths ≤ 1.2x (traced)",
                _ratio(large, small, "traced_peak"),
                1.2,
                at_most=True,
            )
        )
    return found


def _ceiling(f: FileFigures, by: dict[str, FileFigures]) -> str:
    if f.row.bound:
        bound = f"{f.rate / f.row.bound:.2f}x bound ({f.row.bound:,.0f}/s)"
        # Each kind against the same waits without the runtime: threads against
        # plain threads, the async rows against bare tasks on one event loop.
        kind, concurrency = f.row.key.split(":")[1:3]
        base, name = (
            ("loop", "bare loop") if kind == "async" else ("plain", "plain threads")
        )
        plain = by.get(f"latency:{base}:{concurrency}")
        if plain is None or plain is f or plain.error or not plain.rate:
            return bound
        return f"{bound}, {f.rate / plain.rate:.2f}x {name}"
    op = f.row.key.split(":")[0]
    raw = by.get(f"{op}:raw")
    if raw is None or raw is f or f.row.key.startswith("memory") or not raw.rate:
        return ""
    return f"{f.rate / raw.rate:.2f}x raw"


def render(figures: list[FileFigures], found: list[FileTarget], caption: str) -> Table:
    """The table of rows, then one line per target."""
    by = {f.row.key: f for f in figures}
    table = Table(title="file work: paths/s on real files", caption=caption)
    columns = ("row", "paths", "paths/s", "runs", "x ceiling", "peak RSS MiB")
    for title in (*columns, "traced MiB"):
        table.add_column(title, justify="left" if title == "row" else "right")
    for f in figures:
        if f.error:
            table.add_row(
                f.row.label, f"{f.row.paths:,}", "failed", "", f.error[:60], "", ""
            )
            continue
        traced = "" if f.traced_peak is None else f"{f.traced_peak / MIB:,.1f}"
        table.add_row(
            f.row.label,
            f"{f.row.paths:,}",
            f"{f.rate:,.0f}",
            f.spread or str(len(f.runs) or ""),
            _ceiling(f, by),
            f"{f.rss_peak / MIB:,.1f}",
            traced,
        )
    for t in found:
        mark = "?" if t.met is None else "✓" if t.met else "✗"
        value = "n/a" if t.value is None else f"{t.value:.2f}x"
        table.add_row(f"{mark} {t.text}", "", value, "", "", "", "")
    return table
