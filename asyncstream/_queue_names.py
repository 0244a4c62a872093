"""Celery queue names: ``<site>.<queue>#<function>``, e.g. ``london.high#custom``.

The hub's contract warns that the format may change, so every part of asyncstream
formats and parses names here and nowhere else.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Final

from ._config import ENV_QUEUE_NAME, lookup_setting
from ._context import current_task_context
from ._exceptions import ConfigurationError, QueueNameError

_PART: Final = r"[A-Za-z0-9_-]+"
_PART_RE: Final = re.compile(rf"{_PART}\Z")
_QUEUE_RE: Final = re.compile(
    rf"(?P<site>{_PART})\.(?P<queue>{_PART})#(?P<function>{_PART})\Z"
)
# Before hub 2.4 a site had one queue, named "<site>-custom".
_LEGACY_RE: Final = re.compile(rf"(?P<site>{_PART})-custom\Z")
LEGACY_QUEUE: Final = "default"
LEGACY_FUNCTION: Final = "custom"


def _check_part(kind: str, value: object) -> str:
    if not isinstance(value, str) or not _PART_RE.match(value):
        raise QueueNameError(
            f"{kind} name must be letters, digits, '-' or '_', got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class ParsedQueueName:
    """A celery queue name split into ``site``, ``queue`` and ``function``."""

    site: str
    queue: str
    function: str

    def __post_init__(self) -> None:
        _check_part("site", self.site)
        _check_part("queue", self.queue)
        _check_part("function", self.function)

    @classmethod
    def parse(cls, name: str) -> ParsedQueueName:
        """Parse ``site.queue#function`` or the legacy ``site-custom``."""
        if not isinstance(name, str):
            raise QueueNameError(f"queue name must be a string, got {name!r}")
        match = _QUEUE_RE.match(name)
        if match:
            return cls(match["site"], match["queue"], match["function"])
        legacy = _LEGACY_RE.match(name)
        if legacy:
            return cls(legacy["site"], LEGACY_QUEUE, LEGACY_FUNCTION)
        raise QueueNameError(
            f"malformed queue name {name!r}: expected '<site>.<queue>#<function>'"
            " (e.g. 'london.highpriority#custom') or the legacy '<site>-custom'"
        )

    @classmethod
    def current_task_queue(cls) -> ParsedQueueName:
        """The parsed name of the queue the current task is running on."""
        return cls.parse(get_current_task_queue_name())

    def __str__(self) -> str:
        return f"{self.site}.{self.queue}#{self.function}"


def get_formatted_queue_name(site: str, queue: str, function: str) -> str:
    """The celery queue name for ``site``, ``queue`` and ``function``."""
    return str(ParsedQueueName(site, queue, function))


def _celery_queue_name() -> str | None:
    # Only a process that already runs Celery can be inside a Celery task.
    if "celery" not in sys.modules:
        return None
    from celery import current_task

    request = getattr(current_task, "request", None) if current_task else None
    if request is None or getattr(request, "called_directly", True):
        return None
    info = getattr(request, "delivery_info", None) or {}
    name = info.get("queue") or info.get("routing_key")
    return name if isinstance(name, str) and name else None


def get_current_task_queue_name() -> str:
    """The name of the celery queue the current task is running on.

    Looked up in the running Celery task's delivery info, then in the runtime's own
    task context (set by the task glue and the local runner), then in the
    configuration (``ASYNCSTREAM_QUEUE_NAME``).
    """
    name = _celery_queue_name()
    if name is None:
        context = current_task_context()
        name = context.queue_name if context else None
    if name is None:
        name = lookup_setting(ENV_QUEUE_NAME)
    if name is None:
        raise ConfigurationError(
            "no current task queue: not inside a Celery task or an asyncstream task"
            f" context, and {ENV_QUEUE_NAME} is not set"
        )
    return name


def get_current_site() -> str:
    """The name of the site the current task is running on."""
    return ParsedQueueName.current_task_queue().site
