"""The arguments of ``asyncstream run``: fields, the streaming default, job ids,
and the scratch directory a run keeps its listing (and embedded database) in."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..run._output import EXIT_USAGE

# Above this many paths named one by one, results are streamed by default.
STREAM_THRESHOLD = 1000
RESERVED_FIELDS = frozenset({"jobid", "paths", "stream_results"})


class RunUsageError(click.ClickException):
    """A usage error in one line (click's own UsageError adds the usage text)."""

    exit_code = EXIT_USAGE


def parse_fields(specs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a value that is valid JSON is decoded, else a string."""
    fields: dict[str, Any] = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        if not sep or not key.isidentifier():
            raise RunUsageError(
                f"--field {spec!r} is not KEY=VALUE with KEY a Python identifier:"
                " write e.g. --field source_root=/data"
            )
        if key in RESERVED_FIELDS:
            raise RunUsageError(
                f"--field {key}=... is set by the runner: use --jobid or --no-stream"
            )
        try:
            fields[key] = json.loads(raw)
        except ValueError:
            fields[key] = raw
    return fields


def stream_by_default(paths: tuple[str, ...]) -> bool:
    """Stream when the input's size is unknown (a tree, stdin) or large."""
    return len(paths) > STREAM_THRESHOLD or any(
        p == "-" or (os.path.isdir(p) and not os.path.islink(p)) for p in paths
    )


@contextmanager
def scratch_directory(*, keep: list[bool]) -> Iterator[Path]:
    """A new temporary directory, removed at the end unless ``keep[0]`` is true
    by then (it is then named)."""
    root = Path(tempfile.mkdtemp(prefix="asyncstream-run-"))
    try:
        yield root
    finally:
        if keep[0]:
            click.echo(f"scratch directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def parse_jobid(text: str) -> int | str:
    """A numeric job id as a number, as the hub gives it; anything else as is."""
    return int(text) if text.isdigit() else text
