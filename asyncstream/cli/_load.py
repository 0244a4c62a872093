"""``asyncstream load``: many streaming tasks at once against one hub."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .._config import ENV_API_KEY, ENV_HUB_URL

QUICK = (2, 3, 2_000)


@click.command()
@click.option(
    "--url",
    envvar=ENV_HUB_URL,
    default=None,
    help=f"The hub to load (default: ${ENV_HUB_URL}). Without one, a SQLite hub"
    " is started in a process of its own on a temporary database.",
)
@click.option(
    "--api-key",
    envvar=ENV_API_KEY,
    default=None,
    help=f"The hub's key (default: ${ENV_API_KEY}).",
)
@click.option(
    "-p",
    "--processes",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "-t",
    "--tasks",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Streaming tasks at once in each process.",
)
@click.option(
    "-n",
    "--results",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Results each task streams.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Each task's delivery deadline in seconds (its delivery_timeout).",
)
@click.option(
    "--mode",
    type=click.Choice(["threads", "async"]),
    default="threads",
    show_default=True,
    help="threads: StreamTaskResults in one thread per task, as task threads run"
    " it; async: AsyncStreamTaskResults, every task in one event loop.",
)
@click.option(
    "--nice",
    type=click.IntRange(0, 19),
    default=10,
    show_default=True,
    help="Niceness of the worker processes. On the hub's own machine, workers at"
    " the hub's priority take the CPU it needs to serve them, which clients on"
    " other machines would not; 0 runs them at the priority of this command.",
)
@click.option(
    "--no-baseline", is_flag=True, help="Skip the single-sender phase (no ratio)."
)
@click.option(
    "--quick",
    is_flag=True,
    help=f"A smoke run of {QUICK[0]} x {QUICK[1]} x {QUICK[2]:,} (its figures mean"
    " little).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the figures of both phases to this file.",
)
def load(
    url: str | None,
    api_key: str | None,
    processes: int,
    tasks: int,
    results: int,
    deadline: float,
    mode: str,
    nice: int,
    no_baseline: bool,
    quick: bool,
    json_path: Path | None,
) -> None:
    """Stream from PROCESSES x TASKS tasks of RESULTS results each into one hub.

    First one task alone (the single-sender rate), then all at once. Reports
    failed tasks, whether every task's results are stored exactly once (from
    the hub's own task summaries), the hub's 503 count (from its /metrics),
    results/s and its ratio to the single sender, and the slowest task against
    the median. Exits with status 1 unless every task finished exactly once.
    """
    from ..bench._load import LoadShape, figures_json, render_report
    from ..bench._load_runner import (
        LoadConfig,
        LoadTarget,
        own_sqlite_hub,
        run_load,
    )

    if quick:
        processes, tasks, results = QUICK
    config = LoadConfig(
        LoadShape(processes, tasks, results),
        deadline=deadline,
        mode=mode,
        baseline=not no_baseline,
        nice=nice,
    )

    def echo(text: str) -> None:
        click.echo(text, err=True)

    if url is None:
        echo("starting a SQLite hub on a temporary database ...")
        with own_sqlite_hub() as target:
            outcome = run_load(target, config, echo)
    else:
        outcome = run_load(LoadTarget(url.rstrip("/"), api_key), config, echo)
    click.echo(render_report(outcome.baseline, outcome.contention))
    if json_path is not None:
        document = {
            "single_sender": None
            if outcome.baseline is None
            else figures_json(outcome.baseline),
            "contention": figures_json(outcome.contention),
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    phases = [outcome.contention] + ([outcome.baseline] if outcome.baseline else [])
    if not all(phase.ok for phase in phases):
        raise SystemExit(1)
