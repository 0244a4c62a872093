"""A stream reference names a stream on the task's hub, nowhere else.

A task's ``paths`` come from whoever queued the task. Found by feeding a stream
reference with an absolute URL of another server: the reader fetched its pages
from there, sending that server the hub's API key and taking the paths it made
up (to a delete handler: files to delete). Every stream is now read from the
hub, an absolute URL's path on the hub (a hub may spell its own host otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.hub import RunningHub, running_hub
from asyncstream.utils.inputs import expand_paths

PAGE = (
    b'{"results": [{"path": "/etc/passwd"}], "next": null, "count": 1, "closed": true}'
)


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite", api_key="the-hub-key") as running:
        yield running


async def hub_stream(hub: RunningHub) -> str:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
        stream = await client.create_stream([{"path": "/data/a"}])
        await client.close_stream(stream["id"])
    url: str = stream["url"]
    return url


async def test_a_stream_url_of_another_server_is_read_from_the_hub(
    hub: RunningHub,
) -> None:
    requests: list[bytes] = []

    async def other_server(client: SocketStream) -> None:
        async with client:
            requests.append(await client.receive())
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            length = b"Content-Length: %d\r\n\r\n" % len(PAGE)
            await client.send(head + length + PAGE)

    stream = await hub_stream(hub)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, other_server)
        reader = expand_paths(
            [{"stream": f"http://127.0.0.1:{port}{stream}", "count": 1}],
            hub_url=hub.url,
            api_key="the-hub-key",
        )
        paths = [p async for p in reader]
        group.cancel_scope.cancel()
    assert requests == []
    assert paths == [{"path": "/data/a"}]


async def test_an_absolute_url_on_the_hub_itself_is_read(hub: RunningHub) -> None:
    stream = await hub_stream(hub)
    reader = expand_paths(
        [{"stream": hub.url + stream, "count": 1}], hub_url=hub.url, api_key=hub.api_key
    )
    assert [p async for p in reader] == [{"path": "/data/a"}]
