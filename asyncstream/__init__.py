"""asyncstream: an asyncio-native runtime for streaming custom tasks.

Tasks get a job id and a list of paths, act on files, and report one state per
path. ``FileActionStatus`` collects results in memory; ``StreamTaskResults`` sends
them to the hub in bounded batches; ``expand_paths`` streams the input page by page.
"""

from ._apply import (
    LOCAL_DISK_CONCURRENCY,
    NETWORK_FS_CONCURRENCY,
    AppliedPaths,
    PathOutcome,
    apply_paths,
)
from ._async_status import AsyncFileActionStatus, async_status_for_task, status_for_task
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
from ._pager import PagePrefetcher, PrefetchStatistics
from ._paths import STATES, PathObject, State
from ._queue_names import (
    ParsedQueueName,
    get_current_site,
    get_current_task_queue_name,
    get_formatted_queue_name,
)
from ._sender_stats import SenderStatistics
from .status import FileActionStatus
from .streamstatus import AsyncStreamTaskResults, DeliveryReport, StreamTaskResults
from .utils.inputs import ExpandedPaths, expand_paths

__version__ = "0.1.0"

__all__ = [
    "AppliedPaths",
    "AsyncFileActionStatus",
    "AsyncStreamError",
    "AsyncStreamTaskResults",
    "AsyncStreamTimeout",
    "BackpressureTimeout",
    "ConfigurationError",
    "DeliveryError",
    "DeliveryReport",
    "ExpandedPaths",
    "FileActionStatus",
    "HubError",
    "HubProtocolError",
    "HubRejectedError",
    "HubUnavailableError",
    "InvalidInputError",
    "InvalidPathError",
    "InvalidStateError",
    "LOCAL_DISK_CONCURRENCY",
    "NETWORK_FS_CONCURRENCY",
    "PagePrefetcher",
    "ParsedQueueName",
    "PathObject",
    "PathOutcome",
    "PathTypeError",
    "PrefetchStatistics",
    "QueueNameError",
    "STATES",
    "SenderStatistics",
    "State",
    "StreamError",
    "StreamIdleTimeout",
    "StreamTaskResults",
    "TaskContext",
    "UsageError",
    "apply_paths",
    "async_status_for_task",
    "current_task_context",
    "expand_paths",
    "get_current_site",
    "get_current_task_queue_name",
    "get_formatted_queue_name",
    "status_for_task",
    "task_context",
]
