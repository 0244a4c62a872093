"""Spool files at their edges: names taken, writes that fail, bad files, a hub that
still misses batches. Against the real hub; spool files read as the disk holds them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from asyncstream import DeliveryError
from asyncstream.hub import RunningHub
from tests.guarantees._support import (
    hub_paths,
    hub_task,
    read_spool_file,
    resend,
    spools_of,
    undeliverable,
)


async def test_an_existing_spool_file_is_never_overwritten(
    hub: RunningHub, tmp_path: Path
) -> None:
    taken = tmp_path / "taken.jsonl"
    taken.write_text("an earlier spool of the same task\n")
    error = await undeliverable(hub, "taken", tmp_path)
    assert taken.read_text() == "an earlier spool of the same task\n"
    assert error.spool_path == str(tmp_path / "taken.1.jsonl")
    spool = read_spool_file(error.spool_path)
    assert spool.seqs == [0, 1, 2]
    assert len(spool.paths) == 30
    # The error says where the results are and how to deliver them.
    assert error.spool_path in str(error)
    assert f"asyncstream resend {error.spool_path}" in str(error)

    again = await undeliverable(hub, "taken", tmp_path)
    assert again.spool_path == str(tmp_path / "taken.2.jsonl")
    assert read_spool_file(error.spool_path).seqs == [0, 1, 2]  # untouched


async def test_a_spool_that_cannot_be_written_says_the_results_were_not_kept(
    hub: RunningHub, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    error = await undeliverable(hub, "unkept", blocker / "spool")
    assert isinstance(error, DeliveryError)  # not the OSError of the spool
    assert error.spool_path is None
    assert error.undelivered_seqs == (0, 1, 2)
    assert error.undelivered_items == 30
    assert "could not be spooled" in str(error)
    assert "not-a-directory" in str(error)  # the reason, naming the place
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == [blocker]


def truncated(text: str) -> str:
    return text[: len(text) - 25]


def garbage_header(text: str) -> str:
    return "this is not json\n" + text.split("\n", 1)[1]


def foreign_header(text: str) -> str:
    return json.dumps({"format": "something-else"}) + "\n" + text.split("\n", 1)[1]


def batch_without_body(text: str) -> str:
    lines = text.splitlines()
    second = json.loads(lines[2])
    del second["body"]
    lines[2] = json.dumps(second)
    return "\n".join(lines) + "\n"


def empty(text: str) -> str:
    return ""


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (truncated, ":4: bad batch line"),
        (garbage_header, "not a spool file"),
        (foreign_header, "not an asyncstream spool file"),
        (batch_without_body, ":3: bad batch line"),
        (empty, "not a spool file"),
    ],
)
async def test_resend_refuses_a_malformed_spool_before_sending_anything(
    hub: RunningHub, tmp_path: Path, spoil: Callable[[str], str], said: str
) -> None:
    error = await undeliverable(hub, "spoiled", tmp_path)
    assert error.spool_path is not None
    spool = anyio.Path(error.spool_path)
    await spool.write_text(spoil(await spool.read_text()))
    result = await resend(str(spool), hub)
    assert result.exit_code != 0
    assert said in result.output
    assert str(spool) in result.output
    assert await spool.exists()  # kept for a person to look at
    assert await hub_paths(hub, "spoiled") == []  # nothing half-sent


async def test_resend_when_the_hub_still_misses_batches_fails_and_keeps_the_file(
    hub: RunningHub, tmp_path: Path
) -> None:
    error = await undeliverable(hub, "missing", tmp_path)
    assert error.spool_path is not None
    spool = anyio.Path(error.spool_path)
    lines = (await spool.read_text()).splitlines()
    assert json.loads(lines[0])["payload"] is not None  # dump() was reached
    del lines[2]  # the batch of seq 1 is lost
    await spool.write_text("\n".join(lines) + "\n")
    result = await resend(str(spool), hub)
    assert result.exit_code != 0
    assert "still misses batches [1]" in result.output
    assert await spool.exists()
    task = await hub_task(hub, "missing")
    assert task is not None
    assert task["state"] == "running"  # not completed with a batch missing
    assert len(await hub_paths(hub, "missing")) == 20
    assert spools_of(tmp_path, "missing")[0].seqs == [0, 2]
