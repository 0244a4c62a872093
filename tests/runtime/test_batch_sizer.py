"""The adaptive batch size: AIMD on acknowledgement latency, with an injected clock."""

from __future__ import annotations

import httpx
import pytest

from asyncstream._batch_sizer import BatchSizer
from asyncstream._exceptions import InvalidInputError
from asyncstream._identity import TaskIdentity
from asyncstream._sender import BatchSender
from asyncstream.streamstatus import StreamTaskResults
from tests.runtime._sender_fakes import API_KEY, HUB_URL, FakeHub, FakeTime, status_503

HEADER = TaskIdentity("t1", "london.q#custom", "my-plugin", 7)


def test_the_size_halves_when_slow_or_refused_and_grows_back_when_quick() -> None:
    sizer = BatchSizer(500, target=1.0)
    assert (sizer.size, sizer.smallest, sizer.step) == (500, 25, 50)
    assert sizer.acknowledged(0.1, retried=False) == 500  # at the cap
    assert sizer.acknowledged(1.5, retried=False) == 250  # slow
    assert sizer.acknowledged(0.1, retried=True) == 125  # refused, then quick
    assert sizer.acknowledged(0.7, retried=False) == 125  # neither: kept
    sizes = [sizer.acknowledged(5.0, retried=False) for _ in range(6)]
    assert sizes == [62, 31, 25, 25, 25, 25]  # never below smallest
    sizes = [sizer.acknowledged(0.2, retried=False) for _ in range(11)]
    assert sizes == [75, 125, 175, 225, 275, 325, 375, 425, 475, 500, 500]
    with pytest.raises(InvalidInputError):
        BatchSizer(10, smallest=11)
    with pytest.raises(InvalidInputError):
        BatchSizer(10, target=0)


async def test_the_sender_shrinks_batches_for_a_slow_hub_and_reports_it() -> None:
    time = FakeTime()
    hub = FakeHub()
    slow = {1, 2, 3}

    async def answer(request: httpx.Request, number: int) -> httpx.Response | None:
        if number in slow:
            time.now += 10.0  # the hub takes 10 s to answer
        if number == 5:
            return status_503()  # a refusal, retried
        return None

    hub.intercept = answer
    client = hub.client(sleep=time.sleep, clock=time.clock)
    sender = BatchSender(
        client,
        HEADER,
        batch_size=40,
        linger=1e9,
        max_inflight_batches=1,
        adaptive_batch_size=True,
        clock=time.clock,
        sleep=time.sleep,
    )
    counts = []
    async with sender:
        for i in range(400):
            await sender.add("processed", {"path": f"/data/f{i}"})
            stats = sender.statistics()
            counts.append(stats.batch_size)
        await sender.drain()
    sizes = [body.count(b'"path"') for body in hub.batches["t1"].values()]
    assert sum(sizes) == 400
    # Three slow answers halve it; a quick one adds a tenth of 40 back.
    assert sizes[:5] == [40, 20, 10, 5, 9]
    # The refusal (a 503, retried) halves it again; quick answers then grow it
    # back to the cap, four at a time.
    assert min(sizes) == min(counts) == 4
    low = sizes.index(4)
    assert sizes[low : low + 10] == list(range(4, 41, 4))
    assert counts[-1] == 40


def test_the_sync_shim_follows_the_adapted_size() -> None:
    time = FakeTime()
    hub = FakeHub()

    async def slow(request: httpx.Request, number: int) -> None:
        if number <= 3:
            time.now += 10.0

    hub.intercept = slow
    status = StreamTaskResults(
        "p",
        [],
        1,
        None,
        "t1",
        hub_url=HUB_URL,
        api_key=API_KEY,
        transport=hub.transport(),
        batch_size=40,
        max_pending_items=40,  # each hand-over waits for the last batch's answer
        linger=1e9,
        adaptive_batch_size=True,
        clock=time.clock,
        sleep=time.sleep,
    )
    for i in range(400):
        status.add("processed", f"/data/f{i}")
    status.dump()
    sizes = [body.count(b'"path"') for body in hub.batches["t1"].values()]
    assert sum(sizes) == 400
    # When the thread sees each answer depends on the threads' timing; that it
    # follows them does not.
    assert sizes[0] == 40
    assert max(sizes) == 40
    assert min(sizes[:6]) <= 10
    assert status.statistics().batch_size == 40
