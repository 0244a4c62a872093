"""A spool whose header does not say which task it holds, or how many batches the
task cut, is refused by ``asyncstream resend`` before anything is sent: posting
it under another id, or completing the task with a wrong count, would put
results where nobody looks for them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncstream.hub import RunningHub
from tests.guarantees._support import hub_paths, resend, undeliverable

MISSING = object()


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("taskid", 42, "lacks 'taskid'"),
        ("taskid", "", "lacks 'taskid'"),
        ("taskid", MISSING, "lacks 'taskid'"),
        ("batches", -1, "lacks 'batches'"),
        ("batches", "3", "lacks 'batches'"),
        ("batches", True, "lacks 'batches'"),
        ("batches", MISSING, "lacks 'batches'"),
    ],
)
async def test_resend_refuses_a_spool_header_without_its_task_or_count(
    hub: RunningHub, tmp_path: Path, field: str, value: Any, said: str
) -> None:
    error = await undeliverable(hub, "headless", tmp_path, n=12)
    assert error.spool_path is not None
    spool = anyio.Path(error.spool_path)
    header_line, rest = (await spool.read_text()).split("\n", 1)
    header = json.loads(header_line)
    if value is MISSING:
        del header[field]
    else:
        header[field] = value
    await spool.write_text(json.dumps(header) + "\n" + rest)
    result = await resend(str(spool), hub)
    assert result.exit_code != 0
    assert said in result.output
    assert await spool.exists()
    assert await hub_paths(hub, "headless") == []
    assert await hub_paths(hub, "42") == []


async def test_a_spool_header_names_its_format_version_and_time(
    hub: RunningHub, tmp_path: Path
) -> None:
    # A later reader tells the formats apart by these two fields.
    error = await undeliverable(hub, "versioned", tmp_path, n=5)
    assert error.spool_path is not None
    text = await anyio.Path(error.spool_path).read_text()
    header = json.loads(text.split("\n", 1)[0])
    assert (header["format"], header["version"]) == ("asyncstream-spool", 1)
    # When it was written, for the person deciding what to resend.
    assert isinstance(header["written"], float)
