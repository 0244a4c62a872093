"""``asyncstream resend SPOOLFILE``: deliver results a task could not deliver.

A task whose batches were not acknowledged before its delivery deadline writes
them to a spool file (the path is in its ``DeliveryError``). This command posts
them again under their original idempotency keys — the hub counts each batch
once, whether or not an earlier attempt reached it — and then completes the task
if it had finished. The spool file is removed once everything is delivered,
unless ``--keep`` is given.
"""

from __future__ import annotations

import os

import anyio
import click

from .._config import ENV_API_KEY, ENV_HUB_URL, HubSettings, check_api_key
from .._exceptions import AsyncStreamError
from .._hub_client import HubClient
from .._spool import ResendReport, SpoolFile, read_spool, resend_spool


async def _resend(
    spool: SpoolFile, settings: HubSettings, within: float
) -> ResendReport:
    async with HubClient(settings) as client:
        return await resend_spool(spool, client, delivery_timeout=within)


@click.command()
@click.argument("spool_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--hub",
    "hub_url",
    metavar="URL",
    help=f"Hub to send to (default: the spool file's hub, then ${ENV_HUB_URL}).",
)
@click.option(
    "--api-key",
    metavar="KEY",
    help=f"API key (default: ${ENV_API_KEY}).",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to keep retrying before giving up.",
)
@click.option("--keep", is_flag=True, help="Keep the spool file after success.")
def resend(
    spool_file: str,
    hub_url: str | None,
    api_key: str | None,
    timeout: float,
    keep: bool,
) -> None:
    """Re-send the result batches spooled in SPOOL_FILE, then complete the task."""
    try:
        check_api_key(api_key, "--api-key")
        spool = read_spool(spool_file)
        settings = HubSettings.resolve(
            hub_url=hub_url or os.environ.get(ENV_HUB_URL) or spool.hub_url,
            api_key=api_key,
        )
        report = anyio.run(_resend, spool, settings, timeout)
    except AsyncStreamError as exc:
        raise click.ClickException(str(exc)) from exc
    done = "task completed" if report.completed else "task not completed (it failed)"
    click.echo(
        f"task {spool.taskid}: resent {report.batches} batches ({report.items}"
        f" results, {report.duplicates} already at the hub) to {settings.url};"
        f" {done}"
    )
    for refused in report.refused:
        click.echo(
            f"refused by the hub (batch {refused.seq}, {refused.state}):"
            f" {refused.reason}",
            err=True,
        )
    if not keep:
        os.unlink(spool_file)
