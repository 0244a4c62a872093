"""Bug found by the soak's producer: a stream append whose answer is lost is
appended again, so the task reads (and reports) those paths twice.

``POST /api/streams/{id}/paths/`` carries no idempotency key in protocol v1, yet
:func:`asyncstream._feed.feed_stream` (``asyncstream run``'s feeder) sends it
through ``HubClient.append_stream(..., deadline=...)``, which retries transport
errors. When the hub commits the chunk and the connection drops before the
answer (a crash, a reset, a reply slower than the client's read timeout), the
retry appends the same chunk a second time.
"""

from __future__ import annotations

import pytest

from asyncstream._config import HubSettings
from asyncstream._feed import as_path_objects, feed_stream
from asyncstream._hub_client import HubClient
from asyncstream._retry import RetryPolicy
from asyncstream.hub.testing import running_hub


@pytest.mark.xfail(
    strict=True,
    reason="stream appends are not idempotent: a retried append after a lost"
    " answer duplicates its chunk (see the soak report)",
)
async def test_feed_stream_appends_each_chunk_once_when_an_answer_is_lost() -> None:
    async with running_hub(store="sqlite") as hub:
        settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
        async with HubClient(settings, retry_policy=RetryPolicy(0.01, 2, 0.1)) as c:
            stream = await c.create_stream()
            # The first append is committed, then its connection is reset.
            hub.faults.drop_after_commit(1, path_prefix=f"/api/streams/{stream['id']}/")
            paths = as_path_objects(f"/data/f{i}" for i in range(10))
            fed = await feed_stream(
                c, stream["id"], paths, chunk=5, deadline=lambda: 1e18
            )
            page = await c.get_page(stream["url"], cursor=None, page_size=100)
    assert hub.faults.injected["drop"] == 1
    assert fed == 10
    assert [p["path"] for p in page["results"]] == [f"/data/f{i}" for i in range(10)]
    assert page["count"] == 10
