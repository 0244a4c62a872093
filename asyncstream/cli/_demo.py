"""``asyncstream demo``: the snapshot-diff example on the embedded hub."""

from __future__ import annotations

import click

from .._exceptions import AsyncStreamError
from .._run_task import TaskRaisedError
from ..run._output import EXIT_ERROR, EXIT_OK, EXIT_PATHS_FAILED, EXIT_USAGE
from ._run import embedded_db_option, task_failure, traceback_option

DEMO_EXIT_HELP = (
    "\b\nExit status:\n"
    f"  {EXIT_OK}  every path was processed or skipped and the replica matches\n"
    f"  {EXIT_PATHS_FAILED}  some paths failed, or the replica does not match\n"
    f"  {EXIT_USAGE}  usage error\n"
    f"  {EXIT_ERROR}  a handler raised, the hub did not start, or examples/ is"
    " missing"
)


class DemoError(click.ClickException):
    """A handler raised, the hub did not start, or the examples are missing."""

    exit_code = EXIT_ERROR


@click.command(epilog=DEMO_EXIT_HELP)
@click.option(
    "--files",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="How many files the scratch source tree holds.",
)
@embedded_db_option
@click.option("--keep", is_flag=True, help="Keep the scratch tree afterwards.")
@traceback_option
def demo(files: int, db_path: str | None, keep: bool, traceback: bool) -> None:
    """Replay a snapshot diff on a replica with the example handlers.

    Creates a scratch tree of real files (a source and its replica), deletes and
    moves files of the source, computes the snapshot diff, runs the delete and
    move handlers of examples/snapdiff.py on it through an embedded hub with
    streamed results, and checks that the replica matches the source again.
    Runs from a source checkout (scripts/demo).
    """
    from ..demo._run import run_demo

    try:
        outcome = run_demo(files, echo=click.echo, db_path=db_path, keep=keep)
    except (TaskRaisedError, AsyncStreamError) as exc:
        raise task_failure(exc, DemoError, traceback=traceback) from exc
    click.get_current_context().exit(EXIT_OK if outcome.ok else EXIT_PATHS_FAILED)
