"""Snapshot-diff handlers: replay deletions and moves of a source tree on a replica.

A snapshot-diff workflow compares two snapshots of a file system and hands the
deleted paths to a *delete handler* and the moved ones to a *move handler*; both
see millions of paths on a big file system, so they read their input with
``expand_paths`` and report with whatever status object they are given (streamed
to the hub when the workflow asks for ``stream_results``).

Paths are paths of the *source*; ``source_root`` and ``replica_root`` (workflow
fields) say where the source and its replica live. A moved path object carries
its old location under ``"from"``.

Each handler names the work for one path (:func:`delete_path`, :func:`move_path`,
plain blocking functions) and hands it to ``apply_paths``, which runs it in worker
threads a chunk of paths at a time and adds each path's state to the status: the
file system, not the runtime, sets the pace. ``delete_handler`` and
``move_handler`` are the ``async def`` faces, ``*_sync`` the plain ones for a
synchronous task body; both run the same per-path functions the same way.

This is example code, written as a plugin author would write it (public imports
only). It lives in the package so that ``asyncstream demo`` runs it from any
install; ``examples/snapdiff.py`` of the repository re-exports it. Run one
locally: ``asyncstream run asyncstream.demo.snapdiff:delete_handler --field
source_root=... --field replica_root=... PATHS...``; on Celery workers see
``examples/celery_app.py``.
"""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any

from asyncstream import PathOutcome, apply_paths
from asyncstream.utils.inputs import expand_paths


def _check_roots(source_root: str, replica_root: str) -> None:
    """Raise unless both roots are absolute paths; a handler asks first.

    An empty replica root would turn ``/data/x`` into ``/x`` of the worker's
    machine, a relative one into a path under whatever directory the worker
    runs in: refused before any path is touched.
    """
    for name, root in (("source_root", source_root), ("replica_root", replica_root)):
        if not isinstance(root, str) or not root.startswith("/"):
            raise ValueError(f"{name} must be an absolute path, got {root!r}")


def _replica_path(path: str, source_root: str, replica_root: str) -> str:
    root = source_root.rstrip("/")
    if not path.startswith(root + "/"):
        raise ValueError(f"{path!r} is not under the source root {source_root!r}")
    # The paths come from the hub, not from a walk of the tree: "source/" would
    # name the whole replica and "source/../x" a file beside it, so a path must
    # be the source root followed by names only.
    # Checked as text, once per path: "/x/" holds "//", "/./" or "/../" exactly
    # when x has an empty, '.' or '..' name (a third of the cost of a split).
    rest = path[len(root) :] + "/"
    if "//" in rest or "/./" in rest or "/../" in rest:
        raise ValueError(
            f"{path!r} is not a path under the source root {source_root!r}:"
            " an empty, '.' or '..' component"
        )
    return replica_root.rstrip("/") + path[len(root) :]


def delete_path(item: dict[str, Any], *, source_root: str, replica_root: str) -> str:
    """Delete the replica's copy of a deleted path (a directory as a whole)."""
    target = _replica_path(item["path"], source_root, replica_root)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return "skipped"  # already in the desired state
    except (IsADirectoryError, PermissionError):
        # A directory: EISDIR on Linux, EPERM elsewhere.
        if not os.path.isdir(target) or os.path.islink(target):
            raise
        shutil.rmtree(target, onerror=_gone_is_fine)
    return "processed"


def _gone_is_fine(function: Any, path: str, exc_info: Any) -> None:
    # Paths are deleted concurrently: a file inside a directory being removed as
    # a whole may be deleted under rmtree's feet, by its own path's deletion.
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def move_path(
    item: dict[str, Any], *, source_root: str, replica_root: str
) -> str | PathOutcome:
    """Move the replica's copy of a moved path from its old place (``"from"``)."""
    old_path = item.get("from")
    if not isinstance(old_path, str):
        return PathOutcome("failures", item, "moved path has no 'from'")
    old = _replica_path(old_path, source_root, replica_root)
    new = _replica_path(item["path"], source_root, replica_root)
    try:
        os.rename(old, new)
    except FileNotFoundError:
        if not os.path.lexists(old):
            if os.path.lexists(new):
                return "skipped"  # moved already, by an earlier run
            raise
        os.makedirs(os.path.dirname(new), exist_ok=True)
        os.rename(old, new)
    return "processed"


async def delete_handler(
    status: Any, *, paths: list[Any], source_root: str, replica_root: str, **fields: Any
) -> dict[str, Any]:
    """Delete from the replica every path the snapshot diff found deleted."""
    _check_roots(source_root, replica_root)
    delete = functools.partial(
        delete_path, source_root=source_root, replica_root=replica_root
    )
    await apply_paths(delete, expand_paths(paths), status)
    result: dict[str, Any] = await status.dump()
    return result


async def move_handler(
    status: Any, *, paths: list[Any], source_root: str, replica_root: str, **fields: Any
) -> dict[str, Any]:
    """Move within the replica every path the snapshot diff found moved."""
    _check_roots(source_root, replica_root)
    move = functools.partial(
        move_path, source_root=source_root, replica_root=replica_root
    )
    await apply_paths(move, expand_paths(paths), status)
    result: dict[str, Any] = await status.dump()
    return result


def delete_handler_sync(
    status: Any, *, paths: list[Any], source_root: str, replica_root: str, **fields: Any
) -> dict[str, Any]:
    """:func:`delete_handler` for a plain (synchronous) task body."""
    _check_roots(source_root, replica_root)
    delete = functools.partial(
        delete_path, source_root=source_root, replica_root=replica_root
    )
    apply_paths(delete, expand_paths(paths), status).run()
    result: dict[str, Any] = status.dump()
    return result


def move_handler_sync(
    status: Any, *, paths: list[Any], source_root: str, replica_root: str, **fields: Any
) -> dict[str, Any]:
    """:func:`move_handler` for a plain (synchronous) task body."""
    _check_roots(source_root, replica_root)
    move = functools.partial(
        move_path, source_root=source_root, replica_root=replica_root
    )
    apply_paths(move, expand_paths(paths), status).run()
    result: dict[str, Any] = status.dump()
    return result
