"""``asyncstream load``: many streaming tasks at once against one hub."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._config import ENV_API_KEY, ENV_HUB_URL
from ._extras import needs_source_checkout
from ._hub import ENV_HUB_DB

QUICK = (2, 3, 5_000)
if TYPE_CHECKING:
    from ..bench._load_runner import LoadConfig, LoadOutcome

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@click.command()
@click.option(
    "--url",
    envvar=ENV_HUB_URL,
    default=None,
    help=f"The hub to load (default: ${ENV_HUB_URL}). Without one, a hub is"
    " started in processes of its own on a database made for the run (see"
    " --store) and removed at the end.",
)
@click.option(
    "--store",
    type=click.Choice(["sqlite", "postgres"]),
    default=None,
    help="The store of the hub this command starts: sqlite (a temporary file;"
    " the default) or postgres (a fresh schema on --dsn, dropped at the end).",
)
@click.option(
    "--hub-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes of the hub this command starts (default 1; more than one"
    " needs --store postgres).",
)
@click.option(
    "--dsn",
    envvar=ENV_HUB_DB,
    default=None,
    help=f"The PostgreSQL server for --store postgres (default: ${ENV_HUB_DB},"
    f" else {DEFAULT_DSN}); the run makes a schema of its own there.",
)
@click.option(
    "--copy-baseline",
    is_flag=True,
    help="With --store postgres: also store the single sender's rows by bare"
    " COPY into the same table (one transaction per batch of the sender's size,"
    " no HTTP, no hub) and print the hub's rates against it.",
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
@needs_source_checkout("asyncstream.bench")
def load(
    url: str | None,
    store: str | None,
    hub_workers: int | None,
    dsn: str | None,
    copy_baseline: bool,
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

    Without --url the report names the store and hub processes it started;
    --copy-baseline adds the bare COPY of the single sender's rows on PostgreSQL
    and the hub's rates against it.
    """
    from ..bench._load import LoadShape, figures_json, render_report
    from ..bench._load_runner import LoadConfig, LoadTarget, run_load

    _check_hub_options(url, store, hub_workers, dsn, copy_baseline, no_baseline)
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

    copy_lines: list[str] = []
    document: dict[str, Any] = {}
    if url is None:
        outcome, hub, copy_lines, document = _run_own_hub(
            config, store or "sqlite", hub_workers or 1, dsn, copy_baseline, echo
        )
    else:
        hub = url.rstrip("/")
        outcome = run_load(LoadTarget(hub, api_key), config, echo)
    click.echo(render_report(outcome.baseline, outcome.contention, hub))
    for line in copy_lines:
        click.echo(line)
    if json_path is not None:
        document = {
            "hub": hub,
            **document,
            "single_sender": None
            if outcome.baseline is None
            else figures_json(outcome.baseline),
            "contention": figures_json(outcome.contention),
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    phases = [outcome.contention] + ([outcome.baseline] if outcome.baseline else [])
    if not all(phase.ok for phase in phases):
        raise SystemExit(1)


def _check_hub_options(
    url: str | None,
    store: str | None,
    hub_workers: int | None,
    dsn: str | None,
    copy_baseline: bool,
    no_baseline: bool,
) -> None:
    """Refuse combinations that cannot mean what they say, naming the option."""
    if url is not None:
        if store is not None or hub_workers is not None:
            raise click.UsageError(
                "--store and --hub-workers shape the hub this command starts;"
                " with --url it loads a hub already running"
            )
        if copy_baseline:
            raise click.UsageError(
                "--copy-baseline needs the hub this command starts on"
                " --store postgres (it writes into that run's own schema)"
            )
        return
    if (store or "sqlite") == "sqlite":
        if hub_workers is not None and hub_workers > 1:
            raise click.UsageError(
                f"--hub-workers {hub_workers} needs --store postgres: a SQLite hub"
                " is one process on one database file"
            )
        if copy_baseline:
            raise click.UsageError("--copy-baseline needs --store postgres")
    elif dsn is not None and not dsn.lower().startswith(
        ("postgresql://", "postgres://")
    ):
        raise click.UsageError(
            "--dsn must be a PostgreSQL URI (postgresql://user@host:port/db)"
        )
    if copy_baseline and no_baseline:
        raise click.UsageError(
            "--copy-baseline compares with the single sender: drop --no-baseline"
        )


def _run_own_hub(
    config: LoadConfig,
    store: str,
    workers: int,
    dsn: str | None,
    copy_baseline: bool,
    echo: Callable[[str], None],
) -> tuple[LoadOutcome, str, list[str], dict[str, Any]]:
    """Start a hub for the run, load it, and (if asked) the bare COPY baseline
    into the same schema before it is dropped."""
    import anyio

    from ..bench._load_copy import copy_baseline as run_copy
    from ..bench._load_copy import copy_json, render_copy
    from ..bench._load_runner import own_hub, run_load
    from ..hub._dsn import redact_dsn

    server = (dsn or DEFAULT_DSN) if store == "postgres" else None
    where = "a temporary database" if server is None else redact_dsn(server)
    echo(f"starting a {store} hub, {workers} process(es), on {where} ...")
    lines: list[str] = []
    document: dict[str, Any] = {"store": store, "hub_processes": workers}
    with contextlib.ExitStack() as stack:
        try:
            hub = stack.enter_context(own_hub(store, workers, server))
        except (RuntimeError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from exc
        outcome = run_load(hub.target, config, echo)
        if copy_baseline and hub.dsn is not None and outcome.baseline is not None:
            n = config.shape.results
            echo(f"bare COPY: {n:,} rows ...")
            copy = anyio.run(run_copy, hub.dsn, "copy-baseline-t000", n)
            lines = render_copy(
                copy,
                {
                    "hub single sender": outcome.baseline.rate,
                    "hub contention": outcome.contention.rate,
                },
            )
            document["bare_copy"] = copy_json(copy)
    return outcome, hub.label, lines, document
