"""The ``asyncstream`` command: a thin layer over the library.

Each verb lives in its own module and is registered on :data:`main` here.
"""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asyncstream")
def main() -> None:
    """Run, serve and measure streaming custom tasks."""


@main.group()
def hub() -> None:
    """The embedded hub server."""


from ._hub import bench, serve  # noqa: E402

hub.add_command(serve)
hub.add_command(bench)
from ._resend import resend  # noqa: E402

main.add_command(resend)
from ._run import run  # noqa: E402

main.add_command(run)
from ._demo import demo  # noqa: E402

main.add_command(demo)
from ._bench import bench  # noqa: E402

main.add_command(bench)
from ._soak import soak  # noqa: E402

main.add_command(soak)
