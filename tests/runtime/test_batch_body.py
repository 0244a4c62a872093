"""Batch bodies: orjson, the standard-library fallback, and sizes known in advance."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncstream._batch_body import BatchEnvelope, encode_item, item_size
from asyncstream._batching import BatchPolicy
from asyncstream._identity import TaskIdentity
from asyncstream.hub import running_hub
from asyncstream.streamstatus import AsyncStreamTaskResults

HEADER = TaskIdentity("t1", "london.q#custom", "my-plugin", 7)


def test_a_path_with_a_lone_surrogate_encodes_to_json_that_loads_back() -> None:
    policy = BatchPolicy(HEADER, batch_size=10, linger=1.0)
    # A file name that is not UTF-8, as os.listdir gives it (surrogateescape),
    # beside one that is, so the fallback must keep both exact.
    policy.add("processed", {"path": "/data/\udcffbad.txt"})
    policy.add("processed", {"path": "/data/caf\u00e9", "size": 2**70})
    batch = policy.cut()
    assert batch is not None
    assert b"\\udcff" in batch.body
    batch.body.decode("utf-8")  # strict: valid UTF-8, no raw surrogate
    assert json.loads(batch.body)["items"] == {
        "processed": [
            {"path": "/data/\udcffbad.txt"},
            {"path": "/data/caf\u00e9", "size": 2**70},
        ]
    }


def test_an_integer_beyond_64_bits_is_encoded_exactly() -> None:
    for value in (2**64, -(2**63) - 1, 10**40):
        body = encode_item({"path": "/a", "n": value})
        assert json.loads(body) == {"path": "/a", "n": value}


_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=8)
)
_VALUE = st.recursive(
    _LEAF,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_OBJ = st.builds(
    lambda path, extra: {"path": path, **extra},
    st.text(min_size=1, max_size=20),
    st.dictionaries(st.sampled_from(["size", "message", "x"]), _VALUE, max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(objs=st.lists(_OBJ, min_size=1, max_size=6), seq=st.integers(0, 2**63 - 1))
def test_item_sizes_bound_the_body_and_it_loads_back(
    objs: list[dict[str, Any]], seq: int
) -> None:
    envelope = BatchEnvelope(7, "my-plugin", "london.q#custom")
    half = len(objs) // 2
    items: dict[Any, list[dict[str, Any]]] = {
        "failures": objs[:half],
        "processed": objs[half:],
    }
    body = envelope.encode(seq, items)
    sizes = [item_size(obj) for obj in objs]
    exact = [len(encode_item(obj)) for obj in objs]
    assert all(size >= n for size, n in zip(sizes, exact, strict=True))
    # Exact but for a path alone in printable ASCII (bounded, not scanned).
    assert [s for s, o in zip(sizes, objs, strict=True) if len(o) > 1] == [
        n for n, o in zip(exact, objs, strict=True) if len(o) > 1
    ]
    assert len(body) <= envelope.overhead + sum(sizes) + len(objs)
    assert json.loads(body)["items"] == {k: v for k, v in items.items() if v}


async def test_an_integer_beyond_64_bits_round_trips_through_the_hub() -> None:
    big = 2**64 + 12345
    async with running_hub(store="memory") as hub:
        async with AsyncStreamTaskResults(
            "p", [], 1, None, "big-int", hub_url=hub.url, api_key=hub.api_key
        ) as status:
            await status.add("processed", {"path": "/data/a", "inode": big})
            await status.dump()
        headers = {"Authorization": f"Api-Key {hub.api_key}"}
        async with httpx.AsyncClient(base_url=hub.url, headers=headers) as client:
            page = (await client.get("/api/tasks/big-int/results/")).json()
    [stored] = page["results"]
    assert stored["path"] == "/data/a"
    assert stored["inode"] == big
