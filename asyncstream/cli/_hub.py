"""``asyncstream hub serve`` and ``asyncstream hub bench``."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import click

from .._config import ENV_API_KEY
from ._extras import needs_extra

# Also in asyncstream.hub._dsn, which needs the hub extra to import.
ENV_HUB_DB = "ASYNCSTREAM_HUB_DB"
ENV_API_KEY_FILE = "ASYNCSTREAM_API_KEY_FILE"

SERVE_EPILOG = f"""\b
The API key, in order of preference:
  --api-key-file FILE  (or ${ENV_API_KEY_FILE}): the key on the first line
  ${ENV_API_KEY}
  --api-key KEY        discouraged: any user can read it in the process list

\b
Exit status: 0 after SIGINT/SIGTERM; 1 when the hub cannot start (the port
is in use, the database is missing its directory or is no SQLite database);
2 for invalid options.
"""


def read_key_file(path: Path) -> str:
    """The API key in ``path``: its first line without surrounding blanks.

    Names the file (never the key) when it is unreadable, empty or the key
    holds a blank or control character, which no HTTP header could carry.
    """
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise click.BadParameter(f"cannot read {path}: {reason}") from None
    lines = text.splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise click.BadParameter(f"{path} holds no key on its first line")
    if any(not ch.isprintable() or ch.isspace() for ch in key):
        raise click.BadParameter(
            f"the key in {path} holds a blank or control character"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        click.echo(
            f"Warning: {path} can be read by other users (chmod 600 {path}).",
            err=True,
        )
    return key


def _choose_key(
    ctx: click.Context, api_key: str | None, key_file: Path | None
) -> str | None:
    if key_file is None:
        if api_key and (
            ctx.get_parameter_source("api_key")
            is click.core.ParameterSource.COMMANDLINE
        ):
            click.echo(
                "Warning: a key given by --api-key shows in the process list;"
                f" use --api-key-file or ${ENV_API_KEY}.",
                err=True,
            )
        return api_key
    if api_key:
        raise click.UsageError(
            f"give the API key one way: --api-key-file (or ${ENV_API_KEY_FILE}),"
            f" or --api-key (or ${ENV_API_KEY}), not both"
        )
    return read_key_file(key_file)


def _exit_despite_store_threads(status: int) -> None:
    """Exit with ``status``, even if a store that failed while opening left its
    driver thread (aiosqlite's, not a daemon) running: the interpreter would
    wait for that thread forever instead of exiting."""
    if any(
        "_connection_worker_thread" in thread.name for thread in threading.enumerate()
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


@click.command(epilog=SERVE_EPILOG)
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
    f" (default: ${ENV_API_KEY}). Prefer --api-key-file: a key given here shows in"
    " the process list. Without a key, only a loopback --host is allowed.",
)
@click.option(
    "--api-key-file",
    envvar=ENV_API_KEY_FILE,
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the API key on its first line"
    f" (default: ${ENV_API_KEY_FILE}).",
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
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds a request has to send its headers; a slower one gets 408 and"
    " its connection is closed. [default: 15]",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds a request has to send its body, plus 1 s per 64 KiB received;"
    " a slower one gets 408. [default: 30]",
)
@click.option(
    "--max-body-bytes-in-flight",
    type=click.IntRange(min=1),
    default=None,
    help="Request-body bytes a hub process holds at once, all requests together; a"
    " body that does not fit within 1 s gets 503 with Retry-After, before it is"
    " read. At least --max-body-bytes. [default: 4 x --max-body-bytes]",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="uvicorn's log level (requests are never logged with credentials).",
)
@needs_extra("hub")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    db: str,
    api_key: str | None,
    api_key_file: Path | None,
    store: str | None,
    workers: int,
    enable_faults: bool,
    max_body_bytes: int | None,
    max_concurrent_ingest: int | None,
    header_timeout: float | None,
    body_timeout: float | None,
    max_body_bytes_in_flight: int | None,
    retain_days: float | None,
    log_level: str,
) -> None:
    """Serve the hub (protocol v1) until interrupted."""
    from ..hub._errors import HubStartupError
    from ..hub._listen import run_server
    from ..hub._serve import store_kind_for, workers_refusal

    api_key = _choose_key(ctx, api_key, api_key_file)
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
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_body_bytes_in_flight=max_body_bytes_in_flight,
            log_level=log_level,
            echo=click.echo,
            retain_days=retain_days,
        )
    except HubStartupError as exc:
        click.echo(f"asyncstream hub serve: {exc}", err=True)
        _exit_despite_store_threads(1)
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
