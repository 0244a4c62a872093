"""``asyncstream bench --rows``: a subset of rows, with what they are compared with."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asyncstream.bench._results import target_needs
from asyncstream.bench._rows import Caps, plan, select_rows
from asyncstream.bench._runner import BenchConfig, _meta
from asyncstream.cli import main


def test_a_row_brings_its_ceiling_and_the_rows_its_targets_divide_by() -> None:
    chosen = select_rows(("sender.sync.discard",), target_needs())
    # raw POST is its ceiling; the async sender and the per-add hop are the rows
    # its two ratio targets divide by, and the async sender brings raw POST too.
    assert chosen == {
        "sender.sync.discard",
        "raw.post.discard",
        "sender.async.discard",
        "base.add_per_call",
    }


def test_patterns_are_shell_style_and_the_plan_keeps_only_the_chosen_rows() -> None:
    chosen = select_rows(("expand.auto*",), target_needs())
    assert {"expand.auto", "expand.auto.delay", "expand.auto.delay100"} <= chosen
    planned = {run.row.key for run in plan((1000,), Caps.quick(), chosen)}
    assert planned == chosen
    assert "sender.async.discard" not in planned


def test_a_pattern_that_matches_nothing_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'nosuch\.row' matches no bench row"):
        select_rows(("expand.auto", "nosuch.row"))
    result = CliRunner().invoke(main, ["bench", "--quick", "--rows", "nosuch.*"])
    assert result.exit_code == 2
    assert "'nosuch.*' matches no bench row" in result.output


def test_the_chosen_rows_are_written_to_the_json_figures_as_a_list() -> None:
    rows = select_rows(("expand.auto",))
    meta = json.loads(json.dumps(_meta(BenchConfig(sizes=(1000,), rows=rows))))
    assert meta["config"]["rows"] == ["expand.auto", "raw.get"]
