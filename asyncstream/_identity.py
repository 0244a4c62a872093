"""Who a task is: one record, with one name per field, for every module.

The seed's names win (``taskname``, ``jobid``, ``queue_name``, ``taskid``); the
wire protocol's own keys (``task``, ``queue`` in a batch body or a spool header)
are spelled only where those documents are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TaskIdentity"]


@dataclass(frozen=True, slots=True)
class TaskIdentity:
    """A task's id at the hub, its Celery queue, its name and its job.

    Each may be unknown (``None``) where it does not matter yet: a
    ``FileActionStatus`` has no task id, a context set by hand may hold only a
    queue. The hub's idempotency key of a result batch is ``<taskid>:<seq>``.
    """

    taskid: str | None = None
    queue_name: str | None = None
    taskname: str | None = None
    jobid: Any = None

    def batch_key(self, seq: int) -> str:
        """The idempotency key the hub deduplicates batch ``seq`` of this task by."""
        return f"{self.taskid}:{seq}"

    def describe(self) -> str:
        """``name (id)`` for messages."""
        return f"{self.taskname or '?'} ({self.taskid or 'no id'})"
