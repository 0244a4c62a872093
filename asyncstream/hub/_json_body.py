"""Request bodies as JSON the hub can store and answer: strict, finite, shallow.

One ``json.loads`` with a strict decoder refuses what JSON is not (NaN, Infinity,
numbers past the float range, text that is not valid UTF-8); lone surrogates,
which JSON escapes can spell, are looked for only when the body has an escape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from .._paths import is_unicode, is_wire_text
from ._errors import HubHTTPError

# Seqs, cursor positions and batch counts are SQLite INTEGERs: signed 64-bit.
MAX_INT64 = 2**63 - 1
# How deep a value inside a path object (or a completion payload) may nest. The
# response serialiser gives up past ~200 levels: deeper data would be stored and
# then fail every read of its task or stream.
MAX_NESTING = 64

# A \uD800-\uDFFF escape that is not half of a surrogate pair: json.loads turns it
# into a lone surrogate. Only the escapes of bytes of a file name (U+DC80..U+DCFF,
# see :func:`asyncstream._paths.is_wire_text`) may stand in a string; the stores
# keep them in an escaped form (:mod:`._sql_rows`), the responses as \udcXX.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number {text:.40} is out of range")
    return number


# NaN, Infinity and 1e400 are not JSON (RFC 8259): they would be stored and read
# back as null. Rejecting them is the decoder's job, at no cost to other numbers.
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)


def invalid(detail: str, field: str, code: str = "invalid_request") -> HubHTTPError:
    """A 422 naming the offending ``field`` (a dotted path into the body)."""
    return HubHTTPError(422, code, detail, field=field)


def _malformed(detail: str) -> HubHTTPError:
    return HubHTTPError(400, "malformed_json", f"request body is not JSON: {detail}")


def load_json(raw: bytes) -> Any:
    """Parse a request body, or raise a 400 that says where the JSON breaks.

    Only standard JSON in valid Unicode is accepted: not NaN or Infinity, not
    numbers past the float range, not lone surrogates but the escapes of the
    bytes of a file name (422 naming the field).
    """
    try:
        # Strict decoding: json.loads(bytes) would let encoded surrogates through.
        text = raw.decode(json.detect_encoding(raw))
        body = _DECODER.decode(text.removeprefix("\ufeff"))
    except RecursionError:
        raise _malformed("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise _malformed(f"not valid {exc.encoding}: {exc.reason}") from None
    except ValueError as exc:
        raise _malformed(str(exc)) from None
    # "\\" first: one memchr, where "\\u" is a search forty times as slow
    # (40 us for a body of 2000 paths), and most bodies have no escape at all.
    if "\\" in text and "\\u" in text and _LONE_SURROGATE.search(text):
        problem = find_bad_value(body, "", max_depth=None)
        if problem is not None:
            raise invalid(problem[1], problem[0] or "body")
    return body


def field_name(key: str) -> str:
    """``key`` as a part of an error's ``field``: a key holding the escape of a
    file name's byte is spelled with ``\\udcXX``, so the error can be sent."""
    return key if is_unicode(key) else ascii(key)[1:-1]


def _join(field: str, key: object) -> str:
    if isinstance(key, int):
        return f"{field}[{key}]"
    name = field_name(str(key))
    return f"{field}.{name}" if field else name


def find_bad_value(
    value: object, field: str, *, max_depth: int | None = MAX_NESTING
) -> tuple[str, str] | None:
    """The first thing in a parsed JSON ``value`` that no store or response can
    carry, as ``(field, detail)``; None if there is none.

    That is a string or key with a lone surrogate, a non-finite float, or nesting
    deeper than ``max_depth`` (None: any depth). Iterative, so that a deep value
    cannot exhaust the stack.
    """
    stack: list[tuple[object, str, int]] = [(value, field, 0)]
    while stack:
        item, where, depth = stack.pop()
        name = where or "body"
        if isinstance(item, str):
            if not is_wire_text(item):
                return where, f"{name}: {item!r:.80} is not valid Unicode{_WHY}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return where, f"{name}: {item} is not a JSON number"
        elif isinstance(item, dict | list):
            if max_depth is not None and depth >= max_depth:
                return where, f"{name} nests deeper than {max_depth} levels"
            children: Iterable[tuple[object, object]] = (
                enumerate(item) if isinstance(item, list) else item.items()
            )
            for key, child in children:
                if isinstance(key, str) and not is_wire_text(key):
                    detail = f"{name}: key {key!r:.80} is not valid Unicode{_WHY}"
                    return where, detail
                stack.append((child, _join(where, key), depth + 1))
    return None


_WHY = " (a lone surrogate is allowed only as a file name's byte, U+DC80..U+DCFF)"
