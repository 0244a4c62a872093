"""``asyncstream hub serve`` and ``asyncstream hub bench``."""

from __future__ import annotations

import sys

import click

from .._config import ENV_API_KEY
from ._extras import needs_extra

# Also in asyncstream.hub._dsn, which needs the hub extra to import.
ENV_HUB_DB = "ASYNCSTREAM_HUB_DB"


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option(
    "--port", default=8000, show_default=True, type=int, help="TCP port to listen on."
)
@click.option(
    "--db",
    envvar=ENV_HUB_DB,
    default="hub.sqlite3",
    show_default=True,
    help="The database: a SQLite file (created if missing) or a PostgreSQL DSN"
    f" (postgresql://user@host:5432/db). Default: ${ENV_HUB_DB}; pass a DSN with"
    " a password that way, so it does not show in the process list.",
)
@click.option(
    "--api-key",
    envvar=ENV_API_KEY,
    default=None,
    help=f"Key clients must send as 'Authorization: Api-Key <key>' or 'Bearer <key>'"
    f" (default: ${ENV_API_KEY}). Without one, only a loopback --host is allowed.",
)
@click.option(
    "--store",
    type=click.Choice(["sqlite", "postgres", "memory", "discard"]),
    default=None,
    help="sqlite: durable file; postgres: a PostgreSQL database shared by any"
    " number of hub processes; memory: lost at exit; discard: validate and drop"
    " results (measures the HTTP ingest ceiling). [default: postgres for a DSN,"
    " else sqlite]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Hub processes serving the one port (the postgres store only).",
)
@click.option(
    "--enable-faults",
    is_flag=True,
    help="Enable fault injection driven by POST /api/_faults/ (tests only).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1),
    default=None,
    help="Largest request body accepted; larger ones get 413. [default: 32 MiB]",
)
@click.option(
    "--max-concurrent-ingest",
    type=click.IntRange(min=1),
    default=None,
    help="Ingest requests processed at once; more get 503 with Retry-After."
    " [default: 32]",
)
@click.option(
    "--retain-days",
    type=click.FloatRange(min=0),
    default=None,
    help="Delete completed tasks (with their results) and closed input streams"
    " older than this many days, at start and every hour. [default: keep all]",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="uvicorn's log level (requests are never logged with credentials).",
)
@needs_extra("hub")
def serve(
    host: str,
    port: int,
    db: str,
    api_key: str | None,
    store: str | None,
    workers: int,
    enable_faults: bool,
    max_body_bytes: int | None,
    max_concurrent_ingest: int | None,
    retain_days: float | None,
    log_level: str,
) -> None:
    """Serve the hub (protocol v1) until interrupted."""
    from ..hub._serve import run_server, store_kind_for, workers_refusal

    try:
        refusal = workers_refusal(store_kind_for(db, store), workers)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if refusal is not None:
        click.echo(f"asyncstream hub serve: {refusal}", err=True)
        sys.exit(2)
    try:
        run_server(
            host=host,
            port=port,
            db=db,
            api_key=api_key,
            store=store,
            workers=workers,
            enable_faults=enable_faults,
            max_body_bytes=max_body_bytes,
            max_concurrent_ingest=max_concurrent_ingest,
            log_level=log_level,
            echo=click.echo,
            retain_days=retain_days,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@click.command()
@click.option("--quick", is_flag=True, help="A run of a few seconds (fewer batches).")
@click.option(
    "--batches",
    type=click.IntRange(min=1),
    default=None,
    help="Batches per batch size. [default: 20, or 4 with --quick]",
)
@needs_extra("hub")
def bench(quick: bool, batches: int | None) -> None:
    """Measure hub ingest (results/s over loopback HTTP) against the bare store."""
    from ..hub._bench import run_bench

    run_bench(quick=quick, batches=batches, echo=click.echo)
