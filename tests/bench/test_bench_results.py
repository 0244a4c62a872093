"""The pure parts of ``asyncstream bench``: sizes, planning, ratios, targets, table."""

from __future__ import annotations

import json

import click
import pytest

from asyncstream.bench import ROWS, BenchResults, Caps, Measurement, evaluate_targets
from asyncstream.bench._report import json_document, size_label, table_cells
from asyncstream.bench._results import (
    MEMORY_GROWTH_LIMIT,
    RATIO_TARGETS,
    RatioTarget,
    memory_target,
)
from asyncstream.bench._rows import ROWS_BY_KEY, plan
from asyncstream.cli._bench import parse_sizes

MIB = 1024 * 1024
SMALL, LARGE = 1_000, 10_000


def measured(row: str, paths: int, rate: float, rss: float = 60, traced: float = 2):
    """A measurement of ``paths`` at ``rate`` paths/s, memory in MiB."""
    return Measurement(row, paths, paths / rate, int(rss * MIB), int(traced * MIB))


def results_with(*entries: tuple[str, float, float, float]) -> BenchResults:
    """Each row at both sizes: (row, rate, rss MiB at LARGE, traced MiB at LARGE)."""
    results = BenchResults((SMALL, LARGE))
    for row, rate, rss, traced in entries:
        results.add(measured(row, SMALL, rate), (SMALL,))
        results.add(measured(row, LARGE, rate, rss, traced), (LARGE,))
    return results


def verdict(results: BenchResults, key: str) -> bool | None:
    (found,) = [t for t in evaluate_targets(results) if t.key == key]
    return found.met


@pytest.mark.parametrize(
    ("n", "label"),
    [(1_000_000, "1M"), (10_000_000, "10M"), (20_000, "20k"), (1_500, "1500")],
)
def test_size_label_uses_the_largest_exact_unit(n: int, label: str) -> None:
    assert size_label(n) == label


def test_parse_sizes_accepts_suffixes_sorts_and_dedupes() -> None:
    assert parse_sizes("10M, 1m,1000000") == (1_000_000, 10_000_000)
    assert parse_sizes("50k,2000") == (2_000, 50_000)


