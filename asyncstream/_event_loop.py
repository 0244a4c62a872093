"""The event loop the runtime's own loops run on: uvloop where it is installed.

The runtime runs loops of its own: the process's event-loop thread that sync
code crosses into (:mod:`._portal`), and the loops of ``asyncstream run`` and
``asyncstream demo``. Most of their time goes to waking tasks and threads and
moving bytes through sockets, which uvloop does in C; under load it keeps the
latency-bound rows of ``asyncstream bench --files`` markedly closer to their
bound than the stock asyncio loop. It comes with the ``hub`` extra; without it
(or on Windows, or with ``ASYNCSTREAM_UVLOOP=0``) the stock loop runs, and
everything behaves the same, only slower.

A task's own ``anyio.run`` or ``asyncio.run`` is the task's business: only the
loops the runtime starts are chosen here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar, TypeVarTuple

import anyio

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

ENV_UVLOOP: Final = "ASYNCSTREAM_UVLOOP"
_OFF: Final = frozenset({"0", "false", "no", "off"})

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> LoopFactory | None:
    """uvloop's ``new_event_loop``, or ``None`` for the stock asyncio loop (uvloop
    missing, or turned off with ``ASYNCSTREAM_UVLOOP=0``)."""
    if os.environ.get(ENV_UVLOOP, "").strip().lower() in _OFF:
        return None
    try:
        import uvloop
    except ImportError:  # not installed (no hub extra) or not built here
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: what :func:`run` would run on now."""
    return "asyncio" if loop_factory() is None else "uvloop"


def backend_options() -> dict[str, Any]:
    """anyio's asyncio backend options for the chosen loop."""
    factory = loop_factory()
    return {} if factory is None else {"loop_factory": factory}


def run(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """``anyio.run(fn, *args)`` on the runtime's loop (see the module)."""
    return anyio.run(fn, *args, backend_options=backend_options())
