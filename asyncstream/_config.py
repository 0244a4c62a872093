"""Where the hub is and how to authenticate: arguments, task context, configuration.

A setting given as an argument wins; then the hub of the current task context
(:mod:`._context`: the Celery glue and ``asyncstream run`` put it there); then the
lower-case name in a Celery app's configuration (the app given, or Celery's
current app when Celery is already imported); then the environment variable.
Celery is never imported from here: a process that runs Celery tasks has
imported it already.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from ._exceptions import ConfigurationError

ENV_HUB_URL: Final = "ASYNCSTREAM_HUB_URL"
ENV_API_KEY: Final = "ASYNCSTREAM_API_KEY"
ENV_QUEUE_NAME: Final = "ASYNCSTREAM_QUEUE_NAME"
ENV_VERIFY_TLS: Final = "ASYNCSTREAM_VERIFY_TLS"


def _celery_conf(app: Any) -> Any:
    if app is None:
        if "celery" not in sys.modules:
            return None
        from celery import current_app

        app = current_app
    return getattr(app, "conf", None)


def lookup_setting(name: str, *, app: Any = None) -> str | None:
    """Return setting ``name`` (an ``ASYNCSTREAM_*`` name) from Celery or the env."""
    conf = _celery_conf(app)
    if conf is not None:
        value = conf.get(name.lower())
        if value not in (None, ""):
            return str(value)
    value = os.environ.get(name)
    return value or None


def check_api_key(key: str | None, source: str) -> None:
    """Refuse a key that cannot travel in an HTTP header, naming ``source``.

    A newline, a space or a non-ASCII character (a key pasted with its line end,
    a quoted key) would make the HTTP library fail on every request with the
    header, key and all, in its message. The message here names where the key
    came from and what is wrong with it, never the key itself.
    """
    if not key:
        return  # no key: requests go without one
    for position, char in enumerate(key, start=1):
        if "\x21" <= char <= "\x7e":
            continue
        if char in "\r\n":
            what = "a line break"
        elif char.isspace():
            what = "whitespace"
        elif char.isascii():
            what = "a control character"
        else:
            what = "a non-ASCII character"
        where = (
            "at its end"
            if position == len(key)
            else "at its start"
            if position == 1
            else f"at position {position} of {len(key)}"
        )
        raise ConfigurationError(
            f"the API key from {source} is malformed: it holds {what} {where};"
            " a key is printable ASCII without spaces (check for a pasted line"
            " end or quotes)"
        )


def _key_source(app: Any) -> str:
    conf = _celery_conf(app)
    if conf is not None and conf.get(ENV_API_KEY.lower()) not in (None, ""):
        return f"the Celery setting {ENV_API_KEY.lower()}"
    return f"the environment variable {ENV_API_KEY}"


@dataclass(frozen=True, slots=True)
class HubSettings:
    """The hub's base URL and credentials. The key never shows in a repr."""

    url: str
    api_key: str | None = field(default=None, repr=False)
    verify_tls: bool = True

    def __post_init__(self) -> None:
        check_api_key(self.api_key, "the hub settings")

    @classmethod
    def resolve(
        cls,
        *,
        hub_url: str | None = None,
        api_key: str | None = None,
        verify_tls: bool | None = None,
        app: Any = None,
    ) -> HubSettings:
        """Combine arguments and configuration; raise if no hub URL is known."""
        api_key = api_key or None
        check_api_key(api_key, "the api_key argument")
        hub = _task_hub.get()
        if hub is not None and (not hub_url or hub_url.rstrip("/") == hub.url):
            # The task's own hub, as a whole: its key never goes to another URL.
            if api_key is None and verify_tls is None:
                return hub
            return cls(
                url=hub.url,
                api_key=api_key or hub.api_key,
                verify_tls=hub.verify_tls if verify_tls is None else verify_tls,
            )
        url = hub_url or lookup_setting(ENV_HUB_URL, app=app)
        if not url:
            raise ConfigurationError(
                "no hub URL: pass hub_url=..., set the environment variable"
                f" {ENV_HUB_URL} (e.g. http://127.0.0.1:8000), or set"
                f" {ENV_HUB_URL.lower()} in the Celery app's configuration"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"hub URL must start with http:// or https://, got {url!r}"
            )
        if verify_tls is None:
            flag = lookup_setting(ENV_VERIFY_TLS, app=app)
            verify_tls = flag is None or flag.lower() not in ("0", "false", "no", "off")
        if api_key is None:
            api_key = lookup_setting(ENV_API_KEY, app=app)
            check_api_key(api_key, _key_source(app))
        return cls(url=url.rstrip("/"), api_key=api_key, verify_tls=verify_tls)

    def headers(self) -> dict[str, str]:
        """The authentication header protocol v1 expects, if a key is set."""
        return {"Authorization": f"Api-Key {self.api_key}"} if self.api_key else {}


# The hub of the task running in this context. Set by ``_context.task_context``
# from the task context's ``hub``; kept here so that configuration does not
# import the task context (which holds a HubSettings).
_task_hub: ContextVar[HubSettings | None] = ContextVar(
    "asyncstream_task_hub", default=None
)


@contextmanager
def task_hub(hub: HubSettings | None) -> Iterator[None]:
    """Make ``hub`` the current task's hub for the duration of the block."""
    token = _task_hub.set(hub)
    try:
        yield
    finally:
        _task_hub.reset(token)
