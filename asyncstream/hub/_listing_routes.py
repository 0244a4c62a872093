"""The listing endpoints: find tasks and jobs without knowing their ids.

Pages are numbered, as the product's own API pages them: ``page`` and
``page_size`` in, ``count``/``next``/``previous``/``results`` out, ``next`` and
``previous`` full URLs or ``null``. Newest first, by when a task started (a job
by when its first task did).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ._context import HubContext
from ._errors import HubHTTPError
from ._schemas import JobListPage, TaskListPage, responses
from ._store import TaskFilter

DEFAULT_LISTING_PAGE_SIZE = 100
MAX_LISTING_PAGE_SIZE = 1000
# Far beyond any real listing, and (page - 1) * page_size stays an int64 offset.
MAX_PAGE = 10**12

StateParam = Literal["running", "completed"]


def page_links(
    request: Request, page: int, page_size: int, count: int
) -> dict[str, str | None]:
    """``next`` and ``previous`` of page ``page``; a page past the last is a 404
    (the first page always exists, empty when nothing matches)."""
    if page > 1 and (page - 1) * page_size >= count:
        last = max(1, -(-count // page_size))
        raise HubHTTPError(
            404,
            "invalid_page",
            f"page {page} is past the last page ({last}) of {count} at"
            f" page_size={page_size}",
            field="page",
        )
    more = page * page_size < count
    return {
        "next": str(request.url.include_query_params(page=page + 1)) if more else None,
        "previous": (
            str(request.url.include_query_params(page=page - 1)) if page > 1 else None
        ),
    }


PageParam = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1 for the first page")]
PageSizeParam = Annotated[int, Query(ge=1, le=MAX_LISTING_PAGE_SIZE)]


def add_listing_routes(router: APIRouter, hub: HubContext) -> None:
    store = hub.store

    @router.get("/api/tasks/", responses=responses(TaskListPage, 404))
    async def list_tasks(
        request: Request,
        jobid: Annotated[
            str | None, Query(min_length=1, description="Tasks of a job")
        ] = None,
        state: Annotated[
            StateParam | None, Query(description="running or completed")
        ] = None,
        task: Annotated[
            str | None, Query(min_length=1, description="A task name")
        ] = None,
        page: PageParam = 1,
        page_size: PageSizeParam = DEFAULT_LISTING_PAGE_SIZE,
    ) -> dict[str, Any]:
        """Tasks, newest first, optionally of one job, state and task name."""
        where = TaskFilter(jobid=jobid, state=state, task=task)
        count, tasks = await store.list_tasks(where, (page - 1) * page_size, page_size)
        links = page_links(request, page, page_size, count)
        return {"count": count, **links, "results": [t.to_json() for t in tasks]}

    @router.get("/api/jobs/", responses=responses(JobListPage, 404))
    async def list_jobs(
        request: Request,
        state: Annotated[
            StateParam | None,
            Query(description="running: a task of it runs; completed: all are done"),
        ] = None,
        page: PageParam = 1,
        page_size: PageSizeParam = DEFAULT_LISTING_PAGE_SIZE,
    ) -> dict[str, Any]:
        """Jobs (the tasks that named one), newest first, each summed over its
        tasks."""
        count, jobs = await store.list_jobs(state, (page - 1) * page_size, page_size)
        links = page_links(request, page, page_size, count)
        return {"count": count, **links, "results": [j.to_json() for j in jobs]}
