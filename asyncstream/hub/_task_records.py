"""What the hub knows of a task: its identity, its summary, and the listings.

Shared by every store and the routes: :class:`TaskSummary` is a task as the wire
shows it, :class:`TaskFilter` and :class:`JobSummary` what the task and job
listings select and show, with the order both listings follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .._paths import STATES, PathObject


@dataclass(slots=True)
class TaskSummary:
    """A task as ``GET /api/tasks/{taskid}/`` reports it."""

    id: str
    jobid: int | str | None
    task: str
    queue: str | None
    summary: dict[str, int]
    batches: int
    started: str
    finished: str | None = None
    payload: Any = field(default=None, repr=False)

    @property
    def state(self) -> str:
        return "completed" if self.finished is not None else "running"

    def to_json(self, *, with_payload: bool = False) -> dict[str, Any]:
        """The task as the wire shows it; ``with_payload`` adds the completion
        payload (``null`` until the task is complete)."""
        body = {
            "id": self.id,
            "jobid": self.jobid,
            "task": self.task,
            "queue": self.queue,
            "state": self.state,
            "summary": dict(self.summary),
            "batches": self.batches,
            "started": self.started,
            "finished": self.finished,
        }
        if with_payload:
            body["payload"] = self.payload if self.finished is not None else None
        return body


@dataclass(frozen=True, slots=True)
class TaskHeader:
    """Who a task is at the hub: its job, its name and its queue.

    A batch carries it; a completion of a task that sent no batch must carry it
    too, or the hub refuses to create the task
    (see :func:`._store_rules.unknown_task_error`).
    """

    jobid: int | str | None
    task: str
    queue: str | None


TaskState = Literal["running", "completed"]


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks a listing shows: every given field must match."""

    jobid: str | None = None
    state: TaskState | None = None
    task: str | None = None

    def matches(self, task: TaskSummary) -> bool:
        """The same test the SQL stores make in :func:`task_filter_sql`."""
        return (
            (
                self.jobid is None
                or (task.jobid is not None and str(task.jobid) == self.jobid)
            )
            and (self.state is None or task.state == self.state)
            and (self.task is None or task.task == self.task)
        )


@dataclass(slots=True)
class JobSummary:
    """A job as ``GET /api/jobs/`` lists it: its tasks counted and summed."""

    id: str
    tasks: int
    running: int
    summary: dict[str, int]
    started: str
    finished: str | None

    @property
    def state(self) -> TaskState:
        return "running" if self.running else "completed"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "tasks": self.tasks,
            "running": self.running,
            "summary": dict(self.summary),
            "started": self.started,
            "finished": None if self.running else self.finished,
        }


def newest_first(tasks: list[TaskSummary]) -> list[TaskSummary]:
    """Tasks in listing order: latest ``started`` first, ties by id descending."""
    return sorted(tasks, key=lambda t: (t.started, t.id), reverse=True)


def summarise_jobs(tasks: list[TaskSummary]) -> list[JobSummary]:
    """The jobs of ``tasks`` (those with a job id), newest first: a job started
    with its first task; ties by job id descending."""
    jobs: dict[str, JobSummary] = {}
    for task in tasks:
        if task.jobid is None:
            continue
        key = str(task.jobid)
        job = jobs.get(key)
        if job is None:
            job = jobs[key] = JobSummary(key, 0, 0, empty_summary(), task.started, None)
        job.tasks += 1
        job.running += task.finished is None
        job.started = min(job.started, task.started)
        if task.finished is not None:
            job.finished = max(job.finished or task.finished, task.finished)
        for state, n in task.summary.items():
            job.summary[state] = job.summary.get(state, 0) + n
    return sorted(jobs.values(), key=lambda j: (j.started, j.id), reverse=True)


def result_json(state: str, obj: PathObject) -> dict[str, Any]:
    """A stored result as ``GET /api/tasks/{taskid}/results/`` shows it: the path
    object with its ``state``, which wins over a ``state`` key of the object."""
    row = {"state": state, **obj}
    row["state"] = state
    return row


def empty_summary() -> dict[str, int]:
    """A summary with every state present and zero."""
    return dict.fromkeys(STATES, 0)
