"""Property-based fuzzing: bad input gets a clear 4xx, never a 500, and stores nothing.

Two parts, both against one real hub (SQLite store, served over loopback by
``running_hub`` in a background thread so that Hypothesis drives it from plain
synchronous tests):

- Schemathesis generates requests for every operation of the hub's own OpenAPI
  document, valid and invalid, and checks each answer: no 5xx, a documented
  status, a body matching the documented schema, errors as
  ``{"error", "detail", ...}`` with a non-empty detail.
- Hypothesis generates raw JSON for the two ingest endpoints (results batches,
  stream appends): a valid body with exactly one thing broken, or arbitrary JSON.
  Every rejection must name the problem and leave the store as it was.

Examples are few and derandomized, so the file runs the same way every time and
in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from asyncstream._paths import STATES
from asyncstream.hub import RunningHub, running_hub
from asyncstream.hub._app import create_app
from asyncstream.hub._memory import MemoryStore
from asyncstream.hub._parsing import MAX_NESTING

FUZZ = settings(
    max_examples=75,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TASK = "fuzz-task"  # holds batch 0; every fuzzed batch is its batch 1
RESULTS = f"/api/tasks/{TASK}/results/"


@dataclass(frozen=True, slots=True)
class LiveHub:
    url: str
    headers: dict[str, str]
    stream: str  # an open stream holding two paths


@pytest.fixture(scope="module")
def live_hub() -> Iterator[LiveHub]:
    """A SQLite hub on loopback, served by its own event loop in a thread."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        async with running_hub(store="sqlite", faults=False) as hub:
            box["hub"], box["stop"] = hub, asyncio.Event()
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await box["stop"].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # pragma: no cover - reported below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="fuzz-hub", daemon=True)
    thread.start()
    assert ready.wait(30), "the hub did not start"
    if "error" in box:
        raise box["error"]
    hub: RunningHub = box["hub"]
    with httpx.Client(base_url=hub.url, headers=hub.headers, timeout=10) as client:
        ok = client.post(RESULTS, json=_batch(0), headers=_key(0))
        assert ok.status_code == 200, ok.text
        stream = client.post("/api/streams/", json={"paths": ["/s/0", "/s/1"]})
        assert stream.status_code == 201, stream.text
    try:
        yield LiveHub(hub.url, hub.headers, stream.json()["id"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)


@pytest.fixture(scope="module")
def client(live_hub: LiveHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_hub.url, headers=live_hub.headers, timeout=10) as c:
        yield c


def _batch(seq: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobid": 7,
        "task": "fuzz",
        "queue": "london.q#custom",
        "seq": seq,
        "items": {
            "processed": [{"path": "/fs/a", "size": 1}, "/fs/b"],
            "failures": [{"path": "/fs/c", "message": ["boom"]}],
        },
    }
    body.update(fields)
    return body


def _key(seq: int) -> dict[str, str]:
    return {"Idempotency-Key": f"{TASK}:{seq}", "Content-Type": "application/json"}


def _assert_clear_error(response: httpx.Response) -> dict[str, Any]:
    """A 4xx whose body is ``{"error", "detail", ...}`` with a non-empty detail."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()
    _assert_error_body(error)
    assert len(error["detail"]) < 2000, "a detail quotes at most a bounded excerpt"
    return error


def _assert_error_body(error: Any) -> None:
    assert isinstance(error, dict), error
    assert isinstance(error.get("error"), str), error
    assert error["error"], error
    assert isinstance(error.get("detail"), str), error
    assert error["detail"].strip(), error


def _snapshot(client: httpx.Client, stream: str) -> tuple[Any, ...]:
    """Everything a rejected request must not change."""
    task = client.get(f"/api/tasks/{TASK}/").json()
    results = client.get(RESULTS).json()
    info = client.get(f"/api/streams/{stream}/").json()
    page = client.get(f"/api/streams/{stream}/paths/").json()
    return task["summary"], task["batches"], results, info, page["results"]


# -- 1. Schemathesis: every operation of the OpenAPI document ----------------

# The document only: the app is built, never started, and its store never opened.
schema = schemathesis.openapi.from_dict(
    create_app(MemoryStore(), api_keys=["unused"]).openapi()
)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], allow_x00=True
)


# Every operation of the document, by label ("GET /api/health/"). Parametrized by
# pytest, not by ``schema.parametrize()``: under pytest 9 the items that makes
# share one node id, and pytest-xdist (scripts/test) schedules by node id, so it
# would run one operation of them all.
OPERATIONS = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_answers_as_documented(label: str, live_hub: LiveHub) -> None:
    operation = OPERATIONS[label]
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=cases)
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case[Any]) -> None:
        response = case.call(
            base_url=live_hub.url, headers=live_hub.headers, timeout=10
        )
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
                negative_data_rejection,
            ],
        )
        if response.status_code >= 400:
            _assert_error_body(response.json())

    answers_as_documented()


# -- 2. Hypothesis: raw bodies for the two ingest endpoints ------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "x" * 100_000, "\u00e9\u4e2d\U0001f600", "\x00", "NaN"])
)
any_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
not_a_string = any_json.filter(lambda v: not isinstance(v, str))
not_an_int = any_json.filter(lambda v: type(v) is not int)
not_a_list = any_json.filter(lambda v: not isinstance(v, list))
unknown_state = st.text(max_size=300).filter(lambda s: s not in STATES)
bad_path_object = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.just("")
    | st.lists(any_json, max_size=3)
    | st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != "path"), any_json, max_size=3
    )
    | st.builds(lambda p: {"path": p}, not_a_string | st.just(""))
    | st.builds(
        lambda m: {"path": "/fs/x", "message": m},
        any_json.filter(
            lambda m: (
                not isinstance(m, str)
                and not (isinstance(m, list) and all(isinstance(x, str) for x in m))
            )
        ),
    )
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _dumps(body: Any, ascii_only: bool) -> bytes:
    return json.dumps(body, ensure_ascii=ascii_only).encode()


@dataclass(frozen=True)
class Broken:
    """A body with one known fault, the status it must get and the field named."""

    raw: bytes
    status: int
    field: str | None
    why: str


@st.composite
def broken_batches(draw: st.DrawFn) -> Broken:
    body = _batch(1)
    kind = draw(
        st.sampled_from(
            [
                "missing",
                "type",
                "seq",
                "state",
                "path_object",
                "deep",
                "not_object",
                "malformed",
                "nan",
                "surrogate",
            ]
        )
    )
    ascii_only = draw(st.booleans())
    if kind == "missing":
        name = draw(st.sampled_from(["task", "seq", "items"]))
        del body[name]
        return Broken(_dumps(body, ascii_only), 422, name, f"missing {name}")
    if kind == "type":
        name, value = draw(
            st.one_of(
                st.tuples(st.just("task"), not_a_string),
                st.tuples(st.just("seq"), not_an_int),
                st.tuples(
                    st.just("items"),
                    any_json.filter(lambda v: not isinstance(v, dict)),
                ),
                st.tuples(
                    st.just("jobid"),
                    any_json.filter(lambda v: type(v) not in (int, str, type(None))),
                ),
                st.tuples(
                    st.just("queue"),
                    any_json.filter(lambda v: type(v) not in (str, type(None))),
                ),
            )
        )
        body[name] = value
        return Broken(_dumps(body, ascii_only), 422, name, f"{name}={value!r:.60}")
    if kind == "seq":  # not the Idempotency-Key's seq
        body["seq"] = draw(st.integers().filter(lambda n: n != 1))
        return Broken(_dumps(body, ascii_only), 422, "seq", "seq mismatch")
    if kind == "state":
        state = draw(unknown_state)
        body["items"][state] = draw(st.lists(st.just("/fs/z"), max_size=2))
        return Broken(_dumps(body, ascii_only), 422, f"items.{state:.100}", "state")
    if kind == "path_object":
        state = draw(st.sampled_from(["processed", "failures"]))
        objs = body["items"][state]
        index = draw(st.integers(0, len(objs)))
        objs.insert(index, draw(bad_path_object))
        field = f"items.{state}[{index}]"
        return Broken(_dumps(body, ascii_only), 422, field, "path object")
    if kind == "deep":
        extra = _nested(draw(st.integers(MAX_NESTING, 3 * MAX_NESTING)))
        body["items"]["processed"].append({"path": "/fs/deep", "x": extra})
        return Broken(_dumps(body, ascii_only), 422, "items.processed[2]", "deep")
    if kind == "not_object":
        value = draw(any_json.filter(lambda v: not isinstance(v, dict)))
        return Broken(_dumps(value, ascii_only), 422, "body", "not an object")
    if kind == "malformed":
        raw = _dumps(body, ascii_only)
        cut = draw(st.integers(0, len(raw) - 1))
        junk = draw(
            st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xa0\x80", b"[" * 5000])
        )
        return Broken(raw[:cut] + junk, 400, None, "malformed")
    if kind == "nan":
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400"]))
        raw = _dumps(body, True).replace(b'"size": 1', f'"size": {token}'.encode())
        return Broken(raw, 400, None, token)
    # A lone surrogate escape (valid JSON, invalid Unicode) somewhere in a string.
    half = draw(st.sampled_from(["\\ud800", "\\udfff", "\\udbff\\ud800"]))
    where, field = draw(
        st.sampled_from(
            [
                (b'"/fs/a"', "items.processed[0].path"),
                (b'"fuzz"', "task"),
                (b'"boom"', "items.failures[0].message[0]"),
                (b'"size"', "items.processed[0]"),
            ]
        )
    )
    raw = _dumps(body, True).replace(where, where[:-1] + half.encode() + b'"', 1)
    return Broken(raw, 422, field, "surrogate")


@given(broken=broken_batches())
@FUZZ
def test_a_broken_batch_is_refused_by_name_and_stores_nothing(
    client: httpx.Client, live_hub: LiveHub, broken: Broken
) -> None:
    before = _snapshot(client, live_hub.stream)
    response = client.post(RESULTS, content=broken.raw, headers=_key(1))
    error = _assert_clear_error(response)
    assert response.status_code == broken.status, (broken.why, error)
    if broken.field is not None:
        assert error.get("field", "").startswith(broken.field), (broken.why, error)
    assert _snapshot(client, live_hub.stream) == before


@given(body=any_json, as_ascii=st.booleans())
@FUZZ
def test_arbitrary_json_is_never_a_server_error(
    client: httpx.Client, live_hub: LiveHub, body: Any, as_ascii: bool
) -> None:
    """Random JSON (whole body, or in place of one field) for both endpoints."""
    before = _snapshot(client, live_hub.stream)
    stream = f"/api/streams/{live_hub.stream}/paths/"
    for target, raw in [
        (RESULTS, _dumps(body, as_ascii)),
        (RESULTS, _dumps({**_batch(2), "items": {"processed": body}}, as_ascii)),
        (RESULTS, _dumps({**_batch(2), "items": body}, as_ascii)),
        (stream, _dumps(body, as_ascii)),
        (stream, _dumps({"paths": body}, as_ascii)),
    ]:
        response = client.post(target, content=raw, headers=_key(2))
        if response.status_code < 400:  # a valid body after all: undo nothing
            return
        _assert_clear_error(response)
    assert _snapshot(client, live_hub.stream) == before


@st.composite
def broken_appends(draw: st.DrawFn) -> Broken:
    kind = draw(st.sampled_from(["paths", "object", "missing", "body", "bad"]))
    ascii_only = draw(st.booleans())
    paths: list[Any] = ["/s/x", {"path": "/s/y", "site": "london"}]
    if kind == "paths":
        raw = _dumps({"paths": draw(not_a_list)}, ascii_only)
        return Broken(raw, 422, "paths", "paths not a list")
    if kind == "object":
        index = draw(st.integers(0, len(paths)))
        paths.insert(index, draw(bad_path_object))
        return Broken(
            _dumps({"paths": paths}, ascii_only), 422, f"paths[{index}]", "object"
        )
    if kind == "missing":
        other = draw(st.dictionaries(st.text(max_size=8), any_json, max_size=3))
        other.pop("paths", None)
        return Broken(_dumps(other, ascii_only), 422, "paths", "missing paths")
    if kind == "body":
        value = draw(any_json.filter(lambda v: not isinstance(v, dict)))
        return Broken(_dumps(value, ascii_only), 422, "body", "not an object")
    raw = draw(
        st.sampled_from(
            [
                b'{"paths": ["/s/\\ud800"]}',
                b'{"paths": [{"path": "/s/x", "n": NaN}]}',
                b'{"paths": [{"path": "/s/x", "n": 1e999}]}',
                b'{"paths": ["/s/x"',
                b"\xff\xfe",
                b"",
                b"[" * 100_000,
            ]
        )
    )
    return Broken(raw, 422 if b"ud800" in raw else 400, None, repr(raw[:30]))


@given(broken=broken_appends())
@FUZZ
def test_a_broken_append_is_refused_by_name_and_stores_nothing(
    client: httpx.Client, live_hub: LiveHub, broken: Broken
) -> None:
    before = _snapshot(client, live_hub.stream)
    url = f"/api/streams/{live_hub.stream}/paths/"
    response = client.post(
        url, content=broken.raw, headers={"Content-Type": "application/json"}
    )
    error = _assert_clear_error(response)
    assert response.status_code == broken.status, (broken.why, error)
    if broken.field is not None:
        assert error.get("field", "").startswith(broken.field), (broken.why, error)
    assert _snapshot(client, live_hub.stream) == before


# -- 3. Regressions: each input the fuzzing found, as a plain example --------


@pytest.mark.parametrize(
    ("raw", "headers", "status", "field", "named"),
    [
        # A lone surrogate: was a 500 (SQLite cannot encode it), or stored and a
        # 500 on every later read of the task.
        (b'{"task":"x","seq":1,"items":{"processed":["/a\\ud800"]}}', {}, 422,
         "items.processed[0]", "not valid Unicode"),
        (b'{"task":"x","seq":1,"items":{"processed":[{"path":"/a","k":"\\udfff"}]}}',
         {}, 422, "items.processed[0].k", "not valid Unicode"),
        # NaN / Infinity / 1e400: were stored, and read back as null.
        (b'{"task":"x","seq":1,"items":{"processed":[{"path":"/a","n":NaN}]}}',
         {}, 400, None, "NaN is not valid JSON"),
        (b'{"task":"x","seq":1,"items":{"processed":[{"path":"/a","n":1e400}]}}',
         {}, 400, None, "1e400 is out of range"),
        # Nested past the recursion limit: was a 500 (RecursionError).
        (b"[" * 100_000, {}, 400, None, "nested too deeply"),
        # Nested 900 deep: was stored, then a 500 on every read of the task.
        (b'{"task":"x","seq":1,"items":{"processed":[{"path":"/a","x":'
         + b"[" * 900 + b"]" * 900 + b"}]}}",
         {}, 422, "items.processed[0].x", f"deeper than {MAX_NESTING}"),
        # Encoded surrogate bytes (CESU-8): json.loads(bytes) let them through.
        (b'{"task":"x","seq":1,"items":{"processed":["/a\xed\xa0\x80"]}}', {}, 400,
         None, "not valid utf-8"),
        # A seq past SQLite's 64-bit INTEGER: was a 500 (OverflowError).
        (b'{"task":"x","seq":18446744073709551616,"items":{}}',
         {"Idempotency-Key": f"{TASK}:18446744073709551616"}, 422,
         "Idempotency-Key", "out of range"),
        # A superscript digit passes str.isdigit(): was a 500 (int() refused it).
        (b'{"task":"x","seq":1,"items":{}}', {"Idempotency-Key": f"{TASK}:\u00b2"},
         422, "Idempotency-Key", "is not"),
    ],
)  # fmt: skip
def test_regression_bad_batches(
    client: httpx.Client,
    live_hub: LiveHub,
    raw: bytes,
    headers: dict[str, str],
    status: int,
    field: str | None,
    named: str,
) -> None:
    before = _snapshot(client, live_hub.stream)
    sent = {**_key(1), **headers}
    encoded = {k.encode(): v.encode("latin-1") for k, v in sent.items()}
    response = client.post(RESULTS, content=raw, headers=encoded)
    error = _assert_clear_error(response)
    assert response.status_code == status, error
    assert error.get("field") == field or (field and error["field"].startswith(field))
    assert named in error["detail"], error
    assert _snapshot(client, live_hub.stream) == before


@pytest.mark.parametrize(
    ("cursor_text", "url"),
    [
        ("s:18446744073709551616", "/api/streams/{stream}/paths/"),
        ("r:18446744073709551616.0", f"/api/tasks/{TASK}/results/"),
    ],
)
def test_regression_cursor_past_int64_is_a_400(
    client: httpx.Client, live_hub: LiveHub, cursor_text: str, url: str
) -> None:
    """Was a 500: SQLite cannot bind an integer past 64 bits."""
    cursor = base64.urlsafe_b64encode(cursor_text.encode()).decode().rstrip("=")
    response = client.get(url.format(stream=live_hub.stream), params={"cursor": cursor})
    assert response.status_code == 400
    assert _assert_clear_error(response)["error"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b'{"batches": 0, "payload": {"a": NaN}}', "not a JSON number"),
        (b'{"batches": 0, "payload": {"a": "\\ud800"}}', "not valid Unicode"),
        (
            b'{"batches": 0, "payload": {"a": ' + b"[" * 300 + b"]" * 300 + b"}}",
            f"deeper than {MAX_NESTING}",
        ),
    ],
)
def test_regression_complete_refuses_an_unreadable_payload(
    client: httpx.Client, payload: bytes, named: str
) -> None:
    """Was stored, then a 500 on every GET of the task (or NaN read as null)."""
    response = client.post(
        "/api/tasks/fuzz-complete/complete",
        content=payload,
        headers={"Content-Type": "application/json"},
    )
    error = _assert_clear_error(response)
    assert response.status_code == 422
    assert error["field"] == "body.payload"
    assert named in error["detail"]
    assert client.get("/api/tasks/fuzz-complete/").status_code == 404


def test_regression_complete_with_huge_batches_answers_at_once(
    client: httpx.Client,
) -> None:
    """Was a hang: listing the missing seqs walked range(batches) in the event
    loop (10**8 took 12 s, 2**62 forever), stalling every other request."""
    url = "/api/tasks/fuzz-big/"
    sent = client.post(
        url + "results/",
        json={"task": "x", "seq": 1, "items": {}},
        headers={"Idempotency-Key": "fuzz-big:1"},
    )
    assert sent.status_code == 200
    response = client.post(url + "complete", json={"batches": 2**62}, timeout=5)
    error = _assert_clear_error(response)
    assert response.status_code == 409
    assert error["missing_count"] == 2**62 - 1
    assert error["missing"][:3] == [0, 2, 3]
    assert len(error["missing"]) == 1000
    too_big = client.post(url + "complete", json={"batches": 2**63})
    assert too_big.status_code == 422
    assert client.get(url).json()["state"] == "running"


@pytest.mark.parametrize("batches", [False, True, "0", 0.0, None])
def test_regression_complete_takes_only_an_integer_batches(
    client: httpx.Client, batches: Any
) -> None:
    """Was a 200: pydantic's lax mode read ``false`` as 0 and completed the task."""
    response = client.post(
        "/api/tasks/fuzz-lax/complete", json={"batches": batches, "payload": None}
    )
    error = _assert_clear_error(response)
    assert response.status_code == 422
    assert error["field"] == "body.batches"
    assert client.get("/api/tasks/fuzz-lax/").status_code == 404


def test_regression_a_state_key_in_a_path_object_does_not_mislabel_results(
    client: httpx.Client,
) -> None:
    """Was wrong: the result of ``?state=processed`` said ``"state": "failures"``."""
    body = {"task": "x", "seq": 0, "items": {"processed": [{"path": "/a", "state": 1}]}}
    posted = client.post(
        "/api/tasks/fuzz-state/results/",
        json=body,
        headers={"Idempotency-Key": "fuzz-state:0"},
    )
    assert posted.status_code == 200
    page = client.get("/api/tasks/fuzz-state/results/", params={"state": "processed"})
    assert page.json()["results"] == [{"state": "processed", "path": "/a"}]
