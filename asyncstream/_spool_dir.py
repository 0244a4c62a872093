"""Where spool files go, and keeping that place private.

``$ASYNCSTREAM_SPOOL_DIR``, else the user's cache directory, else a directory of
the user's own under the system's temporary directory. Directories made here are
0700 (spool files hold paths and messages other users should not read); the
shared fallback is used only when it is this user's and closed to others.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = [
    "ENV_SPOOL_DIR",
    "default_spool_dir",
    "private_spool_dir",
    "spool_files",
    "spool_name",
]

ENV_SPOOL_DIR: Final = "ASYNCSTREAM_SPOOL_DIR"


def default_spool_dir() -> Path:
    """``$ASYNCSTREAM_SPOOL_DIR``, else the user's cache directory, else tmp."""
    configured = os.environ.get(ENV_SPOOL_DIR)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    if os.path.isdir(cache) and os.access(cache, os.W_OK):
        return Path(cache) / "asyncstream" / "spool"
    return _shared_fallback()


def _shared_fallback() -> Path:
    return Path(tempfile.gettempdir()) / f"asyncstream-spool-{os.getuid()}"


def private_spool_dir(folder: Path) -> Path:
    """Make ``folder`` (and its missing parents) 0700; check the tmp fallback.

    Spool files hold results (paths, messages) that other users of the machine
    should not read. In a shared directory such as ``/tmp`` anyone could have made
    the fallback directory first, to read or swap what is spooled there: it is
    used only if it is a real directory of this user that nobody else may write.
    """
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    if folder == _shared_fallback():
        info = os.lstat(folder)
        if (
            not stat.S_ISDIR(info.st_mode)
            or info.st_uid != os.getuid()
            or info.st_mode & 0o022
        ):
            raise PermissionError(
                errno.EACCES,
                "refusing the shared spool directory: it is not a directory of"
                f" this user (uid {os.getuid()}) closed to others (owner uid"
                f" {info.st_uid}, mode {stat.filemode(info.st_mode)}); set"
                f" {ENV_SPOOL_DIR} to a private directory",
                str(folder),
            )
        if info.st_mode & 0o077:
            os.chmod(folder, 0o700)
    return folder


def spool_name(taskid: str) -> str:
    """The file name stem of a task's spools."""
    # A Celery task id is a UUID, but nothing stops a caller passing "../x".
    return re.sub(r"[^A-Za-z0-9._-]", "_", taskid).lstrip(".") or "task"


def spool_files(taskid: str, directory: Path | None = None) -> list[Path]:
    """The spool files of ``taskid`` in ``directory`` (default: the spool place)."""
    folder = directory if directory is not None else default_spool_dir()
    stem = spool_name(taskid)
    pattern = re.compile(rf"{re.escape(stem)}(\.\d+)?\.jsonl")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if pattern.fullmatch(n))
