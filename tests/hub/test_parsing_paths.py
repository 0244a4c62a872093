"""Append bodies: bare path strings become path objects, bad ones name their index."""

from __future__ import annotations

import json

import pytest

from asyncstream._paths import to_path_object
from asyncstream.hub._errors import HubHTTPError
from asyncstream.hub._parsing import parse_append_body


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
