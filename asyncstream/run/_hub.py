"""The hub a local run talks to: an embedded one in a child process, or a given URL.

The embedded hub is ``asyncstream hub serve`` in a child process rather than a
server in this process's event loop: on a machine of two cores the hub's JSON and
SQLite work then runs beside the task instead of taking turns with it under one
GIL. Its SQLite database outlives the run, so the results can be browsed later
with ``asyncstream hub serve --db``.
"""

from __future__ import annotations

import secrets
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .._config import HubSettings
from .._exceptions import AsyncStreamError, HubError
from .._hub_client import HubClient, url_segment

HEALTH_TIMEOUT = 3.0


class HubStartError(AsyncStreamError):
    """The embedded hub did not start, or the given hub does not answer."""


@dataclass(frozen=True, slots=True)
class HubLocation:
    """Where the run's hub is; ``db_path`` is set for an embedded hub."""

    url: str
    api_key: str | None = field(repr=False)
    db_path: Path | None = None

    @property
    def settings(self) -> HubSettings:
        """The client settings for this hub."""
        return HubSettings(self.url, self.api_key)

    @property
    def embedded(self) -> bool:
        """True when the run started this hub (it stops with the run)."""
        return self.db_path is not None

    def results_url(self, taskid: str) -> str:
        """Where the task's stored results are read (protocol v1)."""
        return f"{self.url}/api/tasks/{url_segment(taskid)}/results/"

    def browse_command(self) -> str | None:
        """The command that serves an embedded hub's database again, later."""
        if self.db_path is None:
            return None
        return f"asyncstream hub serve --db {shlex.quote(str(self.db_path))}"


@contextmanager
def embedded_hub(db_path: str | Path | None = None) -> Iterator[HubLocation]:
    """Serve a hub on a free loopback port for the duration of the block.

    The database is ``db_path``, or ``hub.sqlite3`` in a new temporary directory
    that is kept afterwards. The hub gets a random API key of its own, so that no
    other local process can write into the run's results.
    """
    from ..hub import HubProcess  # the hub extra, only when needed

    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="asyncstream-run-")) / "hub.sqlite3"
    db = Path(db_path).resolve()
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HubStartError(f"cannot create the hub database {db}: {exc}") from exc
    api_key = secrets.token_urlsafe(24)
    process = HubProcess(db, api_key=api_key)
    try:
        process.start(timeout=30.0)
    except (RuntimeError, TimeoutError) as exc:
        process.kill()
        last = str(exc).strip().splitlines()[-1:] or ["no output"]
        raise HubStartError(
            f"the embedded hub did not start ({last[0]}); full log: {process.log_path}"
        ) from exc
    try:
        yield HubLocation(process.url, api_key, db)
    finally:
        process.stop()
        process.log_path.unlink(missing_ok=True)


async def check_hub(location: HubLocation) -> None:
    """Fail fast, with what to do, when the hub does not answer or refuses the key."""
    async with HubClient(location.settings) as client:
        deadline = client.deadline(HEALTH_TIMEOUT)
        try:
            await client.health(deadline=deadline)
            # Health needs no key; a cheap authenticated call checks the key too.
            await client.get_job("-", deadline=deadline)
        except HubError as exc:
            if exc.status_code == 404:
                return  # authenticated: the job just does not exist
            if exc.status_code in (401, 403):
                raise HubStartError(
                    f"the hub at {location.url} refused the API key: pass --api-key"
                    " or set ASYNCSTREAM_API_KEY"
                ) from exc
            raise HubStartError(
                f"cannot reach the hub at {location.url} ({exc}): start one with"
                " 'asyncstream hub serve', or leave out --hub to use an embedded hub"
            ) from exc
