"""FileActionStatus: the seed's payload, bad input, lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from asyncstream import (
    STATES,
    FileActionStatus,
    InvalidInputError,
    InvalidPathError,
    InvalidStateError,
    PathTypeError,
    UsageError,
)

FILE1 = "/mmfs1/data/my-fileset/file1"
FILE2 = "/mmfs1/data/my-fileset/file2"


def seed_example_status() -> FileActionStatus:
    status = FileActionStatus(
        "my-plugin", [{"path": FILE1}, {"path": FILE2}], 100, "london.default#custom"
    )
    status.add("processed", FILE1)
    status.add("failures", FILE2, message="Reason xyz for the failure")
    return status


def test_dump_equals_seed_example_but_started() -> None:
    payload = seed_example_status().dump()
    # The seed's example, with the two states it leaves out present at zero: the
    # contract asks for every state in summary and details.
    expected = {
        "jobid": 100,
        "paths": [{"path": FILE1}],
        "status": {
            "task": "my-plugin",
            "input_paths": [{"path": FILE1}, {"path": FILE2}],
            "input_total": 2,
            "summary": {
                "failures": 1,
                "processed": 1,
                "skipped": 0,
                "aborted": 0,
                "inprogress": 0,
            },
            "details": {
                "failures": [
                    {"path": FILE2, "message": ["Reason xyz for the failure"]}
                ],
                "processed": [{"path": FILE1}],
                "skipped": [],
                "aborted": [],
                "inprogress": [],
            },
        },
    }
    started = payload["status"].pop("started")
    assert payload == expected
    assert datetime.fromisoformat(started).tzinfo is not None
    assert json.loads(json.dumps(payload))["status"]["summary"]["failures"] == 1


def test_paths_hold_processed_and_skipped_in_order_added() -> None:
    status = FileActionStatus("t", ["/a", "/b", "/c", "/d"], 1, None)
    status.add("skipped", "/b")
    status.add("aborted", "/c")
    status.add("processed", {"path": "/a", "size": 3})
    status.add("inprogress", "/d")
    payload = status.dump()
    assert payload["paths"] == [{"path": "/b"}, {"path": "/a", "size": 3}]
    assert payload["status"]["summary"] == {
        "processed": 1,
        "skipped": 1,
        "aborted": 1,
        "failures": 0,
        "inprogress": 1,
    }
    assert list(payload["status"]["details"]) == list(STATES)


def test_path_object_keys_are_kept_and_caller_dict_not_changed() -> None:
    original = {"path": "/x", "size": 10, "site": "london", "message": "why"}
    status = FileActionStatus("t", [original], "job-7", "london.q#custom")
    status.add("failures", original, message=["and more"])
    failure = status.dump()["status"]["details"]["failures"][0]
    assert failure == {
        "path": "/x",
        "size": 10,
        "site": "london",
        "message": ["why", "and more"],
    }
    assert original["message"] == "why"


def test_input_strings_are_normalised_and_stream_refs_counted() -> None:
    refs = ["/a", {"stream": "/api/streams/s1/paths/", "count": 1000}]
    status = FileActionStatus("t", refs, 1, None)
    payload = status.dump()
    assert payload["status"]["input_paths"] == [
        {"path": "/a"},
        {"stream": "/api/streams/s1/paths/", "count": 1000},
    ]
    assert payload["status"]["input_total"] == 1001


def test_started_can_be_injected_and_must_be_aware() -> None:
    when = datetime(2023, 4, 25, 14, 56, 31, 253043, tzinfo=UTC)
    payload = FileActionStatus("t", [], 1, None, started=when).dump()
    assert payload["status"]["started"] == "2023-04-25T14:56:31.253043+00:00"
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        FileActionStatus("t", [], 1, None, started=datetime(2023, 1, 1))


@pytest.mark.parametrize(
    ("key", "path", "error", "named"),
    [
        ("done", "/a", InvalidStateError, "'done'"),
        ("Processed", "/a", InvalidStateError, "'Processed'"),
        ({"processed"}, "/a", InvalidStateError, "{'processed'}"),
        ("processed", {"size": 1}, InvalidPathError, "{'size': 1}"),
        ("processed", {"path": 5}, InvalidPathError, "{'path': 5}"),
        ("processed", "", InvalidPathError, "''"),
        ("processed", 42, PathTypeError, "42"),
        ("processed", None, PathTypeError, "None"),
        ("processed", {"stream": "/s"}, InvalidPathError, "stream reference"),
    ],
)
def test_bad_add_names_the_value_and_changes_nothing(
    key: str, path: object, error: type[Exception], named: str
) -> None:
    status = FileActionStatus("t", ["/a"], 1, None)
    status.add("processed", "/ok")
    with pytest.raises(error, match=named.replace("{", r"\{").replace("}", r"\}")):
        status.add(key, path)  # type: ignore[arg-type]
    assert status.summary["processed"] == 1
    assert sum(status.summary.values()) == 1


def test_bad_message_is_rejected() -> None:
    status = FileActionStatus("t", [], 1, None)
    with pytest.raises(InvalidPathError, match="message"):
        status.add("failures", "/a", message=[1, 2])
    assert status.summary["failures"] == 0


def test_path_type_error_is_also_a_type_error() -> None:
    status = FileActionStatus("t", [], 1, None)
    with pytest.raises(TypeError):
        status.add("processed", 3.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("", [], 1, None), "taskname"),
        (("t", "/a", 1, None), "input_paths"),
        (("t", {"path": "/a"}, 1, None), "input_paths"),
        (("t", ["/a", 7], 1, None), r"input_paths\[1\]"),
        (("t", [{"stream": ""}], 1, None), r"input_paths\[0\]"),
        (("t", [{"stream": "/s", "count": -1}], 1, None), "count"),
        (("t", [], True, None), "jobid"),
        (("t", [], 1, 5), "queue_name"),
    ],
)
def test_bad_constructor_arguments_name_the_value(
    args: tuple[object, ...], named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named):
        FileActionStatus(*args)  # type: ignore[arg-type]


def test_add_after_dump_is_a_usage_error_and_dump_repeats() -> None:
    status = seed_example_status()
    first = status.dump()
    with pytest.raises(UsageError, match="after dump"):
        status.add("processed", "/late")
    second = status.dump()
    assert first == second


def test_repr_is_one_line_with_counts() -> None:
    status = seed_example_status()
    text = repr(status)
    assert "\n" not in text
    assert "processed=1" in text
    assert "failures=1" in text
    assert "open" in text


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ({"path": "/a", "size": float("nan")}, "'size'"),
        ({"path": "/a", "when": datetime(2023, 1, 1)}, "'when'"),
        ({"path": "/a", "meta": {"k": [1, object()]}}, r"'meta\.k\[1\]'"),
        ({"path": "/a", "meta": {1: "x"}}, "'meta'"),
        ({"path": "/a", 3: "x"}, "keys must be strings"),
    ],
)
def test_value_json_cannot_carry_is_rejected_at_add(path: object, named: str) -> None:
    status = FileActionStatus("t", [], 1, None)
    with pytest.raises(InvalidPathError, match=named):
        status.add("processed", path)  # type: ignore[arg-type]
    assert sum(status.summary.values()) == 0


def test_nested_json_values_are_kept() -> None:
    status = FileActionStatus("t", [], 1, None)
    item = {"path": "/a", "meta": {"k": [1, 2.5, None, True, "s"]}, "size": 3}
    status.add("processed", item)
    payload = status.dump()
    assert payload["paths"] == [item]
    assert json.loads(json.dumps(payload))["paths"] == [item]
