"""Page cursors: opaque to clients, a tagged position in base64url."""

from __future__ import annotations

import base64
import binascii

from ._errors import HubHTTPError
from ._json_body import MAX_INT64
from ._store import ResultPosition


def encode_cursor(tag: str, *numbers: int) -> str:
    text = f"{tag}:{'.'.join(map(str, numbers))}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, tag: str, arity: int) -> tuple[int, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        got_tag, _, rest = text.partition(":")
        numbers = tuple(int(n) for n in rest.split("."))
        if (
            got_tag != tag
            or len(numbers) != arity
            or min(numbers) < 0
            or max(numbers) > MAX_INT64
        ):
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        detail = f"cursor {cursor!r:.80} was not issued by this endpoint"
        raise HubHTTPError(400, "invalid_cursor", detail, field="cursor") from None
    return numbers


def decode_result_cursor(cursor: str | None) -> ResultPosition | None:
    if not cursor:
        return None
    seq, idx = decode_cursor(cursor, "r", 2)
    return seq, idx
