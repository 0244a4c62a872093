"""The one exception tree of asyncstream.

Every error the library raises on purpose derives from :class:`AsyncStreamError`.
Errors about bad input also derive from the built-in class a caller would expect
(``ValueError``/``TypeError``), and every timeout also derives from ``TimeoutError``::

    AsyncStreamError
    ├── InvalidInputError (ValueError)       bad argument given by the caller
    │   ├── InvalidStateError                state not one of the five
    │   ├── InvalidPathError                 path object without "path", bad keys
    │   │   └── PathTypeError (TypeError)    path of a type that is not str/dict
    │   └── QueueNameError                   malformed celery queue name
    ├── ConfigurationError                   hub URL, key or current queue missing
    ├── UsageError (RuntimeError)            add() after dump(), use after close,
    │                                        a sync shim called on the loop thread
    ├── HubError                             talking to the hub went wrong
    │   ├── HubUnavailableError              unreachable, timed out, 408/429/5xx:
    │   │                                    retried until the deadline
    │   ├── HubRejectedError                 a 4xx other than 408/429: not retried
    │   └── HubProtocolError                 an answer that breaks protocol v1
    ├── StreamError                          an input stream misbehaved
    ├── DeliveryError                        results not acknowledged by the deadline
    └── AsyncStreamTimeout (TimeoutError)
        ├── BackpressureTimeout              add() waited longer than allowed
        └── StreamIdleTimeout                an open stream stayed idle too long

Errors of dependencies (httpx, anyio, tenacity) are translated at the boundary with
``raise ... from exc`` so that callers only need to know this tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class AsyncStreamError(Exception):
    """Base class of every error asyncstream raises on purpose."""


class InvalidInputError(AsyncStreamError, ValueError):
    """An argument given by the caller is not acceptable."""


class InvalidStateError(InvalidInputError):
    """A result state is not one of the supported file states."""


class InvalidPathError(InvalidInputError):
    """A path or path object is malformed."""


class PathTypeError(InvalidPathError, TypeError):
    """A path is neither a string nor a path object."""


class QueueNameError(InvalidInputError):
    """A celery queue name does not follow ``<site>.<queue>#<function>``."""


class ConfigurationError(AsyncStreamError):
    """A setting the operation needs (hub URL, API key, current queue) is missing."""


class UsageError(AsyncStreamError, RuntimeError):
    """An object was used in a way its lifecycle does not allow."""


class HubError(AsyncStreamError):
    """The hub answered in a way the client cannot accept.

    ``status_code`` is the HTTP status when there was one; ``detail`` is the hub's
    JSON error body, if it sent one.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, detail: Any = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class HubUnavailableError(HubError):
    """The hub could not be reached, timed out, or answered 408, 429 or 5xx.

    These are retried; this error escapes only when the deadline ran out.
    ``retry_after`` is the delay the hub asked for, in seconds, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, detail=detail)
        self.retry_after = retry_after


class HubRejectedError(HubError):
    """The hub refused a request for good (a 4xx other than 408 and 429)."""


class HubProtocolError(HubError):
    """The hub's answer does not follow protocol v1."""


class StreamError(AsyncStreamError):
    """An input stream misbehaved (a repeated cursor, a malformed page)."""


class DeliveryError(AsyncStreamError):
    """Not every batch was acknowledged by the hub before the delivery deadline.

    ``undelivered_seqs`` lists the batch numbers the hub did not acknowledge,
    ``undelivered_items`` how many results they hold, and ``spool_path`` where they
    were written so that ``asyncstream resend`` can deliver them later. ``cause``
    says why, as the last failure said it (the hub's status and reason, or the
    connection error); ``status_code`` is that last HTTP status, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        undelivered_seqs: Sequence[int] = (),
        undelivered_items: int = 0,
        spool_path: str | None = None,
        cause: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.undelivered_seqs = tuple(undelivered_seqs)
        self.undelivered_items = undelivered_items
        self.spool_path = spool_path
        self.cause = cause
        self.status_code = status_code


class AsyncStreamTimeout(AsyncStreamError, TimeoutError):
    """An operation of asyncstream ran out of time."""


class BackpressureTimeout(AsyncStreamTimeout):
    """``add()`` waited longer than its timeout for room in the send budget."""


class StreamIdleTimeout(AsyncStreamTimeout):
    """An open input stream delivered nothing new within its idle timeout."""
