"""The client side of hub protocol v1: one method per endpoint.

Every request the runtime sends to a hub goes through :class:`HubClient`; the
connection under it (:mod:`._hub_connection`) retries and translates errors.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ._batch_body import encode_value
from ._deadline import Deadline
from ._exceptions import HubProtocolError
from ._hub_answers import check_response, encode_json, expect_dict, parse_retry_after
from ._hub_connection import HubConnection
from ._hub_pools import DEFAULT_TIMEOUT
from ._identity import TaskIdentity
from ._retry import OnRetry
from ._stream_page import page_query

__all__ = [
    "DEFAULT_TIMEOUT",
    "HubClient",
    "check_response",
    "encode_json",
    "idempotency_key",
    "parse_retry_after",
    "url_segment",
]


# What an id keeps as is in an Idempotency-Key header: printable ASCII but "%".
_HEADER_SAFE = "".join(
    c for c in string.printable if c not in "%" and c not in string.whitespace
)


def url_segment(value: Any) -> str:
    """``value`` as one percent-encoded path segment of a hub URL.

    An id is data, not a path: "/", "?", "#", "%" and non-ASCII are encoded, and
    so are the dots of "." and "..", which a URL would otherwise resolve as
    directories (an id of "../../health" must not reach ``/health``). The hub
    decodes the segment back to the id.
    """
    segment = quote(str(value), safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return segment


def idempotency_key(taskid: str, seq: int) -> str:
    """The header ``<taskid>:<seq>``, with what a header cannot carry encoded.

    Plain ASCII ids (a Celery UUID) go as they are; "%", spaces, controls and
    non-ASCII are percent-encoded, and the hub compares the decoded id.
    """
    return f"{_header_id(taskid)}:{seq}"


@functools.lru_cache(maxsize=256)
def _header_id(taskid: str) -> str:
    # A sender keys every batch of its task with the same id: quoted once.
    return quote(taskid, safe=_HEADER_SAFE)


@functools.lru_cache(maxsize=256)
def _results_url(taskid: str) -> str:
    return f"/api/tasks/{url_segment(taskid)}/results/"


class HubClient(HubConnection):
    """A connection to one hub, speaking protocol v1 (see :class:`HubConnection`
    for what it takes)."""

    # -- results -----------------------------------------------------------------

    async def post_results(
        self,
        taskid: str,
        seq: int,
        body: bytes,
        *,
        deadline: Deadline | None = None,
        on_retry: OnRetry | None = None,
    ) -> dict[str, Any]:
        """Post one encoded result batch under the key ``<taskid>:<seq>``."""
        answer = await self.request(
            "POST",
            _results_url(taskid),
            content=body,
            headers={"Idempotency-Key": idempotency_key(taskid, seq)},
            deadline=deadline,
            on_retry=on_retry,
        )
        return expect_dict(answer, "results batch")

    async def complete_task(
        self,
        taskid: str,
        batches: int,
        payload: Mapping[str, Any],
        *,
        identity: TaskIdentity | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """Tell the hub the task sent ``batches`` batches and ended with ``payload``.

        ``identity`` (its name, job and queue) goes with it: the hub needs it to
        record a task that sent no batch, and refuses such a completion without.
        """
        body: dict[str, Any] = {"batches": batches, "payload": payload}
        if identity is not None and identity.taskname:
            body.update(
                task=identity.taskname, jobid=identity.jobid, queue=identity.queue_name
            )
        answer = await self.request(
            "POST",
            f"/api/tasks/{url_segment(taskid)}/complete",
            content=encode_json(body),
            deadline=deadline,
        )
        return expect_dict(answer, "task completion")

    async def reset_task(
        self, taskid: str, *, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """Drop the batches of an unfinished earlier run of the task (extension).

        The hub answers 409 once the task is completed: a reset never undoes one.
        """
        answer = await self.request(
            "POST",
            f"/api/tasks/{url_segment(taskid)}/reset",
            content=b"{}",
            deadline=deadline,
        )
        return expect_dict(answer, "task reset")

    # -- reading ---------------------------------------------------------------

    async def health(self, *, deadline: Deadline | None = None) -> dict[str, Any]:
        """The hub's liveness answer; needs no key."""
        answer = await self.request("GET", "/api/health/", deadline=deadline)
        return expect_dict(answer, "health")

    async def get_task(
        self, taskid: str, *, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """The hub's summary of a task (and its payload once completed)."""
        answer = await self.request(
            "GET", f"/api/tasks/{url_segment(taskid)}/", deadline=deadline
        )
        return expect_dict(answer, "task")

    async def get_job(
        self, jobid: Any, *, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """The hub's summary of a job, summed over its tasks."""
        answer = await self.request(
            "GET", f"/api/jobs/{url_segment(jobid)}/", deadline=deadline
        )
        return expect_dict(answer, "job")

    async def list_tasks(
        self, *, deadline: Deadline | None = None, **filters: Any
    ) -> dict[str, Any]:
        """One page of the hub's task listing (``count``/``next``/``results``).

        ``filters`` become query parameters (a job, a state, a task name, a page);
        ``None`` values are left out.
        """
        return await self._listing("/api/tasks/", filters, deadline)

    async def list_jobs(
        self, *, deadline: Deadline | None = None, **filters: Any
    ) -> dict[str, Any]:
        """One page of the hub's job listing; see :meth:`list_tasks`."""
        return await self._listing("/api/jobs/", filters, deadline)

    async def get_results(
        self,
        taskid: str,
        *,
        state: str | None = None,
        cursor: str | None = None,
        page_size: int | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """One page of a task's stored results (``results`` and ``next``)."""
        params = {"state": state, "cursor": cursor, "page_size": page_size}
        return await self._listing(
            f"/api/tasks/{url_segment(taskid)}/results/", params, deadline
        )

    async def _listing(
        self, url: str, params: Mapping[str, Any], deadline: Deadline | None
    ) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v is not None}
        answer = expect_dict(
            await self.request("GET", url, params=query, deadline=deadline), url
        )
        if not isinstance(answer.get("results"), list):
            raise HubProtocolError(f"GET {url}: the answer has no 'results' list")
        return answer

    # -- input streams -----------------------------------------------------------

    async def create_stream(
        self, paths: list[Any] | None = None, *, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """Create an input stream, optionally with a first chunk of paths."""
        body = {"paths": paths} if paths is not None else {}
        answer = await self.request(
            "POST", "/api/streams/", content=encode_value(body), deadline=deadline
        )
        return expect_dict(answer, "stream")

    async def append_stream(
        self,
        stream_id: str,
        paths: list[Any],
        *,
        offset: int | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """Append a chunk of paths to an open stream.

        Pass ``offset`` (how many paths the stream holds before this chunk) to make
        the append safe to retry: the hub stores the chunk once, even when an
        answer is lost and the request is sent again.
        """
        body: dict[str, Any] = {"paths": paths}
        if offset is not None:
            body["offset"] = offset
        # orjson, as result batches are: a chunk holds up to thousands of paths.
        answer = await self.request(
            "POST",
            f"/api/streams/{url_segment(stream_id)}/paths/",
            content=encode_value(body),
            deadline=deadline,
        )
        return expect_dict(answer, "stream append")

    async def close_stream(
        self, stream_id: str, *, deadline: Deadline | None = None
    ) -> dict[str, Any]:
        """Mark a stream complete: readers finish once they have read it all."""
        answer = await self.request(
            "POST",
            f"/api/streams/{url_segment(stream_id)}/close",
            content=b"{}",
            deadline=deadline,
        )
        return expect_dict(answer, "stream close")

    async def get_page(
        self,
        url: str,
        *,
        cursor: str | None,
        page_size: int,
        wait: float | None = None,
        deadline: Deadline | None = None,
        on_retry: OnRetry | None = None,
    ) -> dict[str, Any]:
        """Read one page of a stream at ``url`` (a stream reference's ``stream``)."""
        params = page_query(cursor, page_size, wait)
        answer = await self.request(
            "GET", url, params=params, deadline=deadline, on_retry=on_retry
        )
        page = expect_dict(answer, "stream page")
        if not isinstance(page.get("results"), list):
            raise HubProtocolError(f"stream page from {url} has no 'results' list")
        return page
