"""``asyncstream hub prune``: delete a job's data, or what is past an age.

Against a running hub (``--hub URL``, over the API, with its key) or against a
database directly (``--db``: a SQLite file or a PostgreSQL DSN). What is deleted
is gone for good.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import anyio
import click
import httpx

from .._config import ENV_API_KEY
from ._extras import missing_modules
from ._hub import ENV_HUB_DB


@click.command()
@click.option("--job", "jobid", default=None, help="Delete this job's data.")
@click.option(
    "--force", is_flag=True, help="With --job: even if a task of it is running."
)
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    default=None,
    help="Delete completed tasks finished more than DAYS days ago, with their"
    " results, and closed input streams created before then.",
)
@click.option("--hub", "hub_url", default=None, help="A running hub's URL.")
@click.option(
    "--api-key",
    envvar=ENV_API_KEY,
    default=None,
    help=f"The --hub's API key (default: ${ENV_API_KEY}).",
)
@click.option(
    "--db",
    default=None,
    help="Or the database itself: a SQLite file or a PostgreSQL DSN"
    f" (default: ${ENV_HUB_DB} when there is no --hub).",
)
def prune(
    jobid: str | None,
    force: bool,
    days: float | None,
    hub_url: str | None,
    api_key: str | None,
    db: str | None,
) -> None:
    """Delete a job's tasks, results and input streams (--job), or everything
    completed longer ago than --older-than DAYS."""
    if (jobid is None) == (days is None):
        raise click.UsageError("give one of --job ID or --older-than DAYS")
    if force and jobid is None:
        raise click.UsageError("--force goes with --job")
    db = db or (None if hub_url else os.environ.get(ENV_HUB_DB))
    if (hub_url is None) == (db is None):
        raise click.UsageError("give one of --hub URL or --db FILE/DSN")
    if hub_url is not None:
        answer = _over_http(hub_url, api_key, jobid, force, days)
    else:
        assert db is not None
        answer = anyio.run(_on_database, db, jobid, force, days)
    what = f"job {jobid}" if jobid is not None else f"older than {days:g} days"
    click.echo(
        f"deleted {answer['tasks']} tasks and {answer['streams']} input streams"
        f" ({what})"
    )


def _over_http(
    url: str, api_key: str | None, jobid: str | None, force: bool, days: float | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Api-Key {api_key}"} if api_key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        try:
            if jobid is not None:
                path = f"/api/jobs/{quote(jobid, safe='')}/"
                response = client.delete(path, params={"force": str(force).lower()})
            else:
                body = {"older_than_days": days}
                response = client.post("/api/retention/prune", json=body)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"hub {url} did not answer: {exc}") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:300]
        raise click.ClickException(f"hub answered {response.status_code}: {detail}")
    answer: dict[str, Any] = response.json()
    return answer


async def _on_database(
    db: str, jobid: str | None, force: bool, days: float | None
) -> dict[str, Any]:
    if missing_modules("hub"):
        raise click.ClickException(
            "--db needs the hub extra: pip install 'asyncstream[hub]'"
        )
    from ..hub._dsn import is_postgres_dsn, redact_dsn
    from ..hub._retention import cutoff
    from ..hub._serve import make_store, store_kind_for
    from ..hub._store import StoreError

    # Opening a missing file would create an empty database: say so instead.
    if not is_postgres_dsn(db) and not await anyio.Path(db).is_file():
        raise click.ClickException(f"no database file {db}")
    store = make_store(store_kind_for(db, None), db, dsn=db)
    await store.open()
    try:
        if jobid is not None:
            report = await store.delete_job(jobid, force=force)
        else:
            assert days is not None
            report = await store.prune(cutoff(days))
    except StoreError as exc:
        where = redact_dsn(db) if is_postgres_dsn(db) else db
        raise click.ClickException(f"{where}: {exc.detail}") from None
    finally:
        await store.close()
    return report.to_json()
