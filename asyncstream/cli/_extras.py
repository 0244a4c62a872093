"""What a verb needs beyond a plain install, and the one-line error when it is missing.

``pip install asyncstream`` gives the client library and this command; the hub
server and its progress bars come with the ``hub`` extra, and the tools that test
asyncstream itself (``bench``, ``soak``) are only in a source checkout. A verb
checks what it needs before it imports anything, so that a missing part is a
sentence saying what to install (exit status 2), never a traceback.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any, Final, TypeVar

import click

EXIT_MISSING: Final = 2

# The modules each extra provides that the verbs import (pyproject.toml lists the
# distributions; a test checks that the two agree).
EXTRA_MODULES: Final[dict[str, tuple[str, ...]]] = {
    "hub": ("fastapi", "uvicorn", "aiosqlite", "prometheus_client", "rich"),
    "celery": ("celery",),
}

F = TypeVar("F", bound=Callable[..., Any])


class MissingPartError(click.ClickException):
    """A verb needs an extra, or a part that ships only with the source."""

    exit_code = EXIT_MISSING


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    return [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]


def has_extra(extra: str) -> bool:
    """True when every module of ``extra`` is installed."""
    return not missing_modules(extra)


def require_extra(extra: str, what: str, *, otherwise: str = "") -> None:
    """Raise :class:`MissingPartError` naming the install command if ``extra`` lacks."""
    missing = missing_modules(extra)
    if missing:
        alternative = f", or {otherwise}" if otherwise else ""
        raise MissingPartError(
            f"{what} needs the '{extra}' extra ({', '.join(missing)} not installed):"
            f" pip install 'asyncstream[{extra}]'{alternative}"
        )


def needs_extra(extra: str) -> Callable[[F], F]:
    """Decorate a click callback that cannot run at all without ``extra``."""

    def decorate(callback: F) -> F:
        @functools.wraps(callback)
        def checked(*args: Any, **kwargs: Any) -> Any:
            require_extra(extra, f"asyncstream {_command_path()}")
            return callback(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def needs_source_checkout(package: str) -> Callable[[F], F]:
    """Decorate the callback of a tool that tests asyncstream itself.

    Such tools (``asyncstream.bench``, ``asyncstream.soak``) are left out of the
    wheel: they are in the source tree and in an editable install of it.
    """

    def decorate(callback: F) -> F:
        @functools.wraps(callback)
        def checked(*args: Any, **kwargs: Any) -> Any:
            command = f"asyncstream {_command_path()}"
            if importlib.util.find_spec(package) is None:
                raise MissingPartError(
                    f"{command} tests asyncstream itself and ships with its source,"
                    " not in the installed package: in a clone of the repository run"
                    f" 'scripts/bootstrap dev', then '.venv/bin/{command}'"
                )
            require_extra("hub", command)
            return callback(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def _command_path() -> str:
    context = click.get_current_context(silent=True)
    if context is None:
        return "this command"
    # "asyncstream hub serve" -> "hub serve": the program name is said by the caller.
    return context.command_path.partition(" ")[2] or context.command_path
