"""The per-path fast path of the sender keeps the send budget as add() does.

``add_path_nowait`` takes a plain path without a call to the budget; what it
takes must still count, and it must say False (the caller then waits in
``add()``) once the results or the bytes outstanding reach the budget.
"""

from __future__ import annotations

import anyio
import httpx

from asyncstream._identity import TaskIdentity
from asyncstream._sender import BatchSender
from tests.runtime._sender_fakes import FakeHub

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
