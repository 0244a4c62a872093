"""asyncstream: an asyncio-native runtime for streaming custom tasks.

Tasks get a job id and a list of paths, act on files, and report one state per
path. ``FileActionStatus`` collects results in memory; ``StreamTaskResults`` sends
them to the hub in bounded batches; ``expand_paths`` streams the input page by page.
"""

from ._context import TaskContext, current_task_context, task_context
from ._exceptions import (
    AsyncStreamError,
    AsyncStreamTimeout,
    BackpressureTimeout,
    ConfigurationError,
    DeliveryError,
    HubError,
    HubProtocolError,
    HubRejectedError,
    HubUnavailableError,
    InvalidInputError,
    InvalidPathError,
    InvalidStateError,
    PathTypeError,
    QueueNameError,
    StreamError,
    StreamIdleTimeout,
    UsageError,
)
from ._paths import STATES, PathObject, State
from ._queue_names import (
    ParsedQueueName,
    get_current_site,
    get_current_task_queue_name,
    get_formatted_queue_name,
)
from .status import FileActionStatus

__version__ = "0.1.0"

__all__ = [
    "AsyncStreamError",
    "AsyncStreamTimeout",
    "BackpressureTimeout",
    "ConfigurationError",
    "DeliveryError",
    "FileActionStatus",
    "HubError",
    "HubProtocolError",
    "HubRejectedError",
    "HubUnavailableError",
    "InvalidInputError",
    "InvalidPathError",
    "InvalidStateError",
    "ParsedQueueName",
    "PathObject",
    "PathTypeError",
    "QueueNameError",
    "STATES",
    "State",
    "StreamError",
    "StreamIdleTimeout",
    "TaskContext",
    "UsageError",
    "current_task_context",
    "get_current_site",
    "get_current_task_queue_name",
    "get_formatted_queue_name",
    "task_context",
]
