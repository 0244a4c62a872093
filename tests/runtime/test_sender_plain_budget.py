"""The per-path fast path of the sender keeps the budget and the checks of add().

``add_path_nowait`` takes a plain path without a call to the budget or to the
state's check; what it takes must still count, it must say False (the caller
then waits in ``add()``) once the results or the bytes outstanding reach the
budget, and a bad state must still raise, taking nothing.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from asyncstream._exceptions import InvalidStateError
from asyncstream._identity import TaskIdentity
from asyncstream._paths import STATES
from asyncstream._sender import BatchSender
from asyncstream.streamstatus import AsyncStreamTaskResults
from tests.runtime._sender_fakes import API_KEY, HUB_URL, FakeHub

HEADER = TaskIdentity("t1", "london.q#custom", "my-plugin", 7)


def _stalled_sender(hub: FakeHub, **options: int) -> tuple[BatchSender, anyio.Event]:
    release = anyio.Event()

    async def stall(request: httpx.Request, number: int) -> None:
        await release.wait()

    hub.intercept = stall
    sender = BatchSender(
        hub.client(), HEADER, linger=60.0, max_inflight_batches=1, **options
    )
    return sender, release


async def _fill(sender: BatchSender, limit: int) -> int:
    """Add plain paths by the fast path alone until it says False."""
    taken = 0
    while taken < limit:
        # After a cut the fast path declines until the sends had their turn.
        await sender._yield_to_sends()
        if not sender.add_path_nowait("processed", f"/data/f{taken}"):
            return taken
        taken += 1
    return taken


async def test_plain_paths_stop_at_the_budget_of_results() -> None:
    hub = FakeHub()
    sender, release = _stalled_sender(hub, batch_size=2, max_pending_items=5)
    async with sender:
        assert await _fill(sender, 100) == 5
        stats = sender.statistics()
        assert (stats.items_added, stats.items_outstanding) == (5, 5)
        release.set()
        await sender.drain()
        assert sender.statistics().items_outstanding == 0
    assert hub.summary("t1")["processed"] == 5


async def test_plain_paths_stop_at_the_budget_of_bytes() -> None:
    hub = FakeHub()
    # Batches of 10 small paths, cut by count; the bytes outstanding bind
    # long before the budget of results.
    sender, release = _stalled_sender(
        hub,
        batch_size=10,
        max_pending_items=1000,
        max_batch_bytes=4096,
        max_pending_bytes=4096,
    )
    async with sender:
        taken = await _fill(sender, 1000)
        stats = sender.statistics()
        assert 0 < taken < 1000
        assert stats.bytes_outstanding <= 4096
        assert stats.items_outstanding == taken
        release.set()
        await sender.drain()
    assert hub.summary("t1")["processed"] == taken


async def test_a_bad_state_with_a_plain_path_raises_and_takes_nothing() -> None:
    hub = FakeHub()
    async with AsyncStreamTaskResults(
        "p", [], 1, None, "t1", hub_url=HUB_URL, api_key=API_KEY,
        transport=hub.transport(),
    ) as status:  # fmt: skip
        for key in ("finished", "Processed", ["processed"], None):
            with pytest.raises(InvalidStateError):
                await status.add(key, "/data/a")  # type: ignore[arg-type]
        await status.add("processed", "/data/b")
        assert status.statistics().items_added == 1
        assert status.summary == {**dict.fromkeys(STATES, 0), "processed": 1}
        await status.dump()
    assert [path for _, path in hub.paths("t1")] == ["/data/b"]
