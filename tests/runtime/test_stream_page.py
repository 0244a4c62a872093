"""A stream page kept as the bytes of its answer (the page header extension):
checked against its header when decoded, refused when the two disagree."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from asyncstream._exceptions import HubProtocolError, HubRejectedError
from asyncstream._stream_page import (
    PAGE_HEADER,
    PageAnswer,
    decode_results,
    parse_page,
    parse_page_answer,
    read_page_answer,
)
from asyncstream.utils.inputs import expand_paths
from tests.runtime._pager_fakes import HUB_URL, FakeStreams

URL = "/api/streams/s1/paths/"
RESULTS = [{"path": "/a"}, {"path": "/b", "size": 2}]
FIELDS: dict[str, Any] = {"next": "c2", "count": 10, "closed": True, "ahead": ["c4"]}


def answer(
    header: Any = None, body: Any = None, *, status: int = 200
) -> httpx.Response:
    header = {"results": len(RESULTS), **FIELDS} if header is None else header
    body = {"results": RESULTS, **FIELDS} if body is None else body
    request = httpx.Request("GET", HUB_URL + URL)
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={PAGE_HEADER: json.dumps(header)},
        request=request,
    )


def test_a_page_with_its_header_waits_as_bytes_until_decoded() -> None:
    raw = read_page_answer(answer())
    assert isinstance(raw, PageAnswer)
    page = parse_page_answer(raw, URL)
    assert (page.results, page.size, page.next, page.ahead) == (None, 2, "c2", ("c4",))
    assert page.body is not None
    assert decode_results(page, URL) == RESULTS


def test_a_page_without_the_header_is_decoded_at_once() -> None:
    response = answer()
    del response.headers[PAGE_HEADER]
    page = parse_page_answer(read_page_answer(response), URL)
    assert page.results == RESULTS
    assert page.body is None


@pytest.mark.parametrize(
    "header",
    [
        {"results": 3, **FIELDS},
        {"results": 2, **FIELDS, "next": "c3"},
        {"results": 2, **FIELDS, "ahead": []},
        {"results": 2, **FIELDS, "count": 11},
    ],
)
def test_a_body_that_contradicts_its_header_is_a_protocol_error(
    header: dict[str, Any],
) -> None:
    page = parse_page_answer(read_page_answer(answer(header)), URL)
    with pytest.raises(HubProtocolError, match="header said"):
        decode_results(page, URL)


@pytest.mark.parametrize("header", ["not json", [], {"results": "2"}, {"next": "c"}])
def test_a_header_outside_the_protocol_is_refused(header: Any) -> None:
    response = answer()
    response.headers[PAGE_HEADER] = (
        header if isinstance(header, str) else json.dumps(header)
    )
    with pytest.raises(HubProtocolError, match=PAGE_HEADER):
        parse_page_answer(read_page_answer(response), URL)


def test_a_file_name_that_is_not_utf8_survives_the_late_decoding() -> None:
    # The wire form of the bytes of such a name: \udcXX escapes in ASCII JSON,
    # which orjson refuses and the json module keeps.
    results = [{"path": "/caf\udce9"}]
    body = json.dumps({"results": results, **FIELDS}).encode("ascii")
    page = parse_page_answer(PageAnswer({"results": 1, **FIELDS}, body), URL)
    assert decode_results(page, URL) == results


def test_an_error_answer_with_the_header_is_still_an_error() -> None:
    with pytest.raises(HubRejectedError):
        read_page_answer(answer(status=404))


async def test_expand_paths_reads_a_hub_with_the_page_header() -> None:
    fake = FakeStreams(ahead=32, page_header=True)
    refs = [fake.add("s1", 95), fake.add("s2", 40)]
    inputs = expand_paths(
        refs, hub_url=HUB_URL, transport=fake.transport(), page_size=10
    )
    read = [item["path"] async for item in inputs]
    assert read == [
        *(f"/data/s1/file{i:07d}" for i in range(95)),
        *(f"/data/s2/file{i:07d}" for i in range(40)),
    ]


async def test_expand_paths_reports_a_hub_whose_header_lies() -> None:
    fake = FakeStreams(
        ahead=32,
        page_header=True,
        edit_header=lambda header: {**header, "count": header["count"] + 1},
    )
    inputs = expand_paths(
        [fake.add("s1", 95)], hub_url=HUB_URL, transport=fake.transport(), page_size=10
    )

    async def read_all() -> None:
        async with inputs:
            async for _ in inputs:
                pass

    with pytest.raises(HubProtocolError, match="header said"):
        await read_all()


class _Path(str):
    pass


class _Item(dict[str, Any]):
    pass


@pytest.mark.parametrize(
    "results",
    [
        [{"path": "/a"}, {"path": "/b", "size": 2}],
        [{"path": _Path("/a")}],  # not what JSON gives, but a path all the same
        [_Item(path="/a")],
    ],
)
def test_every_path_object_passes_the_check(results: list[Any]) -> None:
    page = parse_page({"results": results, **FIELDS}, URL)
    assert page.results == results


@pytest.mark.parametrize(
    ("results", "bad"),
    [
        ([{"path": "/a"}, {"size": 2}], 1),
        ([{"path": "/a"}, {"path": ""}], 1),
        ([{"path": 3}, {"path": "/b"}], 0),
        ([{"path": "/a"}, {"path": "/b"}, "/c"], 2),
        ([["/a"]], 0),
        ([{"path": "/a"}, None], 1),
    ],
)
def test_the_first_item_that_is_no_path_object_is_named(
    results: list[Any], bad: int
) -> None:
    with pytest.raises(HubProtocolError, match=rf"results\[{bad}\] is not a path"):
        parse_page({"results": results, **FIELDS}, URL)
