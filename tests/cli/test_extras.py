"""Verbs name the extra they need; the names checked agree with pyproject.toml."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from asyncstream.cli import main
from asyncstream.cli._extras import EXTRA_MODULES

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def distribution(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return name.group(0).lower().replace("_", "-")


def test_every_module_checked_comes_from_its_extra_in_pyproject() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project["optional-dependencies"]

    for extra, modules in EXTRA_MODULES.items():
        listed = {distribution(r) for r in extras[extra]}
        assert {m.replace("_", "-") for m in modules} <= listed, extra
    assert "click" in {distribution(r) for r in project["dependencies"]}


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make ``importlib.util.find_spec`` miss the given modules."""

    def hide(*names: str) -> None:
        real = importlib.util.find_spec

        def find_spec(name: str, package: str | None = None) -> Any:
            return None if name in names else real(name, package)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["hub", "serve"], "asyncstream hub serve"),
        (["hub", "bench"], "asyncstream hub bench"),
        (["demo"], "asyncstream demo"),
        (["run", "m:f", "."], "asyncstream run's embedded hub"),
    ],
)
def test_a_verb_without_its_extra_names_it_and_exits_2(
    without: Any, args: list[str], command: str
) -> None:
    without("fastapi", "aiosqlite")

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 2
    assert result.output == (
        f"Error: {command} needs the 'hub' extra (fastapi, aiosqlite not installed):"
        f" pip install 'asyncstream[hub]'"
        + (", or give --hub URL" if args[0] == "run" else "")
        + "\n"
    )


def test_run_with_a_given_hub_needs_no_extra_but_progress_needs_rich(
    without: Any,
) -> None:
    without("rich")

    result = CliRunner().invoke(
        main, ["run", "m:f", ".", "--hub", "http://127.0.0.1:9", "--progress"]
    )

    assert result.exit_code == 2
    assert "asyncstream run --progress needs the 'hub' extra (rich" in result.output
    assert result.output.endswith(", or --no-progress\n")


@pytest.mark.parametrize("tool", ["bench", "soak"])
def test_a_test_tool_missing_from_the_install_says_it_ships_with_the_source(
    without: Any, tool: str
) -> None:
    without(f"asyncstream.{tool}")

    result = CliRunner().invoke(main, [tool])

    assert result.exit_code == 2
    assert result.output.startswith(
        f"Error: asyncstream {tool} tests asyncstream itself and ships with its source"
    )
    assert f"'.venv/bin/asyncstream {tool}'" in result.output
