"""A stream append whose answer is lost is retried, and stored once.

Found by the soak: without an offset, ``feed_stream`` (``asyncstream run``'s
feeder) appended a chunk twice when the hub committed it and the connection
dropped before the answer, so the task read and reported those paths twice.
"""

from __future__ import annotations

from asyncstream._config import HubSettings
from asyncstream._deadline import Deadline
from asyncstream._hub_client import HubClient
from asyncstream._retry import RetryPolicy
from asyncstream.hub import running_hub
from asyncstream.run._feed import as_path_objects, feed_stream


async def test_feed_stream_appends_each_chunk_once_when_an_answer_is_lost() -> None:
    async with running_hub(store="sqlite") as hub:
        settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
        async with HubClient(settings, retry_policy=RetryPolicy(0.01, 2, 0.1)) as c:
            stream = await c.create_stream()
            # The first append is committed, then its connection is reset.
            hub.faults.drop_after_commit(1, path_prefix=f"/api/streams/{stream['id']}/")
            paths = as_path_objects(f"/data/f{i}" for i in range(10))
            fed = await feed_stream(
                c, stream["id"], paths, chunk=5, deadline=lambda: Deadline.after(1e9)
            )
            page = await c.get_page(stream["url"], cursor=None, page_size=100)
    assert hub.faults.injected["drop"] == 1
    assert fed == 10
    assert [p["path"] for p in page["results"]] == [f"/data/f{i}" for i in range(10)]
    assert page["count"] == 10
