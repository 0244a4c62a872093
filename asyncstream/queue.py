"""Queue helpers, as the seed's ``arcapix.dynamo.server.queue`` offers them."""

from ._queue_names import (
    ParsedQueueName,
    get_current_site,
    get_current_task_queue_name,
    get_formatted_queue_name,
)

__all__ = [
    "ParsedQueueName",
    "get_current_site",
    "get_current_task_queue_name",
    "get_formatted_queue_name",
]
