"""File names as the file system has them: bytes, not necessarily UTF-8.

Python's ``os`` functions give a name that is not UTF-8 as a ``str`` with
surrogate escapes (``os.fsdecode``); protocol v1 carries them as ``\\udcXX``
JSON escapes. These tests make such files for real, send their names through an
input stream, a task and its results to the hub over each store, and act on
what comes back.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncstream import AsyncStreamTaskResults, InvalidPathError, expand_paths
from asyncstream._config import HubSettings
from asyncstream._hub_answers import encode_json
from asyncstream._hub_client import HubClient
from asyncstream._identity import TaskIdentity
from asyncstream._paths import to_path_object
from asyncstream.hub import RunningHub

from .conftest import batch, key

# The names as the file system holds them: bytes that are not UTF-8, a Latin-1
# name, valid UTF-8 and plain ASCII.
RAW_NAMES = [b"\xffbad.txt", b"latin1-\xe9t\xe9", "café-ü.txt".encode(), b"plain"]


JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def hub_client(any_hub: RunningHub) -> AsyncIterator[HubClient]:
    async with HubClient(HubSettings(any_hub.url, any_hub.api_key)) as opened:
        yield opened


def make_tree(root: Path) -> list[str]:
    """Files under ``root`` named by :data:`RAW_NAMES`; their paths as ``os``
    gives them (sorted)."""
    root.mkdir()
    for raw in RAW_NAMES:
        with open(os.fsencode(root) + b"/" + raw, "wb") as out:
            out.write(raw)
    walked = sorted(entry.path for entry in os.scandir(root))
    assert walked == sorted(os.path.join(root, os.fsdecode(raw)) for raw in RAW_NAMES)
    return walked


async def all_results(client: HubClient, taskid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await client.get_results(taskid, cursor=cursor, page_size=3)
        found += page["results"]
        if (cursor := page["next"]) is None:
            return found


async def test_names_that_are_not_utf8_travel_losslessly_and_name_their_files(
    any_hub: RunningHub, hub_client: HubClient, tmp_path: Path
) -> None:
    names = make_tree(tmp_path / "tree")
    info = await hub_client.create_stream()
    first = [{"path": p} for p in names[:2]]
    await hub_client.append_stream(info["id"], first, offset=0)
    # An object with other keys: its name goes another way through the SQL stores.
    rest = [{"path": p, "was": p} for p in names[2:]]
    await hub_client.append_stream(info["id"], rest, offset=2)
    # A retried chunk is recognised as the one stored: compared, not appended.
    again = await hub_client.append_stream(info["id"], first, offset=0)
    assert again["duplicate"] is True
    assert again["count"] == len(names)
    await hub_client.close_stream(info["id"])
    paths = [{"stream": info["url"], "count": len(names)}]
    options = {"hub_url": any_hub.url, "api_key": any_hub.api_key, "batch_size": 3}

    seen = []
    async with AsyncStreamTaskResults(
        "delete", paths, "job-1", "q", "names", **options
    ) as status:
        async for item in expand_paths(
            paths, hub_url=any_hub.url, api_key=any_hub.api_key
        ):
            seen.append(item["path"])
            os.unlink(item["path"])  # the handler acts on exactly what it got
            await status.add("processed", item, message=f"deleted {item['path']}")
        await status.dump()

    assert seen == names
    assert os.listdir(tmp_path / "tree") == []  # every file, and only those, went
    results = await all_results(hub_client, "names")
    assert [r["path"] for r in results] == names
    assert [r["message"] for r in results] == [[f"deleted {p}"] for p in names]
    assert [r.get("was") for r in results[2:]] == names[2:]
    assert {os.fsencode(r["path"]).rsplit(b"/", 1)[1] for r in results} == set(
        RAW_NAMES
    )
    task = await hub_client.get_task("names")
    assert task["state"] == "completed"
    assert task["summary"]["processed"] == 4

    # A payload holding such names is stored and read back as it was.
    payload = {"paths": [{"path": p} for p in names], "note": names[0]}
    identity = TaskIdentity("inline", "q", "delete", "job-1")
    done = await hub_client.complete_task("inline", 0, payload, identity=identity)
    assert done["state"] == "completed"
    assert (await hub_client.get_task("inline"))["payload"] == payload


async def test_on_the_wire_a_byte_is_a_udcxx_escape_and_utf8_stays_as_it_is(
    any_hub: RunningHub,
) -> None:
    odd = os.fsdecode(b"/fs/\xffbad")
    utf8 = "/fs/café"
    assert encode_json({"p": utf8}) == '{"p":"/fs/café"}'.encode()  # unchanged
    assert encode_json({"p": odd}) == b'{"p":"/fs/\\udcffbad"}'
    async with httpx.AsyncClient(base_url=any_hub.url, headers=any_hub.headers) as http:
        for taskid, path in (("utf8", utf8), ("odd", odd)):
            body = encode_json(batch(0, {"processed": [path]}))
            answer = await http.post(
                f"/api/tasks/{taskid}/results/", content=body, headers=key(taskid, 0)
            )
            assert answer.status_code == 200, answer.text
        utf8_page = await http.get("/api/tasks/utf8/results/")
        odd_page = await http.get("/api/tasks/odd/results/")
    assert '"path":"/fs/café"'.encode() in utf8_page.content
    assert b'"path":"/fs/\\udcffbad"' in odd_page.content
    assert json.loads(odd_page.content)["results"][0]["path"] == odd


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # Lone surrogates that are no byte of a file name.
        (b'{"paths": ["/a/\\ud800"]}', "paths[0]"),
        (b'{"paths": [{"path": "/a", "k": "\\udfff"}]}', "paths[0].k"),
        (b'{"paths": [{"path": "/a", "k": "\\udc7f"}]}', "paths[0].k"),
        # A second spelling of a valid UTF-8 name ("\u00e9" as its two bytes).
        (b'{"paths": ["/a/\\udcc3\\udca9"]}', "paths[0]"),
    ],
)
async def test_other_lone_surrogates_are_refused_naming_the_field(
    client: httpx.AsyncClient, body: bytes, field: str
) -> None:
    answer = await client.post("/api/streams/", content=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert "not valid Unicode" in answer.json()["detail"]


@pytest.mark.parametrize("name", ["task", "queue", "jobid"])
async def test_a_byte_escape_is_no_task_name_queue_or_job(
    client: httpx.AsyncClient, name: str
) -> None:
    odd = os.fsdecode(b"x\xff")
    results = encode_json(batch(0, {"processed": ["/a"]}, **{name: odd}))
    answer = await client.post(
        "/api/tasks/t/results/", content=results, headers=key("t", 0)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == name
    complete = encode_json({"batches": 0, "task": "t", name: odd})
    answer = await client.post("/api/tasks/t/complete", content=complete, headers=JSON)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == f"body.{name}"
    assert (await client.get("/api/tasks/t/")).status_code == 404


@pytest.mark.parametrize(
    "value",
    [
        "/a/\ud800",
        {"path": "/a", "k": "\udfff"},
        {"path": "/a", "k\ud800": 1},
        {"path": "/a", "message": ["\udbff"]},
        "/a/\udcc3\udca9",
    ],
)
def test_add_refuses_a_lone_surrogate_that_is_no_byte_of_a_name(value: Any) -> None:
    with pytest.raises(InvalidPathError, match="is not valid Unicode"):
        to_path_object(value)


def test_add_takes_a_name_as_os_gives_it() -> None:
    odd = os.fsdecode(b"/fs/\xff\xfe-\xe9")
    assert to_path_object(odd) == {"path": odd}
    assert to_path_object({"path": odd, "n": odd}, message=odd) == {
        "path": odd,
        "n": odd,
        "message": [odd],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # A key with a byte's escape, whose value is refused: was a 500, the
        # error naming the key could not be encoded.
        (
            b'{"task":"t","seq":0,"items":{"processed":[{"path":"/a","k\\udcff":'
            + b"[" * 70
            + b"]" * 70
            + b"}]}}",
            "items.processed[0].k\\udcff",
        ),
        (b'{"task":"t","seq":0,"items":{"x\\udcff":["/a"]}}', "items.x\\udcff"),
    ],
)
async def test_an_error_naming_a_key_with_a_byte_escape_is_sent(
    client: httpx.AsyncClient, body: bytes, field: str
) -> None:
    answer = await client.post(
        "/api/tasks/t/results/", content=body, headers=key("t", 0)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"].startswith(field)
