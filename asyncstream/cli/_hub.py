"""``asyncstream hub serve`` and ``asyncstream hub bench``."""

from __future__ import annotations

import click

from .._config import ENV_API_KEY
from ._extras import needs_extra


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option(
    "--port", default=8000, show_default=True, type=int, help="TCP port to listen on."
)
@click.option(
    "--db",
    "db_path",
    default="hub.sqlite3",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="SQLite database file of the sqlite store (created if missing).",
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
    type=click.Choice(["sqlite", "memory", "discard"]),
    default="sqlite",
    show_default=True,
    help="sqlite: durable file; memory: lost at exit; discard: validate and drop"
    " results (measures the HTTP ingest ceiling).",
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
    db_path: str,
    api_key: str | None,
    store: str,
    enable_faults: bool,
    max_body_bytes: int | None,
    max_concurrent_ingest: int | None,
    log_level: str,
) -> None:
    """Serve the hub (protocol v1) until interrupted."""
    from ..hub._serve import run_server

    try:
        run_server(
            host=host,
            port=port,
            db_path=db_path,
            api_key=api_key,
            store=store,
            enable_faults=enable_faults,
            max_body_bytes=max_body_bytes,
            max_concurrent_ingest=max_concurrent_ingest,
            log_level=log_level,
            echo=click.echo,
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
