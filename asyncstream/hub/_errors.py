"""Every error the hub sends is ``{"error": code, "detail": message, ...extra}``.

FastAPI's own errors (validation, unknown routes, wrong methods) go through the same
handlers, so a client never has to parse two error shapes. So do failures of the
hub itself: a full disk is 507 ``insufficient_storage`` with ``Retry-After`` (the
store commits nothing, and the hub takes batches again once space returns), and
any other unexpected error is 500 ``internal_error``, logged with its traceback
but told to the client without details.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ._store import (
    IdempotencyConflictError,
    MissingBatchesError,
    NotFoundError,
    StoreError,
    StreamClosedError,
    StreamOffsetError,
    TaskCompletedError,
    UnknownTaskError,
)

logger = logging.getLogger("asyncstream.hub")

# Seconds a client waits before it sends again to a hub whose disk is full.
DISK_FULL_RETRY_AFTER = 5
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full

_STORE_STATUS: dict[type[StoreError], int] = {
    NotFoundError: 404,
    IdempotencyConflictError: 409,
    MissingBatchesError: 409,
    StreamClosedError: 409,
    StreamOffsetError: 409,
    TaskCompletedError: 409,
    UnknownTaskError: 422,
}


class HubStartupError(Exception):
    """The hub cannot start: the port is taken, the database is unusable...

    Its message is one line that names what failed; ``hub serve`` prints it
    and exits with status 1.
    """


class HubHTTPError(StarletteHTTPException):
    """An error answer: HTTP ``status``, a short ``code`` and a ``detail`` message.

    A subclass of Starlette's ``HTTPException`` so that FastAPI passes it through
    unchanged even when raised while it reads a request body.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, detail, headers)
        self.code = code
        self.extra = extra


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The JSON error answer every failure path uses."""
    return JSONResponse(
        {"error": code, "detail": detail, **extra}, status_code=status, headers=headers
    )


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def _describe_validation(exc: RequestValidationError) -> tuple[str, list[str]]:
    parts, fields = [], []
    for error in exc.errors():
        # loc is ("body", "batches") or ("query", "page_size"): name the field.
        loc = ".".join(str(p) for p in error.get("loc", ()))
        fields.append(loc)
        value = error.get("input")
        shown = (
            f" (got {value!r:.80})" if "input" in error and value is not None else ""
        )
        parts.append(f"{loc}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(parts) or "invalid request", fields


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) says the disk is full:
    SQLite's SQLITE_FULL, PostgreSQL's ``disk_full``, or ENOSPC/EDQUOT."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: causes and contexts
        if seen is None:
            return False
        if isinstance(seen, sqlite3.Error) and (
            getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        ):
            return True
        if getattr(seen, "sqlstate", None) == _DISK_FULL_SQLSTATE:
            return True
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_response() -> JSONResponse:
    return error_response(
        507,
        "insufficient_storage",
        "the hub's disk is full: nothing of this request was stored; send it"
        " again later",
        headers={"Retry-After": str(DISK_FULL_RETRY_AFTER)},
    )


def install_error_handlers(app: FastAPI, on_error: Callable[[str], None]) -> None:
    """Answer every error with :func:`error_response`; ``on_error(code)`` counts."""

    async def hub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubHTTPError)
        on_error(exc.code)
        return error_response(
            exc.status_code, exc.code, exc.detail, headers=exc.headers, **exc.extra
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _status_code_name(exc.status_code)
        on_error(code)
        detail = str(exc.detail)
        if exc.status_code in (404, 405):
            detail = f"{detail}: {request.method} {request.url.path}"
        return error_response(exc.status_code, code, detail, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail, fields = _describe_validation(exc)
        on_error("invalid_request")
        field = fields[0] if fields else None
        return error_response(
            422, "invalid_request", detail, field=field, fields=fields
        )

    async def store_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StoreError)
        on_error(exc.code)
        status = _STORE_STATUS.get(type(exc), 400)
        return error_response(status, exc.code, exc.detail, **exc.extra)

    async def storage_error(request: Request, exc: Exception) -> Response:
        if not is_disk_full(exc):
            raise exc  # to ``unexpected_error``: a 500, logged
        logger.warning(
            "%s %s: the disk is full (%s); answered 507",
            request.method,
            request.url.path,
            exc,
        )
        on_error("insufficient_storage")
        return disk_full_response()

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        if is_disk_full(exc):  # from a driver whose errors are not OSError
            on_error("insufficient_storage")
            return disk_full_response()
        # Starlette re-raises the error after this answer, for the server's log.
        on_error("internal_error")
        return error_response(
            500, "internal_error", "the hub failed on this request (see its log)"
        )

    app.add_exception_handler(HubHTTPError, hub_error)
    app.add_exception_handler(sqlite3.Error, storage_error)
    app.add_exception_handler(OSError, storage_error)
    # Exception: Starlette answers with it last, outside every other handler,
    # and then re-raises the error so the server logs it.
    app.add_exception_handler(Exception, unexpected_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)
