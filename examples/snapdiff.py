"""The snapshot-diff delete and move handlers, as the examples' Celery app uses them.

Their code is in :mod:`asyncstream.demo.snapdiff` (``asyncstream/demo/snapdiff.py``
in the repository): the package ships it so that ``asyncstream demo`` runs from any
install, and this module re-exports it so that there is one copy to read and
change. Each handler names the work for one path and hands it to
``apply_paths``, which runs it in worker threads a chunk of paths at a time and
adds each path's state to the status::

    async def delete_handler(status, *, paths, source_root, replica_root, **fields):
        delete = functools.partial(delete_path, source_root=..., replica_root=...)
        await apply_paths(delete, expand_paths(paths), status)
        return await status.dump()

``delete_handler_sync`` and ``move_handler_sync`` are the same for a plain
(synchronous) task body: ``apply_paths(...).run()`` then ``status.dump()``.

Run one locally from the repository's root::

    asyncstream run examples.snapdiff:delete_handler \\
        --field source_root=/data/src --field replica_root=/data/replica PATHS...
"""

from __future__ import annotations

from asyncstream.demo.snapdiff import (
    delete_handler,
    delete_handler_sync,
    delete_path,
    move_handler,
    move_handler_sync,
    move_path,
)

__all__ = [
    "delete_handler",
    "delete_handler_sync",
    "delete_path",
    "move_handler",
    "move_handler_sync",
    "move_path",
]
