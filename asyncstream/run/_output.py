"""What ``asyncstream run`` and ``asyncstream demo`` print, and how they exit.

The exit statuses are part of the command line's interface (scripts test them),
so they are named here once and quoted in ``--help``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Final

from .._hub_client import url_segment
from .._paths import STATES
from .._spool_dir import default_spool_dir, spool_files
from ._interrupt import EXIT_INTERRUPTED
from ._runner import RunReport

EXIT_OK: Final = 0
EXIT_PATHS_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_ERROR: Final = 3

EXIT_STATUS_HELP: Final = (
    "\b\nExit status:\n"
    f"  {EXIT_OK}  every path was processed or skipped\n"
    f"  {EXIT_PATHS_FAILED}  some paths failed, were aborted, are in progress"
    " or got no result\n"
    f"  {EXIT_USAGE}  usage error: bad MODULE:FUNCTION, missing path, bad option\n"
    f"  {EXIT_ERROR}  the task raised, or the hub could not be started or reached\n"
    f"  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): what was kept and how to resume"
    " is printed"
)

# The port ``asyncstream hub serve`` listens on by default.
SERVE_DEFAULT_URL: Final = "http://127.0.0.1:8000"


def exit_status(report: RunReport) -> int:
    """0 when every path was processed or skipped, else 1."""
    return EXIT_OK if report.ok else EXIT_PATHS_FAILED


def headline(report: RunReport) -> str:
    """One line naming the task, its kind and its ids."""
    return (
        f"task {report.target.spec} ({report.target.kind}): job {report.jobid},"
        f" task id {report.taskid}, queue {report.queue_name}"
    )


def report_lines(
    report: RunReport, *, where: bool = True, kept: bool = True
) -> list[str]:
    """The summary per state, the throughput, and (``where``) where the results are.

    ``kept`` says whether an embedded hub's database outlives the run.
    """
    lines = [headline(report)]
    lines += [f"  {state:<11}{report.summary[state]:>10}" for state in STATES]
    how = (
        f"streamed to the hub in {report.batches}"
        f" batch{'' if report.batches == 1 else 'es'}"
        if report.stream_results
        else "returned in memory, then stored at the hub"
    )
    lines.append(
        f"{report.total} results for {report.fed} paths in {report.seconds:.2f} s:"
        f" {report.rate:.0f} paths/s ({how})"
    )
    if report.unreported:
        lines.append(f"warning: {report.unreported} paths fed got no result")
    if where:
        lines += where_lines(report, kept=kept)
    return lines


def where_lines(*reports: RunReport, kept: bool = True) -> list[str]:
    """Where the hub's results can be read, now and (embedded hub) later.

    An embedded hub's database that is removed with the run's scratch directory
    (``kept`` false) can be read no more: say how to keep it next time.
    """
    hub = reports[0].hub
    if not hub.embedded:
        return [f"results: {r.results_url}" for r in reports]
    if not kept:
        return [
            "the embedded hub's database was removed with the scratch directory:"
            " --keep or --db PATH keeps it for browsing"
        ]
    lines = [
        f"hub database: {hub.db_path}",
        f"browse the results later: {hub.browse_command()}",
    ]
    if len(reports) > 1:
        lines.append(
            f"  then open {SERVE_DEFAULT_URL}/api/jobs/{url_segment(reports[0].jobid)}/"
        )
    lines += [
        f"  then open {SERVE_DEFAULT_URL}/api/tasks/{url_segment(r.taskid)}/results/"
        for r in reports
    ]
    return lines


def interrupted_lines(
    taskid: str,
    *,
    hub_url: str | None,
    db_path: Path | None,
    argv: list[str],
) -> list[str]:
    """What an interrupted run says: where its results are, how to go on."""
    spools = spool_files(taskid)
    lines = [f"interrupted: task {taskid} stopped before its end"]
    if db_path is not None:
        lines.append(f"hub database: {db_path}")
    if spools:
        lines += [f"undelivered results spooled to: {p}" for p in spools]
    else:
        lines.append(
            f"no spool file in {default_spool_dir()}: every result the task"
            " recorded reached the hub"
        )
    lines.append("to resume:")
    target = hub_url
    if db_path is not None:
        target = SERVE_DEFAULT_URL
        command = f"asyncstream hub serve --db {shlex.quote(str(db_path))}"
        lines.append(f"  {command}   # in another terminal")
    for spool in spools:
        lines.append(
            f"  asyncstream resend {shlex.quote(str(spool))}"
            f" --hub {shlex.quote(target or SERVE_DEFAULT_URL)}"
        )
    lines.append(f"  {shlex.join(['asyncstream', *argv])}   # to run the task again")
    return lines
