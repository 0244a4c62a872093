"""``asyncstream run``'s feeder appends its input in chunks that grow."""

from __future__ import annotations

from typing import Any

from asyncstream._config import HubSettings
from asyncstream._deadline import Deadline
from asyncstream._hub_client import HubClient
from asyncstream.hub import running_hub
from asyncstream.run._feed import as_path_objects, feed_stream


class _CountingClient(HubClient):
    """A real client that notes the size of each append."""

    def __init__(self, settings: HubSettings) -> None:
        super().__init__(settings)
        self.appended: list[int] = []

    async def append_stream(self, stream_id: str, paths: Any, **kwargs: Any) -> Any:
        self.appended.append(len(paths))
        return await super().append_stream(stream_id, paths, **kwargs)


async def test_chunks_double_from_the_first_up_to_the_largest() -> None:
    async with running_hub(store="memory") as hub:
        settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
        async with _CountingClient(settings) as client:
            stream = await client.create_stream()
            paths = as_path_objects(f"/data/f{i}" for i in range(100))
            fed = await feed_stream(
                client,
                stream["id"],
                paths,
                chunk=5,
                max_chunk=20,
                deadline=lambda: Deadline.after(60),
            )
            page = await client.get_page(stream["url"], cursor=None, page_size=200)
    assert client.appended == [5, 10, 20, 20, 20, 20, 5]
    assert fed == 100
    assert [p["path"] for p in page["results"]] == [f"/data/f{i}" for i in range(100)]
