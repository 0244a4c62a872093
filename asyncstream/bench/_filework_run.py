"""``asyncstream bench --files``: file work at the speed of the file system.

Runs the rows of :mod:`._filework`, each in a fresh child process, against hubs
in processes of their own: the discard hub, a fresh SQLite hub per row that
stores results, and a fresh in-memory hub per row holding its input stream. Ends
with a table of paths/s, each row's ratio to its ceiling (the raw loop, or the
latency model's bound ``concurrency / 2 ms``), peak memory, and the targets:

* the example handlers, both faces, at least 0.5x the raw loop on the discard hub;
* the async face no slower than the sync face (judged on the alternated runs);
* the latency model at concurrency 64 at least 0.8x its bound;
* a handler run at ten times the paths in at most 1.2x the memory.

The targets and the table are :mod:`._filework_report`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from ..hub import HubProcess
from ..hub._serve import StoreKind
from ._filework import CONCURRENCIES, FACES, OPS
from ._filework_report import FileFigures, FileRow, render, targets
from ._hubs import API_KEY
from ._latency_op import OP_SECONDS
from ._rows import matching_keys
from ._runner import run_child

_QUIET = ("--log-level", "warning")
# Input paths one in-memory stream hub holds before a fresh one replaces it.
STREAM_HUB_PATHS = 2_000_000


def plan(n: int, *, quick: bool) -> list[FileRow]:
    """Every row: raw loops and handlers at ``n``, latency, memory at n and 10n."""
    rows = []
    for op in OPS:
        rows.append(FileRow(f"{op}:raw", f"{op}: raw os loop", f"files:{op}:raw", n))
        for hub in ("discard", "sqlite"):
            for face in FACES:
                rows.append(
                    FileRow(
                        f"{op}:{face}:{hub}",
                        f"{op}: handler, {face} face → {hub} hub",
                        f"files:{op}:{face}",
                        n,
                        hub,
                    )
                )
    per_worker = 20 if quick else 500
    for kind in ("threads", "async"):
        for c in CONCURRENCIES:
            what = "time.sleep in threads"
            if kind == "async":
                what = "await kernel timer"
            rows.append(
                FileRow(
                    f"latency:{kind}:{c}",
                    f"2 ms per op ({what}), concurrency {c}",
                    f"latency:{kind}:{c}",
                    c * per_worker,
                    "discard",
                    bound=c / OP_SECONDS,
                )
            )
    # Plain threads and bare asyncio tasks at the top concurrency only: the
    # machine's own ceilings for the model (threads, and one event loop),
    # measured in the same run as the rows they qualify.
    top = CONCURRENCIES[-1]
    rows.append(
        FileRow(
            f"latency:plain:{top}",
            f"2 ms per op (time.sleep in plain threads, no runtime), {top} threads",
            f"latency:plain:{top}",
            top * per_worker,
            bound=top / OP_SECONDS,
        )
    )
    rows.append(
        FileRow(
            f"latency:loop:{top}",
            f"2 ms per op (kernel timer, bare asyncio tasks, no runtime), {top} tasks",
            f"latency:loop:{top}",
            top * per_worker,
            bound=top / OP_SECONDS,
        )
    )
    for size in (n, 10 * n):
        rows.append(
            FileRow(
                f"memory:{size}",
                f"memory: delete handler, async face, {size:,} paths already gone",
                "files:delete:async:gone",
                size,
                "discard",
                trace="inline",
            )
        )
    return rows


def select(rows: list[FileRow], patterns: Sequence[str]) -> list[FileRow]:
    """The rows whose keys match any of ``patterns`` (shell-style), with the rows
    they are compared with: a handler's raw loop, a latency row's runtime-free
    twin at its concurrency. A pattern that matches nothing is an error."""
    keys = matching_keys([row.key for row in rows], patterns, "file-work row")
    for key in list(keys):
        parts = key.split(":")
        if parts[0] in ("delete", "move"):
            keys.add(f"{parts[0]}:raw")
        elif parts[0] == "latency":
            base = "loop" if parts[1] == "async" else "plain"
            keys.add(f"latency:{base}:{parts[2]}")
    return [row for row in rows if row.key in keys]


class _Hubs:
    """The discard hub and an in-memory stream hub for the run (the latter
    replaced before it holds :data:`STREAM_HUB_PATHS`), a fresh SQLite hub per
    row that stores results."""

    def __init__(self) -> None:
        self.discard = _hub(None, "discard")
        self._streams: HubProcess | None = None
        self._fed = 0
        self._dir = Path(tempfile.gettempdir())
        self._count = 0

    def _streams_for(self, paths: int) -> str:
        if self._streams is None or self._fed + paths > STREAM_HUB_PATHS:
            if self._streams is not None:
                _stop(self._streams)
            self._streams, self._fed = _hub(None, "memory"), 0
            self._streams.start()
        self._fed += paths
        return self._streams.url

    @contextlib.contextmanager
    def for_row(self, row: FileRow) -> Iterator[tuple[str | None, str | None]]:
        """``(streams_url, results_url)`` for ``row``, its own hubs stopped after."""
        streams = None
        if row.workload.startswith("files:") and not row.workload.endswith("raw"):
            streams = self._streams_for(row.paths)
        if row.hub != "sqlite":
            yield streams, self.discard.url if row.hub == "discard" else None
            return
        self._count += 1
        db = self._dir / f"asyncstream-bench-files-{os.getpid()}-{self._count}"
        sqlite = _hub(db, "sqlite")
        try:
            sqlite.start()
            yield streams, sqlite.url
        finally:
            _stop(sqlite)
            for path in db.parent.glob(db.name + "*"):
                path.unlink(missing_ok=True)

    def __enter__(self) -> _Hubs:
        self.discard.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _stop(self.discard)
        if self._streams is not None:
            _stop(self._streams)


def _hub(db: Path | None, store: StoreKind) -> HubProcess:
    return HubProcess(db, api_key=API_KEY, store=store, extra_args=_QUIET)


def _stop(hub: HubProcess) -> None:
    hub.stop()
    hub.log_path.unlink(missing_ok=True)


def _spec(row: FileRow, streams: str | None, results: str | None) -> dict[str, Any]:
    return {
        "workload": row.workload,
        "trace": row.trace,
        "workload_args": {
            "n": row.paths,
            "taskid": f"bench-{row.key}-{uuid.uuid4().hex[:8]}",
            "results_url": results,
            "streams_url": streams,
            "api_key": API_KEY,
        },
    }


def run_rows(
    rows: list[FileRow], console: Console, *, repeat: int = 1
) -> list[FileFigures]:
    """Measure each row in a child of its own, ``repeat`` times: every row once,
    then every row again, so that a spell of load on the shared machine falls on
    all rows alike, not on the few that ran during it. The memory rows run once
    (their figure is a peak, not a time). A failed row is recorded, not rerun."""
    figures = [FileFigures(row) for row in rows]
    with _Hubs() as hubs:
        for rep in range(repeat):
            for result in figures:
                row = result.row
                if result.error or (rep and row.key.startswith("memory:")):
                    continue
                round_note = f" [{rep + 1}/{repeat}]" if repeat > 1 else ""
                console.print(
                    f"  {row.label} ({row.paths:,} paths){round_note}…",
                    highlight=False,
                )
                try:
                    with hubs.for_row(row) as (streams, results):
                        timeout = 300 + row.paths / 1000
                        done = run_child(_spec(row, streams, results), _ignore, timeout)
                    result.add_run(
                        done["seconds"], done["rss_peak"], done["traced_peak"]
                    )
                except Exception as exc:  # one broken row must not hide the others
                    result.error = f"{type(exc).__name__}: {exc}"
                    console.print(f"[red]{row.label} failed:[/] {exc}")
    return figures


def _ignore(n: int) -> None:
    """Progress from the child: the rows print their own line instead."""


def run_file_bench(
    n: int,
    *,
    quick: bool,
    json_path: Path | None,
    console: Console,
    patterns: Sequence[str] = (),
    repeat: int = 1,
) -> bool:
    """Run every row (or those ``patterns`` select) ``repeat`` times, print the
    table of medians (and write JSON); False if a row failed."""
    status = Console(stderr=True)
    rows = plan(n, quick=quick)
    if patterns:
        rows = select(rows, patterns)
    load_before = os.getloadavg()
    started = time.monotonic()
    status.print(
        f"file work: {len(rows)} rows, {repeat} run(s) each alternated,"
        f" fresh scratch trees of {n:,} files"
    )
    figures = run_rows(rows, status, repeat=repeat)
    found = targets(figures)
    load_after = os.getloadavg()
    caption = (
        f"{time.monotonic() - started:.0f}s on {os.cpu_count()} CPUs; load average"
        f" {load_before[0]:.2f} → {load_after[0]:.2f}. paths/s: the median of"
        f" {repeat} alternated run(s), slowest-fastest under runs. Raw rows: a plain"
        " loop, no runtime. Handler rows: input streamed from a hub, results to the"
        " named hub."
    )
    if not console.is_terminal:
        console = Console(width=180)  # piped: rich would wrap at 80 columns
    console.print(render(figures, found, caption))
    if json_path is not None:
        document = {
            "rows": [
                {
                    **asdict(f.row),
                    "seconds": f.seconds,
                    "rate": f.rate,
                    "rss_peak": f.rss_peak,
                    "traced_peak": f.traced_peak,
                    "runs": f.runs,
                    "error": f.error,
                }
                for f in figures
            ],
            "targets": [{**asdict(t), "met": t.met} for t in found],
            "load": {"before": load_before, "after": load_after},
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"figures written to {json_path}")
    return not any(f.error for f in figures)
