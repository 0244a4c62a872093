"""How hub answers become values or errors: the translation at the boundary.

A 2xx answer gives its JSON body; 408, 429 and 5xx are :class:`HubUnavailableError`
(retried by the caller within its deadline, honouring ``Retry-After``); other 4xx
are :class:`HubRejectedError`; a body that is not what protocol v1 says is a
:class:`HubProtocolError`. Request bodies are encoded here too, once, compactly.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ._exceptions import HubProtocolError, HubRejectedError, HubUnavailableError

RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
JSON_HEADERS = {"Content-Type": "application/json"}


def encode_json(body: Any) -> bytes:
    """Compact JSON bytes, the form every request body is sent in."""
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return encode_json_escaped(body)


def encode_json_escaped(body: Any) -> bytes:
    """Compact ASCII JSON bytes, for a body holding a file name that is not UTF-8.

    Its surrogate escapes (``os.fsdecode``) cannot be encoded as UTF-8; ASCII
    JSON writes them as ``\\udcXX`` escapes, the protocol's wire form.
    """
    return json.dumps(body, separators=(",", ":")).encode()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_detail(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _reason(detail: Any) -> str:
    """What the hub said, short, for a message: its ``detail``, else the text."""
    said = (
        detail.get("detail") or detail.get("error")
        if isinstance(detail, dict)
        else detail
    )
    text = str(said).strip() if said else ""
    return f": {text[:200]}" if text else ""


def _what(response: httpx.Response) -> str:
    # Only for a message: decoding the URL's path costs more than the rest of
    # the check of a good answer.
    return f"{response.request.method} {response.request.url.path}"


def check_response(response: httpx.Response) -> Any:
    """Return the JSON body of a 2xx answer, or raise the matching hub error."""
    status = response.status_code
    if status in RETRYABLE_STATUSES:
        detail = _error_detail(response)
        raise HubUnavailableError(
            f"{_what(response)}: hub answered {status}{_reason(detail)}",
            status_code=status,
            detail=detail,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 400:
        detail = _error_detail(response)
        said = detail.get("detail") if isinstance(detail, dict) else detail
        raise HubRejectedError(
            f"{_what(response)}: hub rejected the request with {status}: {said}",
            status_code=status,
            detail=detail,
        )
    try:
        return response.json()
    except ValueError as exc:
        raise HubProtocolError(
            f"{_what(response)}: hub answered {status} with a body that is not JSON",
            status_code=status,
        ) from exc


def expect_dict(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise HubProtocolError(f"{what}: expected a JSON object, got {answer!r:.200}")
    return answer
