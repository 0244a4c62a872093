"""BatchPolicy, SendBudget and BatchSender over a fake hub: batches, bounds, retries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from anyio import wait_all_tasks_blocked

from asyncstream._batching import BatchPolicy
from asyncstream._exceptions import (
    BackpressureTimeout,
    HubRejectedError,
    HubUnavailableError,
    UsageError,
)
from asyncstream._identity import TaskIdentity
from asyncstream._retry import RetryPolicy
from asyncstream._send_budget import SendBudget
from asyncstream._sender import BatchSender
from tests.runtime._sender_fakes import FakeHub, FakeTime, status_503

HEADER = TaskIdentity("t1", "london.q#custom", "my-plugin", 7)


def p(i: int) -> dict[str, Any]:
    return {"path": f"/data/f{i}"}


# -- the policy objects ---------------------------------------------------------


def test_policy_is_due_by_size_and_by_linger() -> None:
    time = FakeTime()
    policy = BatchPolicy(HEADER, batch_size=3, linger=2.0, clock=time.clock)
    assert policy.linger_remaining(time.now) is None
    policy.add("processed", p(0))
    time.now += 1.5
    assert policy.linger_remaining(time.now) == pytest.approx(0.5)
    time.now += 1.0
    assert policy.linger_remaining(time.now) == 0.0  # due by linger
    assert not policy.full
    policy.add("failures", p(1))
    policy.add("processed", p(2))
    assert policy.full  # due by size


def test_policy_cuts_batches_with_consecutive_seqs_and_exact_bodies() -> None:
    policy = BatchPolicy(HEADER, batch_size=2, linger=1.0)
    policy.add("failures", {"path": "/a", "message": ["no"]})
    policy.add("processed", p(1))
    first = policy.cut()
    assert first is not None
    assert (first.seq, first.count) == (0, 2)
    assert json.loads(first.body) == {
        "jobid": 7,
        "task": "my-plugin",
        "queue": "london.q#custom",
        "seq": 0,
        # states in the fixed order of STATES, whatever order they were added in
        "items": {"processed": [p(1)], "failures": [{"path": "/a", "message": ["no"]}]},
    }
    assert list(json.loads(first.body)["items"]) == ["processed", "failures"]
    assert policy.cut() is None
    policy.add("skipped", p(2))
    second = policy.cut()
    assert second is not None
    assert second.seq == 1
    assert second.key("t1") == "t1:1"
    assert policy.batches_cut == 2


def test_budget_bounds_items_and_batches_in_flight() -> None:
    budget = SendBudget(max_items=5, max_batches=2)
    budget.take(4)
    assert budget.has_room(1)
    assert not budget.has_room(2)
    budget.start_batch()
    budget.start_batch()
    assert not budget.can_start_batch
    with pytest.raises(RuntimeError):
        budget.start_batch()
    budget.finish_batch()
    budget.release(4)
    assert budget.has_room(5)
    assert "items=0/5" in repr(budget)


def test_sender_rejects_a_budget_smaller_than_a_batch() -> None:
    hub = FakeHub()
    with pytest.raises(ValueError, match="max_pending_items"):
        BatchSender(hub.client(), HEADER, batch_size=10, max_pending_items=5)


# -- the engine -----------------------------------------------------------------


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
async def make_sender(hub: FakeHub) -> AsyncIterator[Callable[..., BatchSender]]:
    made: list[BatchSender] = []

    def make(**options: Any) -> BatchSender:
        client_options = {
            k: options.pop(k) for k in ("retry_policy", "rand") if k in options
        }
        client_sleep = options.pop("client_sleep", None)
        if client_sleep is not None:
            client_options["sleep"] = client_sleep
        if "clock" in options:
            client_options["clock"] = options["clock"]
        options.setdefault("linger", 60.0)
        sender = BatchSender(hub.client(**client_options), HEADER, **options)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.aclose()


async def test_batches_are_cut_by_size_and_keyed_taskid_seq(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    async with make_sender(batch_size=3) as sender:
        for i in range(7):
            await sender.add("processed", p(i))
        await sender.drain()
    assert sorted(hub.keys) == ["t1:0", "t1:1", "t1:2"]
    sizes = [
        len(json.loads(hub.batches["t1"][s])["items"]["processed"]) for s in range(3)
    ]
    assert sizes == [3, 3, 1]
    assert [path for _, path in hub.paths("t1")] == [f"/data/f{i}" for i in range(7)]
    stats = sender.statistics()
    assert (stats.items_added, stats.items_acked, stats.batches_acked) == (7, 7, 3)
    assert stats.items_outstanding == 0
    assert hub.auth[0] == "Api-Key sekrit-key-123"
    assert "sekrit" not in repr(sender)


async def test_linger_flushes_a_partial_batch_after_linger_seconds(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    time = FakeTime()
    posted = anyio.Event()

    async def note(request: httpx.Request, number: int) -> None:
        posted.set()

    hub.intercept = note
    async with make_sender(
        batch_size=100, linger=2.5, clock=time.clock, sleep=time.sleep
    ) as sender:
        await sender.add("skipped", p(1))
        await sender.add("skipped", p(2))
        with anyio.fail_after(5):
            await posted.wait()
        assert time.sleeps == [2.5]  # the linger timer, nothing else
        assert hub.keys == ["t1:0"]
        await sender.drain()
    assert hub.summary("t1")["skipped"] == 2


async def test_backoff_sequence_is_exact_and_the_retry_is_byte_identical(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    time = FakeTime()

    async def three_503s(request: httpx.Request, number: int) -> httpx.Response | None:
        return status_503() if number <= 3 else None

    hub.intercept = three_503s
    policy = RetryPolicy(initial=0.1, multiplier=2.0, maximum=0.3, jitter=0.5)
    async with make_sender(
        batch_size=2,
        retry_policy=policy,
        rand=lambda: 0.5,  # jitter takes a quarter off every delay
        clock=time.clock,
        client_sleep=time.sleep,
    ) as sender:
        await sender.add("processed", p(1))
        await sender.add("processed", p(2))
        await sender.drain()
    assert time.sleeps == [0.075, 0.15, 0.225]  # 0.1, 0.2, capped 0.3, each x0.75
    assert hub.keys == ["t1:0"] * 4
    assert len(set(hub.bodies)) == 1
    assert sender.statistics().retries == 3
    assert hub.summary("t1")["processed"] == 2


async def test_retry_after_from_the_hub_replaces_the_backoff(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    time = FakeTime()

    async def busy(request: httpx.Request, number: int) -> httpx.Response | None:
        return {
            1: status_503("1.5"),
            2: httpx.Response(429, headers={"Retry-After": "0.25"}),
        }.get(number)

    hub.intercept = busy
    async with make_sender(
        batch_size=1, clock=time.clock, client_sleep=time.sleep, rand=lambda: 0.0
    ) as sender:
        await sender.add("processed", p(1))
        await sender.drain()
    assert time.sleeps == [1.5, 0.25]
    assert sender.statistics().retries == 2


async def test_the_delivery_deadline_cuts_a_backoff_short(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    time = FakeTime()

    async def down(request: httpx.Request, number: int) -> httpx.Response:
        return status_503()

    hub.intercept = down
    # Seconds of the fake clock; but the request on the wire is bounded by what
    # is left in real seconds too, so what is left stays far above the time a
    # request takes on a loaded machine.
    policy = RetryPolicy(initial=10.0, multiplier=2.0, maximum=1000.0, jitter=0.0)
    async with make_sender(
        batch_size=1,
        delivery_timeout=50.0,
        retry_policy=policy,
        clock=time.clock,
        client_sleep=time.sleep,
    ) as sender:
        await sender.add("processed", p(1))
        with pytest.raises(HubUnavailableError, match="503"):
            await sender.drain()
        # 10 + 20 = 30; the next wait (40) is cut to the 20 left; one last try.
        assert time.sleeps == [10.0, 20.0, pytest.approx(20.0)]
        assert hub.started == 4
        assert [b.seq for b in sender.undelivered()] == [0]
        with pytest.raises(HubUnavailableError):
            await sender.add("processed", p(2))  # failed: it says so at once


async def test_a_4xx_is_not_retried(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    async def reject(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(422, json={"detail": "items.processed[0]: bad"})

    hub.intercept = reject
    async with make_sender(batch_size=1) as sender:
        await sender.add("processed", p(1))
        with pytest.raises(
            HubRejectedError, match=r"422.*items.processed\[0\]"
        ) as info:
            await sender.drain()
    assert info.value.status_code == 422
    assert hub.started == 1
    assert sender.statistics().retries == 0


async def test_a_lost_ack_is_retried_and_counted_once(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    hub.drop_acks = 2
    async with make_sender(batch_size=2) as sender:
        for i in range(4):
            await sender.add("processed", p(i))
        await sender.drain()
    assert sorted(hub.keys) == ["t1:0", "t1:0", "t1:1", "t1:1"]
    assert hub.summary("t1")["processed"] == 4
    stats = sender.statistics()
    assert (stats.duplicates, stats.retries, stats.items_acked) == (2, 2, 4)


async def test_add_blocks_when_the_budget_is_full_and_resumes_when_the_hub_does(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    stalled = anyio.Event()

    async def stall(request: httpx.Request, number: int) -> None:
        await stalled.wait()

    hub.intercept = stall
    added = 0
    async with make_sender(
        batch_size=2, max_pending_items=4, max_inflight_batches=1
    ) as sender:

        async def produce() -> None:
            nonlocal added
            for i in range(10):
                await sender.add("processed", p(i))
                added += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await wait_all_tasks_blocked()
            stats = sender.statistics()
            assert added == 4  # the budget: 4 results queued or in flight
            assert stats.adds_waiting == 1
            assert (stats.items_outstanding, stats.batches_in_flight) == (4, 1)
            assert stats.batches_queued == 1  # cut while blocked, waiting for a slot
            assert hub.max_in_flight == 1
            stalled.set()  # the hub recovers
        await sender.drain()
    assert added == 10
    assert hub.summary("t1")["processed"] == 10
    assert hub.max_in_flight == 1


async def test_add_timeout_raises_backpressure_timeout_and_records_nothing(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    release = anyio.Event()

    async def stall(request: httpx.Request, number: int) -> None:
        await release.wait()

    hub.intercept = stall
    async with make_sender(
        batch_size=1, max_pending_items=1, add_timeout=0.05
    ) as sender:
        await sender.add("processed", p(0))
        with pytest.raises(BackpressureTimeout, match="1/1 results") as info:
            await sender.add("processed", p(1))
        assert isinstance(info.value, TimeoutError)
        assert sender.statistics().items_added == 1
        release.set()
        await sender.drain()
    assert hub.paths("t1") == [("processed", "/data/f0")]


async def test_batches_in_flight_never_exceed_the_bound(
    hub: FakeHub, make_sender: Callable[..., BatchSender]
) -> None:
    async def slow(request: httpx.Request, number: int) -> None:
        await anyio.sleep(0.002)

    hub.intercept = slow
    async with make_sender(
        batch_size=5, max_pending_items=100, max_inflight_batches=3
    ) as sender:
        for i in range(200):
            await sender.add("processed", p(i))
        await sender.drain()
    assert hub.max_in_flight == 3
    assert hub.summary("t1")["processed"] == 200


async def test_lifecycle_unopened_open_closed(
    make_sender: Callable[..., BatchSender],
) -> None:
    sender = make_sender()
    with pytest.raises(UsageError, match="not open"):
        await sender.add("processed", p(0))
    async with sender:
        assert sender.state.value == "open"
    assert sender.state.value == "closed"
    await sender.aclose()  # a second close does nothing
    with pytest.raises(UsageError, match="closed"):
        await sender.add("processed", p(0))
    with pytest.raises(UsageError, match="once"):
        await sender.__aenter__()
    assert repr(sender).startswith("<BatchSender task='t1' closed acked=0/0")