@pytest.mark.parametrize("text", ["", "ten", "0", "1G", "5k,"])
def test_parse_sizes_rejects_what_is_not_a_size(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_sizes(text)


def test_plan_runs_a_capped_row_once_for_every_size_above_its_cap() -> None:
    caps = Caps(post_per_path=500, add_per_call=5_000, latency=2_000)
    runs = plan((SMALL, 100_000), caps)
    by_row: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
    for run in runs:
        by_row.setdefault(run.row.key, []).append((run.paths, run.sizes))
    assert by_row["base.post_per_path"] == [(500, (SMALL, 100_000))]
    assert by_row["base.add_per_call"] == [(SMALL, (SMALL,)), (5_000, (100_000,))]
    assert by_row["sender.async.discard"] == [(SMALL, (SMALL,)), (100_000, (100_000,))]
    # Ceilings are measured before the rows compared with them.
    assert [r.row.group for r in runs[:8]] == ["raw ceiling"] * 8


def test_plan_runs_a_one_task_row_once_at_its_size_for_every_size() -> None:
    runs = plan((SMALL, 100_000, 1_000_000), Caps())
    by_row = {run.row.key: (run.paths, run.sizes) for run in runs}
    assert by_row["task.one_bad.sqlite"] == (10_000, (SMALL, 100_000, 1_000_000))
    assert by_row["task.clean.sqlite"] == (10_000, (SMALL, 100_000, 1_000_000))


def test_one_bad_item_target_is_met_once_its_checked_row_ran() -> None:
    results = results_with(
        ("task.clean.sqlite", 20_000, 60, 2), ("task.one_bad.sqlite", 15_000, 60, 2)
    )
    (found,) = [t for t in evaluate_targets(results) if t.key == "one_bad_item"]
    assert (found.row, found.met) == ("task.one_bad.sqlite", True)
    assert found.value == pytest.approx(0.75)  # its rate over the clean task's
    assert found.text == "9,999 stored exactly once, 1 reported"
    # The workload raises when a result is missing, doubled or not reported.
    failed = results_with(("task.clean.sqlite", 20_000, 60, 2))
    failed.errors["task.one_bad.sqlite"] = "RuntimeError: 9998 results stored"
    assert verdict(failed, "one_bad_item") is False
    assert verdict(BenchResults((SMALL, LARGE)), "one_bad_item") is None


def test_ratio_is_over_the_slowest_of_the_row_ceilings() -> None:
    results = results_with(
        ("raw.get", 400_000, 60, 2),
        ("raw.post.discard", 200_000, 60, 2),
        ("e2e.sync", 100_000, 60, 2),
    )
    assert results.ratio(ROWS_BY_KEY["e2e.sync"], LARGE) == pytest.approx(0.5)
    assert results.ratio(ROWS_BY_KEY["expand.p2"], LARGE) is None


def test_ratio_targets_are_met_at_or_above_their_minimum() -> None:
    results = results_with(
        ("raw.post.discard", 100_000, 60, 2),
        ("sender.async.discard", 80_000, 60, 2),
        ("sender.sync.discard", 50_000, 60, 2),
        ("base.add_per_call", 1_000, 60, 2),
        ("expand.auto", 100_000, 60, 2),
        ("expand.auto.delay", 30_000, 60, 2),
    )
    assert verdict(results, "sender_vs_raw_post") is True
    assert verdict(results, "sync_vs_async") is False  # 0.625x
    assert verdict(results, "sync_vs_per_add") is False  # 50x
    assert verdict(results, "expand_auto_latency") is False


# The project's performance targets: (row, versus, minimum).
PROJECT_TARGETS = {
    ("sender.async.discard", "raw.post.discard", 0.6),
    ("sender.many.async.discard", "raw.post.discard", 0.9),
    ("sender.sync.discard", "sender.async.discard", 0.85),
    ("sender.sync.discard", "base.add_per_call", 100.0),
    ("expand.auto.delay", "expand.auto", 0.8),
    ("expand.auto.delay100", "expand.auto", 0.8),
}


def test_ratio_targets_are_the_projects_targets() -> None:
    assert {(t.row, t.versus, t.minimum) for t in RATIO_TARGETS} == PROJECT_TARGETS


@pytest.mark.parametrize("target", RATIO_TARGETS, ids=lambda t: t.key)
def test_each_ratio_target_is_met_at_its_minimum_and_missed_just_below(
    target: RatioTarget,
) -> None:
    at = results_with((target.versus, 100_000, 60, 2))
    at.add(measured(target.row, LARGE, 100_000 * target.minimum), (LARGE,))
    below = results_with((target.versus, 100_000, 60, 2))
    below.add(measured(target.row, LARGE, 100_000 * target.minimum * 0.99), (LARGE,))
    assert verdict(at, target.key) is True
    assert verdict(below, target.key) is False


def test_a_target_without_figures_is_unknown_not_missed() -> None:
    assert verdict(BenchResults((SMALL, LARGE)), "sender_vs_raw_post") is None


def test_memory_target_needs_flat_rss_and_flat_traced_peaks() -> None:
    flat = results_with(("sender.async.discard", 1e5, 60 * 1.1, 2 * 1.1))
    traced_grows = results_with(("sender.async.discard", 1e5, 60, 2 * 3))
    spec = ROWS_BY_KEY["sender.async.discard"]
    assert memory_target(flat, spec).met is True  # type: ignore[union-attr]
    assert memory_target(traced_grows, spec).met is False  # type: ignore[union-attr]


def test_file_action_status_target_is_to_grow_with_n() -> None:
    spec = ROWS_BY_KEY["base.file_action_status"]
    grows = results_with((spec.key, 1e6, 600, 400))
    flat = results_with((spec.key, 1e6, 60, 2))
    assert memory_target(grows, spec).met is True  # type: ignore[union-attr]
    assert memory_target(flat, spec).met is False  # type: ignore[union-attr]
    assert MEMORY_GROWTH_LIMIT == 1.2


def test_a_row_measured_at_one_size_only_has_no_memory_verdict() -> None:
    results = BenchResults((SMALL, LARGE))
    results.add(measured("sender.async.discard", SMALL, 1e5), (SMALL, LARGE))
    target = memory_target(results, ROWS_BY_KEY["sender.async.discard"])
    assert target is not None
    assert target.met is None
    assert results.extrapolated("sender.async.discard", LARGE)


def test_table_has_every_row_and_marks_capped_and_failed_ones() -> None:
    results = results_with(("raw.post.discard", 100_000, 60, 2))
    results.add(measured("base.post_per_path", 500, 500), (SMALL, LARGE))
    results.errors["expand.p2"] = "RuntimeError: boom"
    head, rows = table_cells(results, evaluate_targets(results))
    assert head[2:4] == ["paths/s @1k", "paths/s @10k"]
    assert [cells[1] for cells in rows] == [spec.label for spec in ROWS]
    by_label = {cells[1]: cells for cells in rows}
    capped = by_label[ROWS_BY_KEY["base.post_per_path"].label]
    assert capped[2:5] == ["500*", "500*", "0.01"]
    assert by_label[ROWS_BY_KEY["expand.p2"].label][-1].startswith("failed: Runtime")


def test_json_document_holds_every_row_size_and_target() -> None:
    results = results_with(("raw.post.discard", 100_000, 60, 2))
    targets = evaluate_targets(results)
    document = json.loads(json.dumps(json_document(results, targets, {"x": 1})))
    assert document["x"] == 1
    assert [row["key"] for row in document["rows"]] == [spec.key for spec in ROWS]
    raw = document["rows"][0]["sizes"]
    assert sorted(raw) == [str(SMALL), str(LARGE)]
    assert raw[str(LARGE)]["rate"] == pytest.approx(100_000)
    assert len(document["targets"]) == len(targets)
