"""Plain paths: results held as their path string, encoded by joining.

A printable ASCII path alone is buffered as the string itself and a batch of
them is encoded without making a dict per result; the bytes must be the very
bytes orjson gives for the path objects they stand for, whatever the strings
hold, so that a batch's body does not depend on how its results were added.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncstream._batch_body import (
    BatchEnvelope,
    Result,
    all_plain_paths,
    encode_results,
)
from asyncstream._result_buffer import ResultBuffer

ENVELOPE = BatchEnvelope(7, "my-plugin", "london.q#custom")
# Printable ASCII, the quote and the backslash (escaped by JSON) among them.
_PLAIN = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)


def _as_objects(results: list[Result]) -> list[dict[str, Any]]:
    return [{"path": r} if isinstance(r, str) else r for r in results]


def test_printable_ascii_is_told_apart_exactly_as_isprintable_does() -> None:
    for code in range(0x100):
        char = chr(code)
        expected = char.isascii() and char.isprintable()
        assert all_plain_paths(char) is expected, repr(char)
        assert all_plain_paths("/data/" + char + "/x") is expected, repr(char)
    assert all_plain_paths("")
    assert not all_plain_paths("/caf\u00e9")
    assert not all_plain_paths("/bad\udcff")


@settings(max_examples=300, deadline=None)
@given(paths=st.lists(_PLAIN, min_size=0, max_size=8))
def test_joined_plain_paths_are_the_bytes_orjson_gives(paths: list[str]) -> None:
    results: list[Result] = list(paths)
    assert encode_results(results) == orjson.dumps(_as_objects(results))


def test_quotes_and_backslashes_are_escaped_as_orjson_does() -> None:
    for paths in (['/a"b'], ["/a\\b"], ["/a", '"', "/c"], ['"},{"path":"x']):
        results: list[Result] = list(paths)
        body = encode_results(results)
        assert body == orjson.dumps(_as_objects(results))
        assert json.loads(body) == _as_objects(results)


@settings(max_examples=200, deadline=None)
@given(
    results=st.lists(
        _PLAIN
        | st.builds(
            lambda p, n: {"path": p, "size": n},
            st.text(min_size=1, max_size=6),
            st.integers(-(2**70), 2**70),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_plain_paths_beside_path_objects_encode_as_path_objects_alone(
    results: list[Result],
) -> None:
    # The same results as path objects: the body cannot tell them apart.
    as_objects: list[Result] = list(_as_objects(results))
    items = {"failures": results, "processed": results[:1]}
    objects = {"failures": as_objects, "processed": as_objects[:1]}
    assert ENVELOPE.encode(3, items) == ENVELOPE.encode(3, objects)


def test_add_many_of_plain_strings_buffers_them_as_plain_paths() -> None:
    buffer = ResultBuffer(batch_size=10, linger=1.0, envelope=ENVELOPE)
    held: list[object] = []
    run = buffer.read_run(iter(["/a", "/b"]), 10, buffer.room, held)
    assert run.objs == ["/a", "/b"]
    # A path that is not printable ASCII is made a path object.
    run = buffer.read_run(iter(["/a", "/tab\there"]), 10, buffer.room, held)
    assert run.objs == ["/a", {"path": "/tab\there"}]
    buffer.extend("processed", run.objs, run.nbytes)
    pending = buffer.take_encoded()
    assert pending is not None
    assert pending.fragment is not None
    assert json.loads(pending.fragment) == {
        "processed": [{"path": "/a"}, {"path": "/tab\there"}]
    }


def test_no_results_are_an_empty_array() -> None:
    # The joined paths of no results are empty too: no result made up of them.
    assert encode_results([]) == b"[]"
