"""A feed cancelled while its hub is gone ends at once.

Found by Ctrl-C on ``asyncstream run``: the embedded hub dies with the same
Ctrl-C, and the feed, cancelled mid-way, went on retrying its best-effort close
of the input stream for the whole request deadline (a minute) before the run
could exit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio

from asyncstream._config import HubSettings
from asyncstream._deadline import Deadline
from asyncstream._hub_client import HubClient
from asyncstream._paths import PathObject
from asyncstream.hub import running_hub
from asyncstream.run._feed import feed_stream


def endless() -> Iterator[PathObject]:
    i = 0
    while True:
        yield {"path": f"/data/f{i}"}
        i += 1


async def test_a_feed_cancelled_after_its_hub_died_ends_at_once() -> None:
    async with running_hub(store="sqlite") as hub:
        settings = HubSettings.resolve(hub_url=hub.url, api_key=hub.api_key)
    # The hub is gone: every request is refused, and retried until its deadline.
    async with HubClient(settings) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.2):
            await feed_stream(
                client,
                "stream-of-a-dead-hub",
                endless(),
                chunk=5,
                deadline=lambda: Deadline.after(60.0),
            )
        took = time.monotonic() - started
    assert took < 3.0, f"the cancelled feed took {took:.1f} s to end"
