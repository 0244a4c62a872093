"""Run every planned measurement, each in a child process, under a progress bar.

The hubs run in processes of their own (:mod:`._hubs`); each measurement is a
fresh ``python -m asyncstream.bench._child`` so that its peak RSS is its own. A
row that fails is recorded and the run goes on: the table shows it failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ._hubs import API_KEY, BenchHubs
from ._results import BenchResults, Measurement
from ._rows import Caps, PlannedRun, plan

# A child gets this long plus a second per MIN_RATE paths before it is killed.
CHILD_GRACE, MIN_RATE = 120.0, 2_000

# coverage.py hands its measurement on to subprocesses through these variables.
# A measurement child that inherited them would time and weigh the tracer (several
# times slower, and its data in the traced peak), not the runtime.
TRACER_VARIABLES = frozenset({"COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"})


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to run: sizes, caps, how tracemalloc runs, batch and page sizes."""

    sizes: tuple[int, ...]
    caps: Caps = field(default_factory=Caps)
    trace: str = "separate"  # "inline" traces the timed pass itself (quick runs)
    batch_size: int = 500
    in_flight: int = 4
    page_size: int = 1000
    rows: frozenset[str] | None = None  # None: every row


@dataclass(slots=True)
class BenchRun:
    """The outcome: results plus the facts needed to read them."""

    results: BenchResults
    meta: dict[str, Any]


def _spec(
    config: BenchConfig, run: PlannedRun, hubs: BenchHubs, url: str | None
) -> dict[str, Any]:
    row = run.row
    # Latency rows too trace a second pass: tracing the timed one slowed their
    # reader about fourfold, so they measured tracemalloc, not the latency, and
    # their ratio to the untraced no-latency row meant nothing.
    return {
        "workload": row.workload,
        "trace": config.trace,
        "workload_args": {
            "n": run.paths,
            "taskid": f"bench-{row.key}-{run.paths}-{uuid.uuid4().hex[:8]}",
            "results_url": url,
            "streams_url": hubs.streams.url,
            "api_key": API_KEY,
            "refs": hubs.references(run.paths) if row.reads_streams else [],
            "batch_size": config.batch_size,
            "in_flight": config.in_flight,
            "page_size": row.page_size or config.page_size,
            "prefetch": row.prefetch,
        },
    }


def child_environment(parent: Mapping[str, str]) -> dict[str, str]:
    """The environment of a measurement child: the parent's, without a tracer's."""
    return {k: v for k, v in parent.items() if k not in TRACER_VARIABLES}


def run_child(
    spec: dict[str, Any], advance: Callable[[int], None], timeout: float
) -> dict[str, Any]:
    """Run one measurement; ``advance`` gets progress; return its result figures."""
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "asyncstream.bench._child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=child_environment(os.environ),
        )
        # A hung child must not hang the run: kill it after its time.
        watchdog = threading.Timer(timeout, child.kill)
        watchdog.start()
        result: dict[str, Any] | None = None
        try:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.write(json.dumps(spec))
            child.stdin.close()
            for line in child.stdout:
                message = json.loads(line)
                if "progress" in message:
                    advance(message["progress"])
                elif "result" in message:
                    result = message["result"]
            code = child.wait()
        finally:
            watchdog.cancel()
            if child.poll() is None:
                child.kill()
                child.wait()
        if code or result is None:
            err.seek(0)
            lines = err.read().strip().splitlines() or [f"exit status {code}"]
            raise RuntimeError(lines[-1])
        return result


@contextlib.contextmanager
def _hub_for(run: PlannedRun, hubs: BenchHubs) -> Iterator[str | None]:
    if run.row.results_hub == "sqlite":
        with hubs.fresh_sqlite() as hub:
            yield hub.url
    else:
        yield hubs.discard.url if run.row.results_hub == "discard" else None


def _meta(config: BenchConfig) -> dict[str, Any]:
    return {
        "started": datetime.now(UTC).isoformat(),
        # JSON has no sets: the chosen rows are written as a sorted list.
        "config": {
            **asdict(config),
            "rows": None if config.rows is None else sorted(config.rows),
        },
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "load": {"before": os.getloadavg()},
    }


def run_bench(config: BenchConfig, *, console: Console | None = None) -> BenchRun:
    """Measure every row at every size; show progress on ``console``."""
    console = console or Console(stderr=True)
    runs = plan(config.sizes, config.caps, config.rows)
    meta = _meta(config)
    results = BenchResults(tuple(sorted(set(config.sizes))))

    def passes(run: PlannedRun) -> int:
        return 1 if config.trace != "separate" else 2

    progress = Progress(
        TextColumn("{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    started = time.monotonic()
    with BenchHubs() as hubs, progress:
        reading = [r.paths for r in runs if r.row.reads_streams]
        hubs.prepare_streams(max(reading, default=1))
        total = progress.add_task(
            "all rows", total=sum(r.paths * passes(r) for r in runs)
        )
        for run in runs:
            label = f"{run.row.group}: {run.row.label} ({run.paths:,})"
            this = progress.add_task(label, total=run.paths * passes(run))
            done = [0]

            def advance(n: int, this: Any = this, done: list[int] = done) -> None:
                done[0] += n
                progress.advance(this, n)
                progress.advance(total, n)

            try:
                with _hub_for(run, hubs) as url:
                    # Any stream is fed before the page latency is switched on.
                    spec = _spec(config, run, hubs, url)
                    timeout = CHILD_GRACE + run.paths * passes(run) / MIN_RATE
                    with hubs.page_latency(run.row.latency):
                        figures = run_child(spec, advance, timeout)
                results.add(Measurement.from_child(run.row.key, figures), run.sizes)
            except Exception as exc:  # one broken row must not hide the others
                results.errors[run.row.key] = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]{label} failed:[/] {exc}")
            finally:
                # Workloads tick in chunks: account for the last partial one.
                progress.update(total, advance=run.paths * passes(run) - done[0])
                progress.remove_task(this)
    meta["load"]["after"] = os.getloadavg()
    meta["seconds"] = time.monotonic() - started
    return BenchRun(results, meta)
