"""What each endpoint takes and answers: the request and response schemas.

The ingest routes parse their raw bodies themselves (see ``_parsing``); the
``*_BODY`` fragments describe those bodies in the OpenAPI document. The small
bodies (:class:`CompleteRequest`, :class:`FaultRequest`) are validated by their
models. The routes return plain dicts (no response model runs on the hot path);
the response models and :func:`responses` describe those dicts and every error
status a route can answer, so that a client generator or a schema fuzzer sees
the real contract: errors are always :class:`ErrorBody`, never FastAPI's default
validation shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)

from .._paths import STATES, is_unicode
from ._json_body import MAX_INT64, MAX_NESTING, find_bad_value

# -- request bodies -------------------------------------------------------------

PATHS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "string", "minLength": 1, "description": 'Short for {"path": s}'},
            {
                "type": "object",
                "required": ["path"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "message": {
                        "anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                },
                "additionalProperties": True,
            },
        ]
    },
}
STREAM_BODY: dict[str, Any] = {
    "requestBody": {
        "description": "Path objects; values inside one nest at most"
        f" {MAX_NESTING} levels, strings are valid Unicode.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"paths": PATHS_SCHEMA}}
            }
        },
    }
}
APPEND_BODY: dict[str, Any] = {
    "requestBody": {
        "description": "Path objects as for creation. With `offset` (the count the"
        " writer expects the stream to hold), the chunk goes there or nowhere: a"
        " retried append whose answer was lost is answered `duplicate: true`, a"
        " writer out of step gets 409 `offset_conflict`.",
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["paths"],
                    "properties": {
                        "paths": PATHS_SCHEMA,
                        "offset": {"type": "integer", "minimum": 0},
                    },
                }
            }
        },
    }
}
BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "description": "Header `Idempotency-Key: <taskid>:<seq>` names the batch;"
        " `seq` must equal its seq. Path objects as for streams.",
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["task", "seq", "items"],
                    "properties": {
                        "jobid": {"type": ["integer", "string", "null"]},
                        "task": {"type": "string"},
                        "queue": {"type": ["string", "null"]},
                        "seq": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_INT64,
                        },
                        "items": {
                            "type": "object",
                            "propertyNames": {"enum": list(STATES)},
                            "additionalProperties": PATHS_SCHEMA,
                        },
                    },
                }
            }
        },
    }
}


class CompleteRequest(BaseModel):
    """Body of ``POST /api/tasks/{taskid}/complete``."""

    # strict: a JSON integer only; lax mode would read false as 0 and complete
    # the task, or "3" as 3.
    batches: int = Field(
        ge=0,
        le=MAX_INT64,
        strict=True,
        description="How many batches (seqs 0..n-1) were sent",
    )
    payload: dict[str, Any] | None = Field(
        default=None,
        description=f"dump() payload; nests at most {MAX_NESTING} levels",
    )
    # The task's identity, as a batch carries it: required (at least `task`)
    # when the task sent no batch, else the hub refuses to create it.
    # Strict: a JSON string or integer as it is, never a number read as text.
    task: StrictStr | None = Field(
        default=None,
        min_length=1,
        description="The task's name: required if the task sent no batch",
    )
    jobid: StrictInt | StrictStr | None = Field(
        default=None, description="The task's job, if it has one"
    )
    queue: StrictStr | None = Field(default=None, description="The task's queue")

    @field_validator("task", "jobid", "queue")
    @classmethod
    def _plain_text(cls, value: int | str | None) -> int | str | None:
        """Names are plain text: no lone surrogate, not even a byte's escape."""
        if isinstance(value, str) and not is_unicode(value):
            raise ValueError(f"{value!r:.80} is not valid Unicode")
        return value

    @field_validator("payload")
    @classmethod
    def _storable(cls, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        """Refuse what would be stored and then fail every read of the task:
        NaN or Infinity, a lone surrogate, nesting past :data:`MAX_NESTING`."""
        problem = find_bad_value(payload, "")
        if problem is not None:
            raise ValueError(problem[1])
        return payload


class FaultRequest(BaseModel):
    """Body of ``POST /api/_faults/``: one ``FaultInjector`` call."""

    fault: Literal["fail_next", "drop_after_commit", "delay", "reset"]
    n: int | None = Field(default=None, ge=1)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float = Field(default=0.05, ge=0)
    seconds: float = Field(default=0.0, ge=0)
    path_prefix: str | None = None


# -- responses --------------------------------------------------------------------


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
        description="Cursors of the pages after `next` (same page_size, at most 32)"
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


class JobListItem(BaseModel):
    id: str
    state: Literal["running", "completed"] = Field(
        description="running while any of its tasks is"
    )
    tasks: int = Field(ge=1, description="How many tasks the job has")
    running: int = Field(ge=0, description="How many of them are running")
    summary: dict[str, int] = Field(description="Summed over its tasks")
    started: str = Field(description="When its first task started")
    finished: str | None = Field(description="When its last task finished")


class _Page(BaseModel):
    count: int = Field(ge=0, description="How many match, over every page")
    next: str | None = Field(description="URL of the next page, or null")
    previous: str | None = Field(description="URL of the previous page, or null")


class TaskListPage(_Page):
    results: list[TaskOut] = Field(description="Newest first (payload not shown)")


class JobListPage(_Page):
    results: list[JobListItem] = Field(description="Newest first")


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
