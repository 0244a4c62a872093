"""``scripts/mutate --quick``: the mutation command runs end to end."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mutate_quick_kills_mutants_and_lists_the_survivors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["MUTATE_WORKDIR"] = str(tmp_path)
    done = subprocess.run(
        [str(ROOT / "scripts" / "mutate"), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "== surviving mutants" in output
    summary = re.search(r"== killed (\d+), survived (\d+)", output)
    assert summary is not None, output
    killed, survived = int(summary[1]), int(summary[2])
    assert killed > 0  # the tests noticed the mutants of the retry policy
    listed = re.findall(r"^    \S+: (?:survived|no tests)$", output, re.MULTILINE)
    assert len(listed) == survived
    # Nothing of the run lands in the work tree.
    assert not (ROOT / "mutants").exists()
