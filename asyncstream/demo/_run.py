"""Run the demo end to end and say what happened (see :mod:`._tree`)."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import _event_loop
from .._run_task import TaskTarget, load_task
from ..run._hub import HubLocation, embedded_hub
from ..run._output import report_lines, where_lines
from ..run._runner import RunReport, new_jobid, run_task
from . import snapdiff
from ._tree import (
    DemoTree,
    Echo,
    build_tree,
    change_source,
    count_files,
    snapshot_diff,
    take_snapshot,
    tree_differences,
)

HANDLERS = ("delete_handler", "move_handler")


@dataclass(slots=True)
class DemoOutcome:
    """The handlers' reports and whether the replica matches the source."""

    tree: DemoTree
    reports: list[RunReport] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the handlers' runs, each from stream creation to summary
    diff_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every path processed or skipped, and the replica equal to the source."""
        return not self.differences and all(r.ok for r in self.reports)


def _target(name: str) -> TaskTarget:
    # Loaded by name, as 'asyncstream run' would: the kind (sync or async) is
    # the handler's own.
    return load_task(f"{snapdiff.__name__}:{name}")


async def _replay(
    tree: DemoTree, hub: HubLocation, echo: Echo, outcome: DemoOutcome
) -> None:
    # Changing the source and diffing it are the workload, not the runtime's
    # work: both are timed apart from the handlers' runs.
    before = take_snapshot(tree.source)
    started = time.monotonic()
    change_source(tree, random.Random(tree.files))
    changed = time.monotonic()
    diff = snapshot_diff(before, take_snapshot(tree.source), tree.source)
    outcome.diff_seconds = time.monotonic() - changed
    echo(
        f"source changed: {tree.deleted_files} files deleted ({tree.deleted_dirs}"
        f" directory as a whole), {tree.moved_files} moved ({changed - started:.2f}"
        f" s); snapshot diff: {len(diff.deleted)} deleted paths,"
        f" {len(diff.moved)} moved paths ({outcome.diff_seconds:.2f} s)"
    )
    fields = {"source_root": str(tree.source), "replica_root": str(tree.replica)}
    jobid = new_jobid()
    for name, objects in zip(HANDLERS, (diff.deleted, diff.moved), strict=True):
        started = time.monotonic()
        report = await run_task(
            _target(name),
            iter(objects),
            hub,
            jobid=jobid,
            stream_results=True,
            fields=fields,
            input_total=len(objects),
        )
        # The whole call: stream created and fed, task started, its results
        # stored at the hub and their count read back.
        outcome.seconds += time.monotonic() - started
        for line in report_lines(report, where=False):
            echo(line)
        outcome.reports.append(report)


def run_demo(
    files: int,
    *,
    echo: Echo,
    db_path: str | None = None,
    keep: bool = False,
) -> DemoOutcome:
    """Build the scratch tree, replay its snapshot diff on the replica, verify.

    The scratch directory (the trees, and the hub's database unless ``db_path``
    names one) is removed at the end unless ``keep``.
    """
    root = Path(tempfile.mkdtemp(prefix="asyncstream-demo-"))
    try:
        started = time.monotonic()
        # The tree is written while the hub process starts: one waits on the
        # disk, the other on its imports, and neither needs the other.
        with ThreadPoolExecutor(1, thread_name_prefix="demo-tree") as pool:
            building = pool.submit(build_tree, root, files)
            with embedded_hub(db_path or root / "hub.sqlite3") as hub:
                echo(f"embedded hub at {hub.url} ({time.monotonic() - started:.2f} s)")
                tree = building.result()
                echo(
                    f"scratch tree: {files} files in {tree.source} and the same in"
                    f" {tree.replica} ({time.monotonic() - started:.2f} s)"
                )
                outcome = DemoOutcome(tree)
                _event_loop.run(_replay, tree, hub, echo, outcome)
        started = time.monotonic()
        outcome.differences = tree_differences(tree.source, tree.replica)
        _summarise(outcome, echo, browsable=keep or db_path is not None)
        echo(f"replica compared with the source in {time.monotonic() - started:.2f} s")
        return outcome
    finally:
        if keep:
            echo(f"scratch directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _summarise(outcome: DemoOutcome, echo: Echo, *, browsable: bool) -> None:
    total = sum(r.total for r in outcome.reports)
    rate = total / outcome.seconds if outcome.seconds > 0 else 0.0
    handlers = sum(r.seconds for r in outcome.reports)
    handler_rate = total / handlers if handlers > 0 else 0.0
    echo(
        f"demo: {total} paths through the hub in {outcome.seconds:.2f} s,"
        f" {rate:.0f} paths/s (both handler runs whole: input streamed to the hub,"
        f" task started, every result stored at the hub; tree building and the"
        f" snapshot diff not counted); the handlers alone {handler_rate:.0f} paths/s"
    )
    if outcome.differences:
        echo("replica does NOT match the source:")
        for problem in outcome.differences:
            echo(f"  {problem}")
    else:
        files = count_files(outcome.tree.replica)
        echo(f"replica matches the source: {files} files, same names and contents")
    if outcome.reports:
        for line in where_lines(*outcome.reports, kept=browsable):
            echo(line)
