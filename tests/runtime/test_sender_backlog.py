"""Batches queued behind a busy send slot: posted in order by the send that frees
it, and none of them posted once the sender has failed or was aborted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from anyio import wait_all_tasks_blocked

from asyncstream._exceptions import HubRejectedError
from asyncstream._identity import TaskIdentity
from asyncstream._sender import BatchSender
from asyncstream._sender_stats import SenderState
from tests.runtime._sender_fakes import FakeHub

HEADER = TaskIdentity("t1", "london.q#custom", "my-plugin", 7)


@pytest.fixture
async def make_sender() -> AsyncIterator[Callable[..., tuple[FakeHub, BatchSender]]]:
    made: list[BatchSender] = []

    def make(**options: Any) -> tuple[FakeHub, BatchSender]:
        hub = FakeHub()
        sender = BatchSender(hub.client(), HEADER, linger=60.0, **options)
        made.append(sender)
        return hub, sender

    yield make
    for sender in made:
        await sender.aclose()


async def _queue_behind_a_stalled_send(
    hub: FakeHub, sender: BatchSender, release: anyio.Event, answer: Any = None
) -> None:
    async def stall_first(request: httpx.Request, number: int) -> Any:
        if number == 1:
            await release.wait()
            return answer
        return None

    hub.intercept = stall_first
    for i in range(4):
        await sender.add("processed", {"path": f"/data/f{i}"})
    await wait_all_tasks_blocked()
    stats = sender.statistics()
    assert (stats.batches_in_flight, stats.batches_queued) == (1, 3)


async def test_queued_batches_are_posted_in_seq_order_through_one_slot(
    make_sender: Callable[..., tuple[FakeHub, BatchSender]],
) -> None:
    hub, sender = make_sender(batch_size=1, max_inflight_batches=1)
    release = anyio.Event()
    async with sender:
        await _queue_behind_a_stalled_send(hub, sender, release)
        release.set()
        await sender.drain()
        stats = sender.statistics()
    assert hub.keys == ["t1:0", "t1:1", "t1:2", "t1:3"]
    assert hub.max_in_flight == 1
    assert (stats.batches_acked, stats.batches_in_flight, stats.batches_queued) == (
        4,
        0,
        0,
    )
    assert [path for _, path in hub.paths("t1")] == [f"/data/f{i}" for i in range(4)]


async def test_a_rejected_batch_posts_none_of_those_queued_behind_it(
    make_sender: Callable[..., tuple[FakeHub, BatchSender]],
) -> None:
    hub, sender = make_sender(batch_size=1, max_inflight_batches=1)
    release = anyio.Event()
    refusal = httpx.Response(400, json={"detail": "no such job"})
    async with sender:
        await _queue_behind_a_stalled_send(hub, sender, release, refusal)
        release.set()
        with pytest.raises(HubRejectedError, match="400"):
            await sender.drain()
        await wait_all_tasks_blocked()  # whatever a send would still start
        assert sender.state is SenderState.FAILED
        assert [b.seq for b in sender.undelivered()] == [0, 1, 2, 3]
    assert hub.keys == ["t1:0"]


async def test_an_abort_posts_none_of_the_queued_batches(
    make_sender: Callable[..., tuple[FakeHub, BatchSender]],
) -> None:
    hub, sender = make_sender(batch_size=1, max_inflight_batches=1)
    release = anyio.Event()
    async with sender:
        await _queue_behind_a_stalled_send(hub, sender, release)
        # The block runs in the sender's task group: nothing awaits after this.
        sender.abort()
        release.set()
    assert [b.seq for b in sender.undelivered()] == [0, 1, 2, 3]
    assert hub.keys == ["t1:0"]
    assert hub.batches.get("t1", {}) == {}
