"""The retention endpoints: delete a job's data, prune what is past an age.

Both need the API key like every other route (the router carries the check),
and both delete for good: there is no undo.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ._context import HubContext
from ._errors import HubHTTPError
from ._retention import cutoff
from ._schemas import responses
from ._store import JobRunningError


class DeletedOut(BaseModel):
    tasks: int = Field(ge=0, description="Tasks deleted, with their results")
    streams: int = Field(ge=0, description="Input streams deleted")


class PruneRequest(BaseModel):
    # Strict: a JSON number only; lax mode would read false as 0 and prune all.
    older_than_days: float = Field(
        ge=0,
        le=36_500,  # a century: beyond it the cutoff is before any date
        strict=True,
        allow_inf_nan=False,
        description="Delete completed tasks finished longer ago than this",
    )


class PrunedOut(DeletedOut):
    before: str = Field(description="The cutoff: what ended before it went")


def add_retention_routes(router: APIRouter, hub: HubContext) -> None:
    store = hub.store

    @router.delete(
        "/api/jobs/{jobid}/",
        responses=responses(
            DeletedOut, 404, 409, e409="A task of the job is running (`job_running`)"
        ),
    )
    async def delete_job(
        jobid: str,
        force: bool = Query(False, description="Delete even if a task is running"),
    ) -> dict[str, Any]:
        """Delete every task of a job, its results and the input streams its
        tasks' payloads name. A job with a running task is 409 unless ``force``:
        the task's next batch would start a new, partial record of it."""
        try:
            report = await store.delete_job(jobid, force=force)
        except JobRunningError as exc:
            raise HubHTTPError(409, exc.code, exc.detail, **exc.extra) from None
        return report.to_json()

    @router.post("/api/retention/prune", responses=responses(PrunedOut, 400))
    async def prune(body: PruneRequest) -> dict[str, Any]:
        """Delete the completed tasks that finished more than ``older_than_days``
        ago (with their results), and the closed input streams created before."""
        before = cutoff(body.older_than_days)
        return {**(await store.prune(before)).to_json(), "before": before}
