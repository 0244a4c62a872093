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


async def test_buffered_results_count_before_their_batch_is_cut() -> None:
    # The budget and the summary are charged once per batch, at the cut; until
    # then the results in the buffer count as they are, for every way in.
    hub = FakeHub()
    sender, release = _stalled_sender(hub, batch_size=10, max_pending_items=10)
    async with sender:
        assert await _fill(sender, 3) == 3
        await sender.add("failures", {"path": "/data/bad", "message": ["no"]})
        await sender.add_many("skipped", ["/data/s0", "/data/s1"])
        stats = sender.statistics()
        assert stats.batches_cut == 0
        assert sender._budget.items == 0  # nothing charged before the cut
        assert (stats.items_added, stats.items_pending) == (6, 6)
        assert stats.items_outstanding == 6
        assert 0 < stats.bytes_outstanding == sender._buffer.nbytes
        expected = {**dict.fromkeys(STATES, 0), "processed": 3, "skipped": 2}
        assert sender.summary == {**expected, "failures": 1}
        # Four more fill the budget of ten with the buffer alone: the fast path
        # then declines, and the batch of ten is cut.
        assert await _fill(sender, 4) == 4
        assert sender.statistics().items_outstanding == 10
        assert sender._budget.items == 10
        assert sender.statistics().batches_cut == 1
        await sender._yield_to_sends()  # the cut's turn for the sends
        assert not sender.add_path_nowait("processed", "/data/over")
        release.set()
        await sender.drain()
        stats = sender.statistics()
        assert (stats.items_added, stats.items_acked, stats.items_outstanding) == (
            10,
            10,
            0,
        )
    assert hub.summary("t1") == {**expected, "processed": 7, "failures": 1}
