"""Run the demo end to end and say what happened (see :mod:`._demo`)."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .._run_task import TaskTarget
from ..run._hub import HubLocation, embedded_hub
from ..run._output import report_lines, where_lines
from ..run._runner import RunReport, new_jobid, run_task
from ._tree import (
    DemoTree,
    Echo,
    build_tree,
    change_source,
    count_files,
    load_snapdiff,
    snapshot_diff,
    take_snapshot,
    tree_differences,
)


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


def _target(module: Any, name: str) -> TaskTarget:
    return TaskTarget(f"examples.snapdiff:{name}", getattr(module, name), "async", name)


async def _replay(
    module: Any, tree: DemoTree, hub: HubLocation, echo: Echo
) -> list[RunReport]:
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
    for name, objects in (
        ("delete_handler", diff.deleted),
        ("move_handler", diff.moved),
    ):
        report = await run_task(
            _target(module, name),
            iter(objects),
            hub,
            jobid=jobid,
            stream_results=True,
            fields=fields,
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
    """Build the scratch tree, replay its snapshot diff on the replica, verify."""
    module = load_snapdiff()
    root = Path(tempfile.mkdtemp(prefix="asyncstream-demo-"))
    try:
        started = time.monotonic()
        tree = build_tree(root, files)
        echo(
            f"scratch tree: {files} files in {tree.source} and the same in"
            f" {tree.replica} ({time.monotonic() - started:.2f} s)"
        )
        outcome = DemoOutcome(tree)
        with embedded_hub(db_path) as hub:
            started = time.monotonic()
            outcome.reports = anyio.run(_replay, module, tree, hub, echo)
            outcome.seconds = time.monotonic() - started
        outcome.differences = tree_differences(tree.source, tree.replica)
        _summarise(outcome, echo)
        return outcome
    finally:
        if keep:
            echo(f"scratch tree kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _summarise(outcome: DemoOutcome, echo: Echo) -> None:
    total = sum(r.total for r in outcome.reports)
    rate = total / outcome.seconds if outcome.seconds > 0 else 0.0
    echo(
        f"demo: {total} paths through the hub in {outcome.seconds:.2f} s,"
        f" {rate:.0f} paths/s (snapshot diff and both handlers, results streamed)"
    )
    if outcome.differences:
        echo("replica does NOT match the source:")
        for problem in outcome.differences:
            echo(f"  {problem}")
    else:
        files = count_files(outcome.tree.replica)
        echo(f"replica matches the source: {files} files, same names and contents")
    if outcome.reports:
        for line in where_lines(*outcome.reports):
            echo(line)
