"""``FileActionStatus``: collect per-path results in memory and dump the payload.

The seed's ``arcapix.dynamo.server.status`` becomes ``asyncstream.status``.
Use it for tasks whose inputs fit in memory; for millions of paths use
:class:`asyncstream.streamstatus.StreamTaskResults`, which has the same interface.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ._exceptions import InvalidInputError, UsageError
from ._paths import (
    FORWARDED_STATES,
    STATES,
    PathObject,
    State,
    check_state,
    to_path_object,
)
from ._payload import TaskHeader, build_payload, empty_summary

__all__ = ["FileActionStatus"]


class FileActionStatus:
    """Track the state of every path a task acted on and build its return payload.

    >>> status = FileActionStatus("my-plugin", ["/data/a"], 100, "london.q#custom")
    >>> status.add("processed", "/data/a")
    >>> status.dump()["status"]["summary"]["processed"]
    1
    """

    def __init__(
        self,
        taskname: str,
        input_paths: list[Any],
        jobid: Any,
        queue_name: str | None,
        *,
        started: datetime | None = None,
    ) -> None:
        self._header = TaskHeader.build(
            taskname, input_paths, jobid, queue_name, started=started
        )
        self._details: dict[State, list[PathObject]] = {state: [] for state in STATES}
        # The next task's input, in the order the paths were added.
        self._forwarded: list[PathObject] = []
        self._dumped = False

    @property
    def header(self) -> TaskHeader:
        """What the task was called with."""
        return self._header

    @property
    def dumped(self) -> bool:
        """True once :meth:`dump` was called: the status takes no more results."""
        return self._dumped

    @property
    def summary(self) -> dict[State, int]:
        """How many paths were added per state so far."""
        summary = empty_summary()
        for state, items in self._details.items():
            summary[state] = len(items)
        return summary

    def _on_loop_thread(self) -> FileActionStatus:
        """What ``apply_paths(...).run()`` adds to on the event-loop thread while
        this one waits: this status itself, which only fills memory (asked only
        when its own ``add`` and ``add_many`` are the ones called)."""
        return self

    def add(self, key: str, path: str | PathObject, *, message: Any = None) -> None:
        """Record that ``path`` ended in state ``key``.

        ``path`` is a path string or a path object; ``message`` (a string or a list
        of strings) says why, typically for ``failures``. A rejected call changes
        nothing already recorded.
        """
        if self._dumped:
            raise UsageError(
                f"add({key!r}, {path!r}) after dump(): {self!r} is already complete"
            )
        state = check_state(key)
        obj = to_path_object(path, message=message)
        self._details[state].append(obj)
        if state in FORWARDED_STATES:
            self._forwarded.append(obj)

    def add_many(self, key: str, items: Iterable[str | PathObject]) -> None:
        """Record that every path of ``items`` ended in state ``key``.

        Like ``add(key, item)`` for each item. An invalid item raises naming its
        index: the items before it are recorded, it and those after are not.
        """
        if self._dumped:
            raise UsageError(f"add_many({key!r}, ...) after dump(): {self!r}")
        state = check_state(key)
        objs = self._details[state]
        forwarded = self._forwarded if state in FORWARDED_STATES else None
        for index, item in enumerate(items):
            try:
                obj = to_path_object(item)
            except InvalidInputError as exc:
                raise type(exc)(f"items[{index}]: {exc}") from None
            objs.append(obj)
            if forwarded is not None:
                forwarded.append(obj)

    def dump(self) -> dict[str, Any]:
        """Return the contract payload. Later calls return an equal payload."""
        self._dumped = True
        return build_payload(
            self._header,
            summary=self.summary,
            details=self._details,
            paths=self._forwarded,
        )

    def __repr__(self) -> str:
        counts = " ".join(f"{s}={n}" for s, n in self.summary.items() if n)
        state = "dumped" if self._dumped else "open"
        return (
            f"<FileActionStatus task={self._header.taskname!r}"
            f" jobid={self._header.jobid!r} {state} {counts or 'empty'}>"
        )
