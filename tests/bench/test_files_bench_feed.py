"""The file rows' setup leaves none of its requests to the task's memory figure."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from asyncstream.bench._filework import _feed
from asyncstream.bench._hubs import API_KEY
from asyncstream.bench._workload import Workload
from asyncstream.hub import HubProcess


@pytest.fixture
def streams_hub() -> Iterator[str]:
    hub = HubProcess(None, api_key=API_KEY, store="memory")
    hub.start()
    try:
        yield hub.url
    finally:
        hub.stop()
        hub.log_path.unlink(missing_ok=True)


def _requests() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, httpx.Request))


def test_feed_leaves_no_request_for_the_cyclic_collector(streams_hub: str) -> None:
    w = Workload(25, "feed-test", streams_url=streams_hub, api_key=API_KEY)
    gc.collect()
    gc.disable()  # only what _feed itself frees counts
    try:
        before = _requests()
        reference = _feed(w, "delete", "/scratch/source")
        assert _requests() == before
    finally:
        gc.enable()
    assert reference["count"] == 25
    with httpx.Client(headers=w.headers) as client:
        page = client.get(reference["stream"], params={"page_size": 100}).json()
    assert [p["path"] for p in page["results"]][:2] == [
        "/scratch/source/d00000/f0",
        "/scratch/source/d00000/f1",
    ]
