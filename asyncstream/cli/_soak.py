"""``asyncstream soak``: chaos rounds against a hub process, checking every result.

A tool for testing asyncstream itself: it runs from a source checkout (the wheel
leaves :mod:`asyncstream.soak` out) and says so when it is missing.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from ._extras import needs_source_checkout


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind like Ctrl-C, so that the hub process is killed on the way out.
    raise KeyboardInterrupt


@click.command()
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Start rounds until this many seconds have passed. [default: 60; with"
    " --quick: one round of each fault kind]",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Small rounds, one featuring each fault kind (~15 s): a check for CI.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the chaos."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every round's figures and every violation to this file.",
)
@click.option(
    "--verbose", is_flag=True, help="Show the library's warnings (retries, spools)."
)
@needs_source_checkout("asyncstream.soak")
def soak(
    duration: float | None,
    quick: bool,
    seed: int,
    json_path: Path | None,
    verbose: bool,
) -> None:
    """Hunt for lost or duplicated results under faults and hub restarts.

    Runs rounds against a hub process on loopback (SQLite, faults enabled): a
    stream is produced while tasks (sync and async) read it and stream their
    results, while 503 bursts, dropped acknowledgements, slow answers, SIGKILL
    and restart of the hub, and outages past the delivery deadline (then a
    resend of the spool) hit them. After each round every task is checked at
    the hub: each path exactly once with its state, summary as added, task
    complete. Prints a line per round and a verdict; exits with status 1 if any
    result was lost, duplicated or wrong, naming the task and the path.
    """
    from ..soak import SoakConfig, run_soak

    logger = logging.getLogger("asyncstream")
    if not verbose:
        # Retries and spooled batches are the point of a soak, not news.
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    if quick:
        config = SoakConfig.for_quick(seed, duration)
    else:
        config = SoakConfig(seed=seed, duration=60.0 if duration is None else duration)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        result = run_soak(config, echo=click.echo)
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(result.verdict())
    for violation in result.violations:
        click.echo(f"  {violation}")
    if json_path is not None:
        json_path.write_text(json.dumps(result.as_json(), indent=2) + "\n")
    if not result.ok:
        sys.exit(1)


if __name__ == "__main__":
    soak()
