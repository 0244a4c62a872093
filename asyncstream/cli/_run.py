"""``asyncstream run MODULE:FUNCTION PATHS...``: run a custom task locally.

A thin layer over :mod:`asyncstream.run._runner`: parse and check the arguments (all
usage errors before a hub is started), list the input in a scratch directory, start
or reach the hub, run, print, and remove the scratch directory unless ``--keep``.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from .. import _event_loop
from .._config import ENV_API_KEY, check_api_key
from .._exceptions import AsyncStreamError
from .._run_task import TaskLoadError, TaskRaisedError, TaskTarget, load_task
from ..run._interrupt import EXIT_INTERRUPTED, TaskInterrupt
from ..run._output import (
    EXIT_ERROR,
    EXIT_STATUS_HELP,
    exit_status,
    headline,
    interrupted_lines,
    report_lines,
)
from ..run._runner import DEFAULT_QUEUE, RunReport, new_jobid, run_task
from ._extras import has_extra, require_extra
from ._run_args import (
    STREAM_THRESHOLD,
    RunUsageError,
    parse_fields,
    parse_jobid,
    scratch_directory,
    stream_by_default,
)


class RunError(click.ClickException):
    """The task raised, or the hub could not be started or reached."""

    exit_code = EXIT_ERROR


# Options and failure reporting that ``run`` and ``demo`` share.
embedded_db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="SQLite database of the embedded hub, kept after the run."
    " [default: hub.sqlite3 in the scratch directory, removed unless --keep]",
)
traceback_option = click.option(
    "--traceback", is_flag=True, help="Show the traceback of a failure."
)


def task_failure(
    exc: Exception, error: type[click.ClickException], *, traceback: bool
) -> click.ClickException:
    """The one-line error to exit with, after the traceback if it was asked for."""
    if traceback:
        import traceback as tb

        tb.print_exception(exc.__cause__ or exc)
    return error(str(exc))


def load_target(spec: str) -> TaskTarget:
    """Load the task, with the working directory importable as for ``python -m``."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_task(spec)
    except TaskLoadError as exc:
        raise RunUsageError(str(exc)) from exc


def execute(
    target: TaskTarget,
    args: list[str],
    *,
    scratch: Path,
    hub_url: str | None,
    api_key: str | None,
    db_path: str | Path,
    progress: bool,
    interrupt: TaskInterrupt,
    **options: Any,
) -> RunReport:
    """List the input, start or check the hub, run; errors come out as they are."""
    from ..run._feed import InputListing, as_path_objects, iter_paths
    from ..run._hub import HubLocation, check_hub, embedded_hub

    def on_walk_error(exc: OSError) -> None:
        click.echo(f"warning: skipped unreadable directory: {exc}", err=True)

    # Listed first, so that the task is told how many paths it gets.
    listing = InputListing(scratch / "input-paths")
    listing.write(iter_paths(args, sys.stdin, on_walk_error))
    sources = as_path_objects(listing)

    async def main(location: HubLocation) -> RunReport:
        if not location.embedded:
            await check_hub(location)
        kwargs = {**options, "input_total": listing.count, "interrupt": interrupt}
        if not progress:
            return await run_task(target, sources, location, **kwargs)
        from ..run._progress import RunProgress

        label = f"running {target.spec} ({target.kind}) on {location.url}"
        with RunProgress(label) as bars:
            return await run_task(target, sources, location, observer=bars, **kwargs)

    notice = (
        "interrupted: stopping the task, keeping what it has"
        " (Ctrl-C again to quit at once)"
    )
    if hub_url is not None:
        with interrupt.on_sigint(notice):
            return _event_loop.run(main, HubLocation(hub_url.rstrip("/"), api_key))
    with embedded_hub(db_path) as location, interrupt.on_sigint(notice):
        return _event_loop.run(main, location)


def wants_progress(choice: bool | None) -> bool:
    """``--progress`` as given, else on a terminal when rich is installed."""
    if choice is None:
        return sys.stdout.isatty() and has_extra("hub")
    if choice:
        require_extra("hub", "asyncstream run --progress", otherwise="--no-progress")
    return choice


