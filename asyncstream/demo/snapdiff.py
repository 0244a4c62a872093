"""Snapshot-diff handlers: replay deletions and moves of a source tree on a replica.

A snapshot-diff workflow compares two snapshots of a file system and hands the
deleted paths to a *delete handler* and the moved ones to a *move handler*; both
see millions of paths on a big file system, so they read their input with
``expand_paths`` and report with whatever status object they are given (streamed
to the hub when the workflow asks for ``stream_results``).

Paths are paths of the *source*; ``source_root`` and ``replica_root`` (workflow
fields) say where the source and its replica live. A moved path object carries
its old location under ``"from"``.

This is example code, written as a plugin author would write it (public imports
only). It lives in the package so that ``asyncstream demo`` runs it from any
install; ``examples/snapdiff.py`` of the repository re-exports it. Run one
locally: ``asyncstream run asyncstream.demo.snapdiff:delete_handler --field
source_root=... --field replica_root=... PATHS...``; on Celery workers see
``examples/celery_app.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio

from asyncstream.utils.inputs import expand_paths


def _replica_path(path: str, source_root: str, replica_root: str) -> Path:
    relative = Path(path).relative_to(source_root)
    return Path(replica_root) / relative


def _delete(target: Path) -> str:
    if not target.exists() and not target.is_symlink():
        return "skipped"  # already in the desired state
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    else:
        target.unlink()
    return "processed"


def _move(old: Path, new: Path) -> str:
    if not old.exists() and new.exists():
        return "skipped"  # moved already, by an earlier run
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)
    return "processed"


async def delete_handler(
    status: Any, *, paths: list[Any], source_root: str, replica_root: str, **fields: Any
) -> dict[str, Any]:
    """Delete from the replica every path the snapshot diff found deleted."""
    async for item in expand_paths(paths):
        try:
            target = _replica_path(item["path"], source_root, replica_root)
            state = await anyio.to_thread.run_sync(_delete, target)
        except (OSError, ValueError) as exc:
            await status.add("failures", item, message=str(exc))
        else:
            await status.add(state, item)
    result: dict[str, Any] = await status.dump()
    return result


async def move_handler(
    status: Any, *, paths: list[Any], source_root: str, replica_root: str, **fields: Any
) -> dict[str, Any]:
    """Move within the replica every path the snapshot diff found moved."""
    async for item in expand_paths(paths):
        try:
            old = _replica_path(item["from"], source_root, replica_root)
            new = _replica_path(item["path"], source_root, replica_root)
            state = await anyio.to_thread.run_sync(_move, old, new)
        except KeyError:
            await status.add("failures", item, message="moved path has no 'from'")
        except (OSError, ValueError) as exc:
            await status.add("failures", item, message=str(exc))
        else:
            await status.add(state, item)
    result: dict[str, Any] = await status.dump()
    return result
