"""The ``asyncstream`` command: a thin layer over the library.

Each verb lives in its own module and is registered on :data:`main` here. Only
click and the client core are imported up front; a verb imports its part (the
hub, the runner, the bench...) when it runs, after :mod:`._extras` has checked
that it is installed.
"""

from __future__ import annotations

import click

from .. import __version__
from . import _hub
from ._bench import bench
from ._demo import demo
from ._load import load
from ._prune import prune
from ._resend import resend
from ._run import run
from ._soak import soak

EPILOG = (
    "\b\nWhat each verb needs beyond 'pip install asyncstream':\n"
    "  hub, demo, run      the hub extra: pip install 'asyncstream[hub]'\n"
    "                      (run --hub URL needs none)\n"
    "  bench, soak, load   a source checkout: they test asyncstream itself\n"
    "  resend              nothing more"
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="asyncstream")
def main() -> None:
    """Run, serve and measure streaming custom tasks."""


@main.group()
def hub() -> None:
    """The embedded hub server."""


hub.add_command(_hub.serve)
hub.add_command(_hub.bench)
hub.add_command(prune)
for command in (demo, run, resend, bench, soak, load):
    main.add_command(command)
