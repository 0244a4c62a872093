"""The built wheel, installed into fresh virtual environments as a user would.

One environment gets ``asyncstream`` alone: its command must answer ``--help``
and ``--version`` and say which extra a verb needs. Another gets
``asyncstream[hub]`` and runs the demo in a directory outside the checkout.

The wheel is built once per session, and the dependencies of ``asyncstream[hub]``
are resolved once from pip's cache or index into a wheelhouse; each environment
then installs with ``--no-index`` from it, so it gets exactly what the wheel's
metadata asks for, without resolving against the index again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import asyncstream

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class Venv:
    """A fresh virtual environment with asyncstream installed from the wheel."""

    root: Path

    @property
    def script(self) -> Path:
        return self.root / "bin" / "asyncstream"

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(
        self, *args: str | Path, cwd: Path, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        # Nothing of the checkout or the test's own environment leaks in.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
            and not k.startswith("ASYNCSTREAM_")
        }
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"


def _pip(*args: str | Path) -> None:
    _check(
        subprocess.run(
            [sys.executable, "-m", "pip", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    )


@dataclass(frozen=True)
class Wheelhouse:
    """The project's wheel and, beside it, the wheels of every dependency."""

    wheel: Path
    folder: Path


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Wheelhouse:
    dist = tmp_path_factory.mktemp("dist")
    _pip("wheel", "--no-deps", "-q", "-w", dist, ROOT)
    (built,) = dist.glob("asyncstream-*.whl")
    folder = tmp_path_factory.mktemp("wheelhouse")
    _pip("wheel", "-q", "-w", folder, f"{built}[hub]")
    return Wheelhouse(built, folder)


@pytest.fixture(scope="session")
def wheel(wheelhouse: Wheelhouse) -> Path:
    return wheelhouse.wheel


def make_venv(root: Path, requirement: str, wheelhouse: Wheelhouse) -> Venv:
    # No pip inside: the test's own pip installs into it (``--python``), which
    # saves bootstrapping one per environment. Byte-compiling every dependency
    # (half the install's time) is left to the imports that need it.
    venv.create(root, with_pip=False)
    env = Venv(root)
    _pip(
        "--python", env.python, "install", "-q", "--no-compile", "--no-index",
        "--find-links", wheelhouse.folder, requirement,
    )  # fmt: skip
    return env


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with no checkout above it."""
    path = tmp_path_factory.mktemp("elsewhere")
    assert not (path / "examples").exists()
    return path


def test_the_wheel_ships_the_demo_and_leaves_the_test_tools_out(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()

    assert "asyncstream/demo/snapdiff.py" in names
    assert "asyncstream/py.typed" in names
    assert [
        n for n in names if n.startswith(("asyncstream/bench/", "asyncstream/soak/"))
    ] == []
    assert [n for n in names if n.startswith(("examples/", "tests/"))] == []


def test_a_plain_install_has_a_command_that_answers_and_names_missing_extras(
    wheelhouse: Wheelhouse, tmp_path: Path, outside: Path
) -> None:
    env = make_venv(tmp_path / "plain", str(wheelhouse.wheel), wheelhouse)

    helped = env.run(env.script, "--help", cwd=outside)
    assert helped.returncode == 0, helped.stderr
    for verb in ("demo", "run", "hub", "resend", "bench", "soak", "load"):
        assert f"  {verb} " in helped.stdout
    version = env.run(env.script, "--version", cwd=outside)
    assert (version.returncode, version.stdout) == (
        0,
        f"asyncstream, version {asyncstream.__version__}\n",
    )

    for args, says in [
        (["hub", "serve"], "asyncstream hub serve needs the 'hub' extra"),
        (["demo"], "asyncstream demo needs the 'hub' extra"),
        (["run", "m:f", "."], "asyncstream run's embedded hub needs the 'hub' extra"),
    ]:
        done = env.run(env.script, *args, cwd=outside)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(f"Error: {says} ("), done.stderr
        assert "pip install 'asyncstream[hub]'" in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
    for tool in ("bench", "soak", "load"):
        done = env.run(env.script, tool, cwd=outside)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(
            f"Error: asyncstream {tool} tests asyncstream itself and ships with its"
            " source"
        ), done.stderr
    # The client library needs none of the extras.
    imported = env.run(
        env.python, "-c", "import asyncstream.streamstatus, asyncstream.utils.inputs",
        cwd=outside,
    )  # fmt: skip
    _check(imported)


def test_the_hub_extra_runs_the_demo_outside_any_checkout(
    wheelhouse: Wheelhouse, tmp_path: Path, outside: Path
) -> None:
    env = make_venv(tmp_path / "hub", f"{wheelhouse.wheel}[hub]", wheelhouse)
    located = env.run(
        env.python, "-c", "import asyncstream; print(asyncstream.__file__)", cwd=outside
    )
    _check(located)
    assert located.stdout.startswith(str(env.root)), located.stdout

    done = env.run(env.script, "demo", "--files", "500", cwd=outside)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "task asyncstream.demo.snapdiff:delete_handler (async)" in done.stdout
    assert "replica matches the source: " in done.stdout
    assert list(outside.iterdir()) == []  # nothing left behind where it ran
