"""``asyncstream bench --files --rows`` runs the rows asked for, with the rows
they are compared with, and names a pattern that matches nothing."""

from __future__ import annotations

import pytest

from asyncstream.bench._filework_run import plan, select


def test_a_handler_row_comes_with_its_raw_loop() -> None:
    keys = [row.key for row in select(plan(1000, quick=True), ["delete:*:discard"])]
    assert keys == ["delete:raw", "delete:async:discard", "delete:sync:discard"]


def test_a_latency_row_comes_with_its_runtime_free_twin() -> None:
    rows = select(plan(1000, quick=True), ["latency:threads:64", "latency:async:64"])
    keys = {row.key for row in rows}
    assert keys == {
        "latency:threads:64",
        "latency:plain:64",
        "latency:async:64",
        "latency:loop:64",
    }


def test_a_pattern_that_matches_no_row_is_named() -> None:
    with pytest.raises(ValueError, match="'nothing:\\*'"):
        select(plan(1000, quick=True), ["nothing:*"])
