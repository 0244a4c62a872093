"""``asyncstream demo``: the snapshot-diff example on the embedded hub."""

from __future__ import annotations

import click

from .._exceptions import AsyncStreamError
from .._run_task import TaskRaisedError
from ..run._output import EXIT_ERROR, EXIT_OK, EXIT_PATHS_FAILED, EXIT_USAGE
from ._extras import needs_extra
from ._run import embedded_db_option, task_failure, traceback_option

DEMO_EXIT_HELP = (
    "\b\nExit status:\n"
    f"  {EXIT_OK}  every path was processed or skipped and the replica matches\n"
    f"  {EXIT_PATHS_FAILED}  some paths failed, or the replica does not match\n"
    f"  {EXIT_USAGE}  usage error, or the hub extra is not installed\n"
    f"  {EXIT_ERROR}  a handler raised, or the hub did not start"
)


class DemoError(click.ClickException):
    """A handler raised, or the hub did not start."""

    exit_code = EXIT_ERROR


@click.command(epilog=DEMO_EXIT_HELP)
@click.option(
    "--files",
    type=click.IntRange(min=1),
    # Enough paths (seven tenths of the files, 35,000) that each task's start,
    # its first page and its final flush do not make the throughput figure: at
    # 20,000 files they cost a third of it. Building the tree takes longest.
    default=50_000,
    show_default=True,
    help="How many files the scratch source tree holds.",
)
@embedded_db_option
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the scratch directory (both trees and the hub's database).",
)
@traceback_option
@needs_extra("hub")
def demo(files: int, db_path: str | None, keep: bool, traceback: bool) -> None:
    """Replay a snapshot diff on a replica with the example handlers.

    Creates a scratch tree of real files (a source and its replica), deletes and
    moves files of the source, computes the snapshot diff, runs the example
    delete and move handlers (asyncstream.demo.snapdiff) on it through an
    embedded hub with streamed results, and checks that the replica matches the
    source again. Runs from any directory; needs the hub extra.
    """
    from ..demo._run import run_demo

    try:
        outcome = run_demo(files, echo=click.echo, db_path=db_path, keep=keep)
    except (TaskRaisedError, AsyncStreamError) as exc:
        raise task_failure(exc, DemoError, traceback=traceback) from exc
    click.get_current_context().exit(EXIT_OK if outcome.ok else EXIT_PATHS_FAILED)
