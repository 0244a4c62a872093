"""Run the demo end to end and say what happened (see :mod:`._tree`)."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio

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
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every path processed or skipped, and the replica equal to the source."""
        return not self.differences and all(r.ok for r in self.reports)


def _target(name: str) -> TaskTarget:
    # Loaded by name, as 'asyncstream run' would: the kind (sync or async) is
    # the handler's own.
    return load_task(f"{snapdiff.__name__}:{name}")


async def _replay(tree: DemoTree, hub: HubLocation, echo: Echo) -> list[RunReport]:
    # The diff is taken here so its cost shows apart from building the tree.
    before = take_snapshot(tree.source)
    change_source(tree, random.Random(tree.files))
    diff = snapshot_diff(before, take_snapshot(tree.source), tree.source)
    echo(
        f"source changed: {tree.deleted_files} files deleted ({tree.deleted_dirs}"
        f" directory as a whole), {tree.moved_files} moved; snapshot diff:"
        f" {len(diff.deleted)} deleted paths, {len(diff.moved)} moved paths"
    )
    fields = {"source_root": str(tree.source), "replica_root": str(tree.replica)}
    jobid = new_jobid()
    reports = []
    for name, objects in zip(HANDLERS, (diff.deleted, diff.moved), strict=True):
        report = await run_task(
            _target(name),
            iter(objects),
            hub,
            jobid=jobid,
            stream_results=True,
            fields=fields,
            input_total=len(objects),
        )
        for line in report_lines(report, where=False):
            echo(line)
        reports.append(report)
    return reports


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
        tree = build_tree(root, files)
        echo(
            f"scratch tree: {files} files in {tree.source} and the same in"
            f" {tree.replica} ({time.monotonic() - started:.2f} s)"
        )
        outcome = DemoOutcome(tree)
        with embedded_hub(db_path or root / "hub.sqlite3") as hub:
            started = time.monotonic()
            outcome.reports = anyio.run(_replay, tree, hub, echo)
            outcome.seconds = time.monotonic() - started
        outcome.differences = tree_differences(tree.source, tree.replica)
        _summarise(outcome, echo, browsable=keep or db_path is not None)
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
        f" {rate:.0f} paths/s (snapshot diff and both handlers, results streamed);"
        f" the handlers alone {handler_rate:.0f} paths/s"
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
