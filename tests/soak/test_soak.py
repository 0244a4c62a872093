"""``asyncstream soak --quick`` injects every kind of fault and finds nothing lost.

Run as a child process through the module's own entry point, as a user would
run the verb; it asserts what was injected and checked, never how fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asyncstream.soak._chaos import FAULT_KINDS

pytestmark = pytest.mark.slow


@pytest.mark.timeout(90)
def test_quick_soak_injects_every_fault_kind_and_loses_or_doubles_nothing(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "asyncstream.cli._soak",
            "--quick",
            "--seed",
            "1",
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PASS:" in done.stdout
    document = json.loads(figures.read_text())
    totals = document["totals"]
    assert document["ok"] is True
    assert totals["violations"] == 0
    assert document["violations"] == []
    assert totals["rounds"] >= len(FAULT_KINDS)
    # Asked for, and applied by the hub: every kind of fault.
    assert all(totals["faults_requested"][kind] >= 1 for kind in FAULT_KINDS)
    assert {"fail", "drop", "delay"} <= set(totals["faults_fired"])
    assert totals["delivery_errors"] >= 1  # the outage round
    assert totals["resent_batches"] + totals["delivery_errors"] >= 1
    assert totals["results"] > 0
    assert totals["retries"] > 0
    assert totals["duplicates_absorbed"] > 0
    rounds = document["rounds"]
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    for record in rounds:
        assert f"round {record['round']:3d} [" in done.stdout
        assert record["peak_rss_kib"] > 0
        assert record["results"] > 0
    restarted = [r for r in rounds if r["faults_requested"].get("kill")]
    assert restarted
    assert all(r["restart_seconds"] > 0 for r in restarted)
