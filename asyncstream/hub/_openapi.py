"""What each endpoint answers, for the OpenAPI document only.

The routes return plain dicts (no response model runs on the hot path); these
models and :func:`responses` describe those dicts and every error status a route
can answer, so that a client generator or a schema fuzzer sees the real contract:
errors are always :class:`ErrorBody`, never FastAPI's default validation shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every error: a short code, a message naming the problem, maybe more keys."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(min_length=1, description="A short machine-readable code")
    detail: str = Field(min_length=1, description="What was wrong, for a human")
    field: str | None = Field(
        default=None, description="The offending field or header, when one is"
    )


class StreamOut(BaseModel):
    id: str
    url: str = Field(description="The page endpoint, relative to the hub")
    count: int = Field(ge=0)
    closed: bool


class AppendOut(StreamOut):
    duplicate: bool = Field(
        description="The chunk was already stored at `offset`: nothing appended"
    )


class StreamPage(BaseModel):
    results: list[dict[str, Any]]
    next: str | None = Field(description="null once closed and read to the end")
    count: int = Field(ge=0)
    closed: bool
    ahead: list[str] = Field(
        default_factory=list,
        description="Cursors of the pages after `next` (same page_size, at most 16)"
        " already stored in full: they may be requested at once. Readers that"
        " ignore it read one page after another.",
    )


class BatchAccepted(BaseModel):
    accepted: int = Field(ge=0)
    duplicate: bool


class TaskOut(BaseModel):
    id: str
    jobid: int | str | None
    task: str
    queue: str | None
    state: Literal["running", "completed"]
    summary: dict[str, int]
    batches: int = Field(ge=0)
    started: str
    finished: str | None
    payload: dict[str, Any] | None = Field(
        default=None, description="GET only: the completion payload, or null"
    )


class ResultsPageOut(BaseModel):
    results: list[dict[str, Any]] = Field(
        description='{"state", "path", ...other keys of the path object}'
    )
    next: str | None


class JobOut(BaseModel):
    id: str
    tasks: list[TaskOut]
    summary: dict[str, int]


class ResetOut(BaseModel):
    dropped: int = Field(ge=0)


_ERRORS: dict[int, str] = {
    400: "Malformed JSON, cursor or Idempotency-Key",
    401: "Missing or invalid credentials",
    404: "No such stream, task or job",
    409: "Conflicts with the stored state",
    413: "Request body too large",
    422: "A field, parameter or value is invalid; `field` names it",
    503: "Overloaded: retry after `Retry-After` seconds",
}


def responses(
    ok: type[BaseModel], *errors: int, status: int = 200, **described: str
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: ``ok`` for ``status``, and :class:`ErrorBody`
    for each of ``errors`` (401 and 422 always). ``described`` overrides the
    description of an error status given as ``e409="..."``."""
    result: dict[int | str, dict[str, Any]] = {status: {"model": ok}}
    for code in sorted({401, 422, *errors}):
        result[code] = {
            "model": ErrorBody,
            "description": described.get(f"e{code}", _ERRORS[code]),
        }
    return result
