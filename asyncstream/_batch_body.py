"""The bytes of a batch: encoded once, with orjson, and sized before they exist.

A batch body is encoded when the batch is cut and never again, so retries, the
spool and ``resend`` carry the same bytes. orjson encodes it about ten times
faster than the standard library. Two kinds of values it refuses are still sent,
by the standard library, for the batch (or the item) that holds one:

- integers beyond 64 bits, which round-trip exactly as JSON numbers;
- strings with lone surrogates U+DC80..U+DCFF (how Python's ``surrogateescape``
  carries a file name that is not UTF-8), sent as ``\\udcXX`` escapes.

The fallback encodes the batch item by item, writes non-ASCII text as UTF-8 (like
orjson) and only lone surrogates as escapes, so an item has the same bytes in any
batch and :func:`item_size`, measured at ``add()``, bounds the body's length
(exactly but for plain ASCII paths, counted at two bytes a character so as not to
scan them): that is what lets batches be cut by bytes (:mod:`._result_buffer`).

A result whose path object would be ``{"path": s}`` for a printable ASCII ``s``
(the common case) is buffered as ``s`` itself, a *plain path*: no dict is made
for it, and a list of them is encoded by joining the strings, with the very bytes
orjson gives for their path objects (:func:`encode_results`). No I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import orjson

from ._paths import STATES, PathObject, State

__all__ = [
    "PLAIN_PATH_ITEM",
    "BatchEnvelope",
    "Result",
    "all_plain_paths",
    "as_path_object",
    "encode_item",
    "encode_results",
    "encode_value",
    "item_size",
    "path_size",
]

# A result as a buffer holds it: a path object, or a plain path (a printable
# ASCII string standing for ``{"path": it}``).
Result: TypeAlias = PathObject | str

_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# '{"path":""}': what a path string is wrapped in.
_PATH_WRAPPING: Final = 11
# What separates two plain paths in an encoded list.
_PLAIN_SEPARATOR: Final = '"},{"path":"'
# The printable ASCII characters (what str.isprintable() passes in ASCII).
_PRINTABLE_ASCII: Final = bytes(range(0x20, 0x7F))


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _stdlib_encode(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # The only characters UTF-8 cannot carry; JSON can, as escapes.
    return _LONE_SURROGATE.sub(_escape_surrogate, text).encode()


def encode_value(value: Any) -> bytes:
    """Compact JSON bytes of ``value``: orjson, or the standard library for an
    integer beyond 64 bits or a lone surrogate (see the module docstring)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _stdlib_encode(value)


def encode_item(obj: PathObject) -> bytes:
    """One path object as it appears in a batch body."""
    return encode_value(obj)


def item_size(obj: PathObject) -> int:
    """The bytes ``obj`` takes in a batch body: exactly, or at most for a path alone.

    The common case, a printable ASCII path alone, is bounded without encoding
    (:func:`path_size`).
    """
    if len(obj) == 1:
        path = obj.get("path")
        if type(path) is str and path.isascii() and path.isprintable():
            return _PATH_WRAPPING + 2 * len(path)
    return len(encode_item(obj))


def all_plain_paths(joined: str) -> bool:
    """True if ``joined`` (paths joined together) is printable ASCII.

    The same as ``joined.isascii() and joined.isprintable()``, several times
    faster on a long string: ``isprintable`` looks each character up in the
    Unicode database, ``bytes.translate`` deletes them through a table.
    """
    return joined.isascii() and not joined.encode().translate(None, _PRINTABLE_ASCII)


def encode_results(results: Sequence[Result]) -> bytes:
    """The JSON array of ``results``, a plain path ``s`` as ``{"path": s}``.

    A list of plain paths none of which JSON escapes (no ``"``, no ``\\``) is
    joined at C speed into the bytes orjson would give; anything else is made
    path objects and encoded as any value.
    """
    try:
        paths = "".join(results)  # type: ignore[arg-type]
    except TypeError:  # not all plain paths
        pass
    else:
        # Plain paths are printable ASCII: only '"' and '\\' would be escaped.
        # Looked for in the paths alone, where "in" finds either at memory
        # speed; counting the quotes of the joined items instead took as long
        # as joining them.
        if results and paths.isascii() and '"' not in paths and "\\" not in paths:
            joined = _PLAIN_SEPARATOR.join(results)  # type: ignore[arg-type]
            return b'[{"path":"%s"}]' % joined.encode()
    objs = [as_path_object(r) for r in results]
    try:
        return orjson.dumps(objs)
    except orjson.JSONEncodeError:
        # Item by item, so each has the very bytes item_size() counted.
        return b"[%s]" % b",".join(map(encode_item, objs))


def path_size(path: str) -> int:
    """At most the bytes of ``{"path": path}`` in a body, for a printable ASCII
    ``path``: JSON escapes only ``"`` and ``\\`` there, to two bytes each."""
    return _PATH_WRAPPING + 2 * len(path)


# What a plain path takes in a body at most, bar its characters (counted at two
# bytes each): its wrapping and the comma after it. The hot paths of ``add()``
# size a plain path inline as ``PLAIN_PATH_ITEM + 2 * len(path)``.
PLAIN_PATH_ITEM: Final = path_size("") + 1


def as_path_object(result: Result) -> PathObject:
    """A buffered result as the path object it stands for."""
    return {"path": result} if type(result) is str else result  # type: ignore[return-value]


class BatchEnvelope:
    """What surrounds the items of one task's batches, and its size."""

    __slots__ = ("_head", "overhead", "wrapping")

    def __init__(self, jobid: Any, task: str | None, queue: str | None) -> None:
        self._head = encode_value({"jobid": jobid, "task": task, "queue": queue})[:-1]
        # The envelope's bytes at most: the largest seq the hub takes and every
        # state named. A batch whose items take ``n`` bytes in all is at most this
        # plus ``n`` plus a comma per item.
        empty = self.encode(2**63 - 1, {})
        self.overhead = len(empty) + sum(len(s) + 5 for s in STATES)
        # What :meth:`wrap` adds to an encoded ``items`` object, at most (the
        # largest seq): a body is this plus its fragment.
        self.wrapping = len(self.wrap(2**63 - 1, b""))

    def encode(self, seq: int, items: Mapping[State, Sequence[Result]]) -> bytes:
        """The body of batch ``seq`` holding ``items``."""
        return self.wrap(seq, self.encode_items(items))

    def wrap(self, seq: int, fragment: bytes) -> bytes:
        """The body of batch ``seq`` around items encoded by :meth:`encode_items`."""
        return b'%s,"seq":%d,"items":%s}' % (self._head, seq, fragment)

    @staticmethod
    def encode_items(items: Mapping[State, Sequence[Result]]) -> bytes:
        """The ``items`` object of a body, states in a fixed order."""
        # A fixed state order keeps the body the same however items arrived.
        return b"{%s}" % b",".join(
            b'"%s":%s' % (state.encode(), encode_results(items[state]))
            for state in STATES
            if items.get(state)
        )
