"""Append bodies: bare path strings become path objects, bad ones name their index."""

from __future__ import annotations

import json

import pytest

from asyncstream._paths import to_path_object
from asyncstream.hub._errors import HubHTTPError
from asyncstream.hub._parsing import MAX_NESTING, parse_append_body, parse_batch


def test_path_strings_become_what_to_path_object_makes_of_them() -> None:
    given: list[object] = ["/a", "/caf\u00e9", "/raw\udc80", {"path": "/o", "n": 1}]
    raw = json.dumps({"paths": given, "offset": 4}).encode()
    paths, offset = parse_append_body(raw)
    assert offset == 4
    assert paths == [to_path_object(p) for p in given]


@pytest.mark.parametrize(
    ("bad", "field"),
    [("", "paths[1]"), (5, "paths[1]"), (None, "paths[1]"), ({"x": 1}, "paths[1]")],
)
def test_a_bad_path_is_refused_naming_its_index(bad: object, field: str) -> None:
    raw = json.dumps({"paths": ["/ok", bad, "/after"]}).encode()
    with pytest.raises(HubHTTPError) as caught:
        parse_append_body(raw)
    assert caught.value.status_code == 422
    assert caught.value.extra == {"field": field}
    assert caught.value.detail.startswith(f"{field}: ")


def _results(objs: list[object], **extra: object) -> bytes:
    body = {"task": "t", "seq": 0, "items": {"processed": objs}, **extra}
    return json.dumps(body).encode()


def test_plain_objects_are_kept_as_sent() -> None:
    objs: list[object] = [{"path": "/a"}, {"path": "/caf\u00e9"}, {"path": "/r\udc80"}]
    parsed = parse_batch("t", 0, _results(objs))
    assert parsed.items == {"processed": objs}
    assert parsed.count == 3


@pytest.mark.parametrize(
    "other",
    [
        {"path": "/b", "message": [1]},
        {"path": ""},
        {"path": 5},
        {"path": None},
        {"pat": "/b"},
        ["/b"],
        5,
    ],
)
def test_an_object_that_is_not_plain_gets_the_whole_check(other: object) -> None:
    # After a plain object, so a check of the first item alone would pass it.
    raw = _results([{"path": "/a"}, other])
    with pytest.raises(HubHTTPError) as caught:
        parse_batch("t", 0, raw)
    assert caught.value.status_code == 422
    assert caught.value.extra == {"field": "items.processed[1]"}


def test_objects_with_more_than_a_path_are_normalised_as_before() -> None:
    objs: list[object] = [
        {"path": "/a"},
        "/b",
        {"path": "/c", "message": ["m"]},
        {"path": "/d", "message": "one"},
    ]
    parsed = parse_batch("t", 0, _results(objs))
    assert parsed.items == {"processed": [to_path_object(o) for o in objs]}


def test_a_deep_value_beside_plain_objects_is_refused_naming_it() -> None:
    deep: object = 1
    for _ in range(MAX_NESTING + 1):
        deep = [deep]
    raw = _results([{"path": "/a"}, {"path": "/b", "x": deep}])
    with pytest.raises(HubHTTPError) as caught:
        parse_batch("t", 0, raw)
    assert caught.value.extra["field"].startswith("items.processed[1].x")
    assert f"deeper than {MAX_NESTING}" in caught.value.detail
