"""The ``asyncstream`` command: a thin layer over the library.

Each verb lives in its own module and is registered on :data:`main` here.
"""

from __future__ import annotations

import click

from .. import __version__
from . import _hub
from ._bench import bench
from ._demo import demo
from ._load import load
from ._resend import resend
from ._run import run
from ._soak import soak


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asyncstream")
def main() -> None:
    """Run, serve and measure streaming custom tasks."""


@main.group()
def hub() -> None:
    """The embedded hub server."""


hub.add_command(_hub.serve)
hub.add_command(_hub.bench)
for command in (demo, run, resend, bench, soak, load):
    main.add_command(command)
