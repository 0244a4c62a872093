"""The return payload of a task, as the hub's contract defines it.

Both status classes share :class:`TaskHeader` (what the task was given) and
:func:`build_payload` (what it returns), so the two can never disagree on the shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._exceptions import InvalidInputError
from ._identity import TaskIdentity
from ._paths import STATES, PathObject, State, count_input_paths, normalize_input_paths


def utcnow() -> datetime:
    """The current time, timezone-aware, as every ``started`` stamp must be."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TaskHeader:
    """What a task was called with: the part of the payload fixed at the start."""

    identity: TaskIdentity
    input_paths: list[dict[str, Any]]
    input_total: int
    started: datetime = field(default_factory=utcnow)

    @property
    def taskname(self) -> str:
        """The task's name (``status["task"]`` of the payload)."""
        assert self.identity.taskname is not None
        return self.identity.taskname

    @property
    def jobid(self) -> Any:
        """The job the task belongs to."""
        return self.identity.jobid

    @property
    def queue_name(self) -> str | None:
        """The task's Celery queue."""
        return self.identity.queue_name

    @classmethod
    def build(
        cls,
        taskname: object,
        input_paths: object,
        jobid: object,
        queue_name: object,
        *,
        taskid: str | None = None,
        started: datetime | None = None,
    ) -> TaskHeader:
        """Validate the seed's constructor arguments, naming the first bad one."""
        if not isinstance(taskname, str) or not taskname:
            raise InvalidInputError(
                f"taskname must be a non-empty string, got {taskname!r}"
            )
        if queue_name is not None and not isinstance(queue_name, str):
            raise InvalidInputError(
                f"queue_name must be a string or None, got {queue_name!r}"
            )
        if isinstance(jobid, bool) or not isinstance(jobid, int | str | None):
            raise InvalidInputError(
                f"jobid must be an integer or a string, got {jobid!r}"
            )
        if started is not None and started.tzinfo is None:
            raise InvalidInputError(f"started must be timezone-aware, got {started!r}")
        paths = normalize_input_paths(input_paths)
        return cls(
            identity=TaskIdentity(taskid, queue_name, taskname, jobid),
            input_paths=paths,
            input_total=count_input_paths(paths),
            started=started or utcnow(),
        )


def empty_summary() -> dict[State, int]:
    """A summary with every state present at zero."""
    return dict.fromkeys(STATES, 0)


def build_payload(
    header: TaskHeader,
    *,
    summary: Mapping[State, int],
    details: Mapping[State, Sequence[PathObject]],
    paths: Sequence[PathObject],
    extra_status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the contract payload; every value is JSON-serialisable as is."""
    status: dict[str, Any] = {
        "task": header.taskname,
        "input_paths": [dict(p) for p in header.input_paths],
        "input_total": header.input_total,
        "summary": {state: summary.get(state, 0) for state in STATES},
        "details": {state: list(details.get(state, ())) for state in STATES},
        "started": header.started.isoformat(),
    }
    if extra_status:
        status.update(extra_status)
    return {"jobid": header.jobid, "paths": list(paths), "status": status}
