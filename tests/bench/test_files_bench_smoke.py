"""``asyncstream bench --files --quick`` runs every row to the end and reports it.

It asserts that each row ran on real files (every path accounted for, or the row
would have failed) and that the table and targets were printed and recorded,
never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncstream.bench._filework_run import plan

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_quick_file_bench_prints_and_records_every_row(tmp_path: Path) -> None:
    figures = tmp_path / "files.json"
    done = subprocess.run(
        [sys.executable, "-m", "asyncstream", "bench", "--files", "--quick", "--sizes",
         "500", "--json", figures],
        capture_output=True,
        text=True,
        timeout=580,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = plan(500, quick=True)
    for row in rows:
        assert row.label in done.stdout, row.label
    assert "failed" not in done.stdout

    document = json.loads(figures.read_text())
    recorded = {row["key"]: row for row in document["rows"]}
    assert set(recorded) == {row.key for row in rows}
    for key, row in recorded.items():
        assert row["error"] is None, (key, row["error"])
        assert row["seconds"] > 0, key
        assert row["rss_peak"] > 0, key
    assert recorded["memory:5000"]["traced_peak"] is not None
    texts = [target["text"] for target in document["targets"]]
    assert len(texts) == 10
    assert all(target["value"] is not None for target in document["targets"])