@click.command(epilog=EXIT_STATUS_HELP)
@click.argument("task_spec", metavar="MODULE:FUNCTION")
@click.argument("paths", nargs=-1, required=True, metavar="PATHS...")
@click.option(
    "--field",
    "field_specs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A workflow field passed to the task; repeatable. VALUE is decoded as"
    " JSON when it is valid JSON (42, true, [1,2]), else taken as a string.",
)
@click.option("--jobid", help="The job id passed to the task. [default: generated]")
@click.option(
    "--queue",
    "queue_name",
    default=DEFAULT_QUEUE,
    show_default=True,
    help="The celery queue name the task sees (get_current_task_queue_name).",
)
@click.option(
    "--stream/--no-stream",
    "stream",
    default=None,
    help="Pass stream_results=True (results go to the hub in batches) or False"
    " (results returned in memory). [default: stream for directories, stdin or"
    f" more than {STREAM_THRESHOLD} paths]",
)
@click.option(
    "--hub",
    "hub_url",
    metavar="URL",
    help="Use this running hub instead of starting an embedded one.",
)
@click.option(
    "--api-key",
    metavar="KEY",
    envvar=ENV_API_KEY,
    help=f"API key of the --hub (default: ${ENV_API_KEY}).",
)
@embedded_db_option
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the scratch directory (the embedded hub's database, the input"
    " listing) and say where it is.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar. [default: when stdout is a terminal]",
)
@traceback_option
def run(
    task_spec: str,
    paths: tuple[str, ...],
    field_specs: tuple[str, ...],
    jobid: str | None,
    queue_name: str,
    stream: bool | None,
    hub_url: str | None,
    api_key: str | None,
    db_path: str | None,
    keep: bool,
    progress: bool | None,
    traceback: bool,
) -> None:
    """Run the custom task MODULE:FUNCTION on PATHS, as a worker of the hub would.

    PATHS are files, directories (walked lazily, files only) or - for paths on
    stdin, one per line. They are made absolute, listed (so that the task's
    input_total is their number), and fed to a hub input stream while the task
    reads it. The task is a plain or async
    function fn(status, *, jobid, paths, **fields), or a Celery task (run
    eagerly, no broker needed). Without --hub, an embedded hub is started (the
    hub extra); its database is removed with the scratch directory at the end
    unless --keep or --db PATH.
    """
    from ..run._feed import check_inputs

    if hub_url is not None and db_path is not None:
        raise RunUsageError("--db is for the embedded hub: leave it out with --hub")
    fields = parse_fields(field_specs)
    try:
        check_api_key(api_key, f"--api-key or ${ENV_API_KEY}")
    except AsyncStreamError as exc:
        raise RunUsageError(str(exc)) from None
    try:
        args = check_inputs(paths)
    except AsyncStreamError as exc:
        raise RunUsageError(f"{exc}: give existing files or directories, or -") from exc
    if hub_url is None:
        require_extra(
            "hub", "asyncstream run's embedded hub", otherwise="give --hub URL"
        )
    show_progress = wants_progress(progress)
    target = load_target(task_spec)
    interrupt = TaskInterrupt()
    taskid = str(uuid.uuid4())
    kept = [keep]
    with scratch_directory(keep=kept) as scratch:
        try:
            report = execute(
                target,
                args,
                scratch=scratch,
                hub_url=hub_url,
                api_key=api_key,
                db_path=db_path or scratch / "hub.sqlite3",
                progress=show_progress,
                interrupt=interrupt,
                taskid=taskid,
                jobid=parse_jobid(jobid) if jobid else new_jobid(),
                stream_results=stream_by_default(paths) if stream is None else stream,
                fields=fields,
                queue_name=queue_name,
            )
        except KeyboardInterrupt:
            if not interrupt.requested:
                raise
            kept[0] = True  # the database and the listing, for resuming
            db = None if hub_url else Path(db_path or scratch / "hub.sqlite3")
            for line in interrupted_lines(
                taskid, hub_url=hub_url, db_path=db, argv=sys.argv[1:]
            ):
                click.echo(line, err=True)
            click.get_current_context().exit(EXIT_INTERRUPTED)
        except (TaskRaisedError, AsyncStreamError) as exc:
            raise task_failure(exc, RunError, traceback=traceback) from exc
        for line in report_lines(report, kept=keep or db_path is not None):
            click.echo(line)
    click.get_current_context().exit(exit_status(report))


__all__ = ["headline", "run"]
