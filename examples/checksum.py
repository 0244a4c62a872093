"""A plain synchronous custom task: record the size of every file it is given.

It uses the sync shims: ``for`` over ``expand_paths`` and ``status.add()`` work in
an ordinary thread (a Celery worker's), with the asyncio machinery out of sight.
"""

from __future__ import annotations

import os
from typing import Any

from asyncstream.utils.inputs import expand_paths


def file_sizes(status: Any, *, paths: list[Any], **fields: Any) -> dict[str, Any]:
    """Mark each regular file processed with its size; anything else skipped."""
    for item in expand_paths(paths):
        try:
            info = os.stat(item["path"], follow_symlinks=False)
        except OSError as exc:
            status.add("failures", item, message=exc.strerror or str(exc))
            continue
        if os.path.isdir(item["path"]):
            status.add("skipped", item)
        else:
            status.add("processed", {**item, "size": info.st_size})
    result: dict[str, Any] = status.dump()
    return result
