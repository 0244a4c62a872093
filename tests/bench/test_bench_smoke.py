"""``asyncstream bench --quick`` runs to the end and reports every row.

It asserts that the run happened and that every row and target was printed and
recorded, never how fast anything was: the machine running CI decides that.
Under coverage the bench process and its hubs are measured, its measurement
children are not (the runner starts them without coverage's variables); every
row's workload is run in-process by tests/bench/test_bench_children.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncstream.bench import ROWS
from asyncstream.bench._results import RATIO_TARGETS

pytestmark = pytest.mark.slow


# One size: every row runs once, in a child of its own, against real hubs, and
# records its figures. A second size would double the children for nothing this
# test checks; how results at several sizes are planned, recorded and compared
# is held by tests/bench/test_bench_results.py (plan, memory verdicts, table and
# JSON). Above both caps of --quick (500 paths for one POST per path, 2,000 for
# a hop per add), so that the capped rows run capped, as in a real run.
SIZE = 2_500


@pytest.mark.timeout(240)
def test_quick_run_prints_and_records_every_row(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "asyncstream", "bench", "--quick", "--sizes", str(SIZE),
         "--json", figures],
        capture_output=True,
        text=True,
        timeout=220,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for row in ROWS:
        assert row.label in done.stdout, row.label
    assert "failed" not in done.stdout

    document = json.loads(figures.read_text())
    sizes = [str(size) for size in document["sizes"]]
    assert sizes == [str(SIZE)]
    recorded = {row["key"]: row for row in document["rows"]}
    assert set(recorded) == {row.key for row in ROWS}
    for key, row in recorded.items():
        assert row["error"] is None, (key, row["error"])
        assert sorted(row["sizes"]) == sorted(sizes), key
        for figures_at_size in row["sizes"].values():
            assert figures_at_size["seconds"] > 0
            assert figures_at_size["rss_peak"] > 0
            assert figures_at_size["traced_peak"] is not None
    verdicts = {target["key"] for target in document["targets"]}
    assert {target.key for target in RATIO_TARGETS} <= verdicts
    assert len(document["load"]["before"]) == 3
