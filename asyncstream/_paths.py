"""Path objects, stream references and the five file states.

A *path object* is a dict with a string ``"path"`` key and any other keys the hub or
a task attaches (``size``, ``message``, ``site``...). Tasks may pass bare strings;
they are normalised to ``{"path": s}``. A *stream reference* ``{"stream": url,
"count": n}`` stands in a task's ``paths`` for a stream of path objects on the hub.

These checks sit on the hot path of ``add()``, so they do the least work that still
names the bad value.

A POSIX file name is bytes. Python's ``os`` functions give a name that is not
UTF-8 as a ``str`` holding *surrogate escapes* (``os.fsdecode``: each byte that
is not UTF-8 becomes U+DC80..U+DCFF), and ``os.fsencode`` gives the bytes back.
Such strings travel as they are (JSON ``\\udcXX`` escapes, see the protocol);
every other lone surrogate names no file and is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

from ._exceptions import InvalidPathError, InvalidStateError, PathTypeError

State: TypeAlias = Literal["processed", "skipped", "aborted", "failures", "inprogress"]
PathObject: TypeAlias = dict[str, Any]

STATES: Final[tuple[State, ...]] = (
    "processed",
    "skipped",
    "aborted",
    "failures",
    "inprogress",
)
_STATE_SET: Final = frozenset(STATES)

# The states whose paths go on to the next task of a workflow.
FORWARDED_STATES: Final[tuple[State, ...]] = ("processed", "skipped")


def check_state(key: object) -> State:
    """Return ``key`` if it is a supported file state, else raise naming it."""
    # Only strings name states; testing the type first also keeps an unhashable
    # key (a list) from escaping as a TypeError of the set lookup.
    if isinstance(key, str) and key in _STATE_SET:
        return key
    raise InvalidStateError(
        f"unknown file state {key!r}: expected one of {', '.join(STATES)}"
    )


def is_unicode(text: str) -> bool:
    """False for a string with any lone surrogate, which UTF-8 cannot encode."""
    if text.isascii():  # O(1) for the common case: CPython records it
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_wire_text(text: str) -> bool:
    """True if ``text`` can travel to the hub and back unchanged.

    That is valid Unicode, or a file name as ``os.fsdecode`` gives it: lone
    surrogates only as escapes of bytes (U+DC80..U+DCFF), and only where those
    bytes are not UTF-8 (``"\\udcc3\\udca9"`` would be a second spelling of
    ``"\u00e9"``, which names the same file).
    """
    if is_unicode(text):
        return True
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return raw.decode("utf-8", "surrogateescape") == text


def check_wire_text(text: str, where: str) -> str:
    """Return ``text``, or raise naming ``where`` if :func:`is_wire_text` is false."""
    if is_wire_text(text):
        return text
    raise InvalidPathError(
        f"{where} {text!r:.200} is not valid Unicode: a lone surrogate stands in"
        " a string only as the escape of a byte of a file name (U+DC80..U+DCFF,"
        " as os.fsdecode gives it)"
    )


def normalize_message(message: object) -> list[str]:
    """Return a failure message as the payload stores it: a list of strings."""
    if isinstance(message, str):
        return [message if message.isascii() else check_wire_text(message, "message")]
    if isinstance(message, Sequence) and all(isinstance(m, str) for m in message):
        return [m if m.isascii() else check_wire_text(m, "message") for m in message]
    raise InvalidPathError(
        f"message must be a string or a list of strings, got {message!r}"
    )


# Floats are not here: they must also be finite; strings are checked as text.
_NON_TEXT_JSON: Final = frozenset({int, bool, type(None)})


def _check_json_value(value: object, where: str, obj: Mapping[str, Any]) -> None:
    """Raise naming ``where`` if ``value`` is not plain, finite JSON."""
    if isinstance(value, str):
        check_wire_text(value, f"path object value {where!r}")
        return
    if isinstance(value, bool | int) or value is None:
        return
    if isinstance(value, float):
        if math.isfinite(value):
            return
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]", obj)
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                break
            check_wire_text(key, f"path object key in {where!r}")
            _check_json_value(item, f"{where}.{key}", obj)
        else:
            return
    raise InvalidPathError(
        f"path object value {where!r} is not JSON (strings, finite numbers,"
        f" booleans, null, lists and objects with string keys): {value!r:.100}"
        f" in {obj!r:.200}"
    )


def to_path_object(path: object, *, message: object = None) -> PathObject:
    """Normalise a path string or path object to a fresh path object.

    The caller's dict is copied, never changed. ``message``, when given, is added to
    (or appended to) the object's ``message`` list.
    """
    # The hot case first: an exact str and no message skips the isinstance checks.
    if type(path) is str and message is None:
        if path and (path.isascii() or is_wire_text(path)):
            return {"path": path}
        return {"path": _check_path_text(path)}
    if isinstance(path, str):
        obj: PathObject = {"path": _check_path_text(path)}
    elif type(path) is dict or isinstance(path, Mapping):
        value = path.get("path")
        if isinstance(value, str) and value:
            if not value.isascii():
                check_wire_text(value, "path")
        else:
            if "stream" in path:
                raise InvalidPathError(
                    f"a stream reference is not a result path: {dict(path)!r}"
                )
            raise InvalidPathError(
                f"path object needs a non-empty string 'path', got {dict(path)!r}"
            )
        obj = dict(path)
        for key, item in obj.items():
            # Plain values pass at the cost of two type lookups; anything else
            # is checked here, so a value JSON cannot carry fails in the add()
            # that brought it, not later when its batch is encoded.
            if (
                type(key) is str
                and key.isascii()
                and (
                    type(item) in _NON_TEXT_JSON
                    or (type(item) is str and (item.isascii() or is_wire_text(item)))
                )
            ):
                continue
            if type(key) is not str:
                raise InvalidPathError(
                    f"path object keys must be strings, got {key!r} in {obj!r:.200}"
                )
            check_wire_text(key, "path object key")
            _check_json_value(item, key, obj)
        if "message" in obj:
            obj["message"] = normalize_message(obj["message"])
    else:
        raise PathTypeError(
            f"path must be a string or a dict with a 'path' key, got {path!r}"
            f" of type {type(path).__name__}"
        )
    if message is not None:
        obj["message"] = obj.get("message", []) + normalize_message(message)
    return obj


def _check_path_text(path: str) -> str:
    if not path:
        raise InvalidPathError("path must be a non-empty string, got ''")
    return check_wire_text(path, "path")


def is_stream_reference(item: object) -> bool:
    """True if ``item`` is a ``{"stream": url, ...}`` reference to an input stream."""
    return isinstance(item, Mapping) and "stream" in item and "path" not in item


def check_stream_reference(item: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a stream reference and return a copy of it."""
    url = item.get("stream")
    if not isinstance(url, str) or not url:
        raise InvalidPathError(
            f"stream reference needs a non-empty string 'stream', got {dict(item)!r}"
        )
    count = item.get("count")
    if count is not None and (
        not isinstance(count, int) or isinstance(count, bool) or count < 0
    ):
        raise InvalidPathError(
            f"stream reference 'count' must be a non-negative integer,"
            f" got {dict(item)!r}"
        )
    return dict(item)


def normalize_input_paths(input_paths: object) -> list[dict[str, Any]]:
    """Validate a task's ``paths`` argument: path strings, path objects, stream refs.

    Returns a new list of path objects and stream references, in order.
    """
    if not isinstance(input_paths, list | tuple):
        raise PathTypeError(
            "input_paths must be a list of paths, path objects or stream references,"
            f" got {type(input_paths).__name__} {input_paths!r:.200}"
        )
    normalized: list[dict[str, Any]] = []
    for index, item in enumerate(input_paths):
        try:
            if is_stream_reference(item):
                normalized.append(check_stream_reference(item))
            else:
                normalized.append(to_path_object(item))
        except InvalidPathError as exc:
            raise type(exc)(f"input_paths[{index}]: {exc}") from None
    return normalized


def count_input_paths(input_paths: Sequence[Mapping[str, Any]]) -> int:
    """Count inputs, a stream reference counting as its ``count`` (0 if unknown)."""
    total = 0
    for item in input_paths:
        if is_stream_reference(item):
            total += int(item.get("count") or 0)
        else:
            total += 1
    return total
