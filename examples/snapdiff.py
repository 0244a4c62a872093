"""The snapshot-diff delete and move handlers, as the examples' Celery app uses them.

Their code is in :mod:`asyncstream.demo.snapdiff` (``asyncstream/demo/snapdiff.py``
in the repository): the package ships it so that ``asyncstream demo`` runs from any
install, and this module re-exports it so that there is one copy to read and
change. Each handler is an ``async def`` of the task glue's shape::

    async def delete_handler(status, *, paths, source_root, replica_root, **fields):
        async for item in expand_paths(paths):     # pages arrive on demand
            ...                                    # delete the replica's copy
            await status.add(state, item)          # "processed" or "skipped"
        return await status.dump()

Run one locally from the repository's root::

    asyncstream run examples.snapdiff:delete_handler \\
        --field source_root=/data/src --field replica_root=/data/replica PATHS...
"""

from __future__ import annotations

from asyncstream.demo.snapdiff import delete_handler, move_handler

__all__ = ["delete_handler", "move_handler"]
