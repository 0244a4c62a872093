"""What a bench child runs, and what it inherits from the run that starts it.

``asyncstream bench`` runs every row in a child process of its own; those children
measure the runtime, so they start without coverage's subprocess measurement
(tests/bench/test_bench_smoke.py and test_files_bench_smoke.py run them so, end to
end). Here every row's workload, of both benches, runs in this process instead, a
few hundred paths each, against the bench's own hubs: each must deliver every path
and report its figures.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from asyncstream.bench import Caps
from asyncstream.bench._child import ProgressWriter, measure
from asyncstream.bench._filework_run import _Hubs as FileHubs
from asyncstream.bench._filework_run import _spec as file_spec
from asyncstream.bench._filework_run import plan as file_plan
from asyncstream.bench._hubs import BenchHubs
from asyncstream.bench._rows import plan
from asyncstream.bench._runner import BenchConfig, _spec, child_environment

pytestmark = pytest.mark.slow

# Small: what is checked is that each workload runs and counts every path, not
# how fast. Above a page of 100 paths, so that reading rows turn pages.
PATHS = 300


def test_a_measurement_child_inherits_no_coverage_measurement() -> None:
    parent = {
        "PATH": "/usr/bin",
        "ASYNCSTREAM_HUB_URL": "http://127.0.0.1:1",
        "COVERAGE_PROCESS_CONFIG": '{"run": {}}',
        "COVERAGE_PROCESS_START": "pyproject.toml",
    }
    assert child_environment(parent) == {
        "PATH": "/usr/bin",
        "ASYNCSTREAM_HUB_URL": "http://127.0.0.1:1",
    }


@pytest.fixture(scope="module")
def hubs() -> Iterator[BenchHubs]:
    with BenchHubs() as running:
        running.prepare_streams(PATHS)
        yield running


@pytest.mark.timeout(180)
def test_every_row_delivers_every_path_and_reports_its_figures(
    hubs: BenchHubs,
) -> None:
    for index, run in enumerate(plan((PATHS,), Caps.quick())):
        # Both ways of tracing, taking turns: a second pass of every row would
        # double the time for no more than the two branches of measure().
        trace = ("inline", "separate")[index % 2]
        config = BenchConfig(sizes=(PATHS,), trace=trace, page_size=100)
        out = io.StringIO()
        with contextlib.ExitStack() as stack:
            # The results of SQLite rows go to the discard hub (which store
            # answers is the runner's choice, tested end to end by the smoke
            # test), except those of the rows that read their task back.
            url = None if run.row.results_hub is None else hubs.discard.url
            if run.row.workload.startswith("task_"):
                url = stack.enter_context(hubs.fresh_sqlite()).url
            spec = _spec(config, run, hubs, url)
            stack.enter_context(hubs.page_latency(run.row.latency))
            figures = measure(spec, ProgressWriter(out))
        assert figures["paths"] == run.paths, run.row.key
        assert figures["seconds"] > 0, run.row.key
        assert figures["rss_peak"] > 0, run.row.key
        assert figures["traced_peak"] is not None, run.row.key
        assert figures["trace"] == trace, run.row.key
        # Every line the child would print is JSON (workloads tick in chunks of
        # 4,096, so a few hundred paths may print none).
        assert all(json.loads(line) for line in out.getvalue().splitlines())


@pytest.mark.timeout(180)
def test_every_file_row_delivers_every_path_and_reports_its_figures() -> None:
    # The rows of ``asyncstream bench --files`` (real files made, deleted and
    # moved), at a small size, in this process; their children, like the
    # others, run untraced in tests/bench/test_files_bench_smoke.py.
    with FileHubs() as hubs:
        for row in file_plan(100, quick=True):
            # One SQLite hub process per row would cost more than the row: the
            # results go to the discard hub instead.
            here = replace(row, hub="discard") if row.hub == "sqlite" else row
            with hubs.for_row(here) as (streams, results):
                figures = measure(file_spec(here, streams, results), _silent())
            assert figures["paths"] == row.paths, row.key
            assert figures["seconds"] > 0, row.key
            assert figures["rss_peak"] > 0, row.key
            assert (figures["traced_peak"] is None) == (row.trace == "off"), row.key


def _silent() -> ProgressWriter:
    return ProgressWriter(io.StringIO())
