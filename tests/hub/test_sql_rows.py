"""Path objects as SQL rows: the ``extra`` column round-trips every JSON value."""

from __future__ import annotations

import json

import pytest

from asyncstream.hub._sql_rows import (
    bare_path,
    bare_paths,
    join_path_object,
    path_objects,
    result_rows,
    split_path_object,
)
from asyncstream.hub._store import ResultBatch


@pytest.mark.parametrize(
    "obj",
    [
        {"path": "/a", "from": "/b"},
        {"path": "/a", "size": 2**70, "neg": -(2**64)},  # beyond orjson's range
        {"path": "/a", "note": "caf\u00e9 \u2603", "f": 1e16, "g": 0.1},
        {"path": "/a", "raw": "x\udc80y"},  # a file name's byte, escaped
        {"path": "/a", "nested": [1, {"b": None, "c": [True, False]}], "m": ["x"]},
        {"path": "/a", "ctl": "tab\there\u0000nul"},
    ],
)
def test_extra_round_trips(obj: dict[str, object]) -> None:
    path, extra = split_path_object(obj)
    assert path == "/a"
    assert extra is not None
    assert json.loads(extra) == {k: v for k, v in obj.items() if k != "path"}
    assert join_path_object(path, extra) == obj


def test_big_integers_stay_exact_in_the_stored_text() -> None:
    # orjson refuses integers past 64 bits; the fallback must not round them.
    _, extra = split_path_object({"path": "/a", "n": 2**64 + 1})
    assert extra == '{"n":18446744073709551617}'


def test_a_bare_path_object_has_no_extra() -> None:
    assert split_path_object({"path": "/a"}) == ("/a", None)


def test_a_path_that_is_not_utf8_keeps_its_bytes() -> None:
    obj = {"path": "/a\udcff", "from": "/b"}
    path, extra = split_path_object(obj)
    assert path == "/a\ufffd"
    assert join_path_object(path, extra) == obj


MIXED_OBJECTS: list[dict[str, object]] = [
    {"path": "/plain"},
    {"path": "/caf\u00e9"},
    {"path": "/with", "from": "/src"},
    {"path": "/raw\udc80"},
    {"path": "/m", "message": ["why"]},
]


def test_result_rows_number_every_object_and_split_it() -> None:
    batch = ResultBatch(
        "t1",
        3,
        None,
        "task",
        None,
        {"processed": MIXED_OBJECTS[:3], "failures": MIXED_OBJECTS[3:]},
        "d",
        5,
    )
    states = ["processed"] * 3 + ["failures"] * 2
    assert result_rows(batch) == [
        ("t1", 3, i, state, *split_path_object(obj))
        for i, (state, obj) in enumerate(zip(states, MIXED_OBJECTS, strict=True))
    ]


def test_path_objects_read_back_what_was_split() -> None:
    rows = [split_path_object(obj) for obj in MIXED_OBJECTS]
    assert path_objects(rows) == MIXED_OBJECTS


def test_bare_paths_are_those_of_objects_that_are_all_bare() -> None:
    objs: list[dict[str, object]] = [{"path": "/a"}, {"path": '/q"\\'}, {"path": ""}]
    assert bare_paths(objs) == [bare_path(o) for o in objs] == ["/a", '/q"\\', ""]
    assert bare_paths([]) == []


@pytest.mark.parametrize("other", [*MIXED_OBJECTS[1:], {"path": 5}, {"from": "/b"}])
def test_one_object_that_is_not_bare_makes_bare_paths_none(
    other: dict[str, object],
) -> None:
    objs: list[dict[str, object]] = [{"path": "/a"}, other, {"path": "/b"}]
    assert bare_paths(objs) is None
