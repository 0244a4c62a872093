"""Ingest admission: a bounded fair queue, then 503 with a load-derived Retry-After."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub
from asyncstream.hub._admission import AdmissionPolicy, Verdict

from .conftest import batch, key


def loaded(limit: int, service: float, in_flight: int, waiting: int) -> AdmissionPolicy:
    policy = AdmissionPolicy(limit, max_wait=2.0)
    policy.finished(service)  # one sample sets the average
    policy.in_flight, policy.waiting = in_flight, waiting
    return policy


def test_admits_up_to_the_limit_then_queues() -> None:
    policy = AdmissionPolicy(2)
    assert [policy.arrive() for _ in range(3)] == [
        Verdict.ADMIT,
        Verdict.ADMIT,
        Verdict.QUEUE,
    ]
    assert (policy.in_flight, policy.waiting) == (2, 1)
    policy.finished(0.1)
    # A slot is free but someone queues for it: the newcomer queues behind.
    assert policy.arrive() is Verdict.QUEUE
    policy.started()
    assert (policy.in_flight, policy.waiting) == (2, 1)
    policy.gave_up()
    assert (policy.in_flight, policy.waiting) == (2, 0)


def test_expected_wait_is_the_queue_ahead_over_the_slots() -> None:
    # 4 slots each held 0.2 s: one frees every 0.05 s; 10 queued go first.
    assert loaded(4, 0.2, in_flight=4, waiting=10).expected_wait() == pytest.approx(
        0.55
    )
    assert loaded(4, 0.2, in_flight=3, waiting=0).expected_wait() == 0.0
    assert AdmissionPolicy(4, in_flight=4, waiting=9).expected_wait() == 0.0


def test_service_time_is_a_moving_average() -> None:
    policy = AdmissionPolicy(1, smoothing=0.25, in_flight=3)
    policy.finished(1.0)
    assert policy.service == 1.0
    policy.finished(0.2)
    assert policy.service == pytest.approx(0.8)
    policy.finished(0.8)
    assert policy.service == pytest.approx(0.8)
    assert policy.in_flight == 0


def test_refuses_when_the_queue_is_full_or_too_slow() -> None:
    full = AdmissionPolicy(2, max_waiting=3, in_flight=2, waiting=3)
    assert full.arrive() is Verdict.REFUSE
    assert full.waiting == 3
    # 2 slots of 0.5 s: the 8th in the queue would wait 2.0 s, the 9th 2.25 s.
    assert loaded(2, 0.5, in_flight=2, waiting=7).arrive() is Verdict.QUEUE
    assert loaded(2, 0.5, in_flight=2, waiting=8).arrive() is Verdict.REFUSE


def test_no_wait_refuses_at_once_at_the_limit() -> None:
    policy = AdmissionPolicy(1, max_wait=0)
    assert policy.arrive() is Verdict.ADMIT
    assert policy.arrive() is Verdict.REFUSE


def test_retry_after_follows_the_load_within_its_bounds() -> None:
    assert loaded(4, 0.2, in_flight=4, waiting=10).retry_after() == 0.55
    assert loaded(4, 0.2, in_flight=4, waiting=40).retry_after() == 2.05
    assert loaded(4, 0.2, in_flight=4, waiting=0).retry_after() == 0.1  # the floor
    assert loaded(1, 10.0, in_flight=1, waiting=9).retry_after() == 30.0  # the cap
    # Rounded up to 10 ms, so a client never comes back before the estimate.
    assert loaded(3, 0.1, in_flight=3, waiting=3).retry_after() == 0.14
    assert AdmissionPolicy(1, min_retry_after=0.5).retry_after() == 0.5


@pytest.mark.parametrize(
    "settings",
    [
        {"limit": 0},
        {"limit": 1, "max_wait": -1.0},
        {"limit": 1, "max_wait": float("inf")},
        {"limit": 1, "min_retry_after": 5.0, "max_retry_after": 1.0},
        {"limit": 1, "smoothing": 0.0},
    ],
)
def test_inconsistent_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"limit|max_wait|retry_after|smoothing"):
        AdmissionPolicy(**settings)  # type: ignore[arg-type]


# -- the gate in a real hub ---------------------------------------------------------


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition()`` (a hub-side count) until true; fail after ~5 s."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not seen within 5 s: {what}")


class HeldStore:
    """Holds the first call of the hub store's ``method`` until :meth:`release`,
    so the request making it keeps its ingest slot (its body is already read:
    the hub reads bodies before admission)."""

    def __init__(self, hub: RunningHub, method: str) -> None:
        self._go = asyncio.Event()
        original = getattr(hub.store, method)
        calls = 0

        async def held(*args: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                await self._go.wait()
            return await original(*args)

        setattr(hub.store, method, held)

    def release(self) -> None:
        self._go.set()


HELD_BATCH = {"task": "x", "seq": 0, "items": {"processed": ["/held"]}}


@pytest.fixture
async def one_slot() -> AsyncIterator[RunningHub]:
    async with running_hub(max_concurrent_ingest=1, ingest_wait=10.0) as hub:
        yield hub


async def test_a_request_over_the_limit_waits_for_a_slot_then_is_served(
    one_slot: RunningHub,
) -> None:
    gate = one_slot.app.state.hub.gate
    async with httpx.AsyncClient(
        base_url=one_slot.url, headers=one_slot.headers, timeout=30
    ) as client:
        held = HeldStore(one_slot, "add_batch")
        holder = asyncio.create_task(
            client.post("/api/tasks/t1/results/", json=HELD_BATCH, headers=key("t1", 0))
        )
        await until(lambda: gate.in_flight == 1, "the holder has the slot")
        queued = asyncio.create_task(
            client.post("/api/tasks/t2/results/", json=HELD_BATCH, headers=key("t2", 0))
        )
        await until(lambda: gate.waiting == 1, "the second request queues")
        metrics = (await client.get("/metrics")).text
        assert "asyncstream_hub_ingest_waiting 1.0" in metrics
        held.release()
        assert (await holder).status_code == 200
        assert (await queued).status_code == 200
        assert (gate.in_flight, gate.waiting) == (0, 0)
        assert (await client.get("/api/tasks/t2/")).json()["summary"]["processed"] == 1


async def test_waiting_requests_are_served_in_arrival_order(
    one_slot: RunningHub,
) -> None:
    gate = one_slot.app.state.hub.gate
    async with httpx.AsyncClient(
        base_url=one_slot.url, headers=one_slot.headers, timeout=30
    ) as client:
        stream = (await client.post("/api/streams/")).json()
        held = HeldStore(one_slot, "append_stream")
        holder = asyncio.create_task(
            client.post(stream["url"], json={"paths": ["/first"]})
        )
        await until(lambda: gate.in_flight == 1, "the holder has the slot")
        appends = []
        for n in range(5):
            appends.append(
                asyncio.create_task(
                    client.post(stream["url"], json={"paths": [f"/queued{n}"]})
                )
            )
            await until(lambda n=n: gate.waiting == n + 1, "one more queues")
        held.release()
        answers = await asyncio.gather(holder, *appends)
        assert [a.status_code for a in answers] == [200] * 6
        page = (await client.get(stream["url"])).json()
    assert [p["path"] for p in page["results"]] == [
        "/first",
        *(f"/queued{n}" for n in range(5)),
    ]


async def test_a_request_refused_after_the_bounded_wait_gets_retry_after() -> None:
    async with (
        running_hub(
            max_concurrent_ingest=1, ingest_wait=0.2, overload_retry_after=0.3
        ) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers, timeout=30) as client,
    ):
        gate = hub.app.state.hub.gate
        held = HeldStore(hub, "add_batch")
        holder = asyncio.create_task(
            client.post("/api/tasks/t1/results/", json=HELD_BATCH, headers=key("t1", 0))
        )
        await until(lambda: gate.in_flight == 1, "the holder has the slot")
        start = time.monotonic()
        refused = await client.post(
            "/api/tasks/t2/results/", json=batch(0, {}), headers=key("t2", 0)
        )
        assert time.monotonic() - start >= 0.2
        held.release()
        assert refused.status_code == 503
        assert refused.json()["error"] == "overloaded"
        assert "within 0.2s" in refused.json()["detail"]
        # Nothing has finished yet, so nothing predicts a wait: the floor.
        assert refused.headers["Retry-After"] == "0.3"
        assert (await holder).status_code == 200
        assert gate.waiting == 0
        assert (await client.get("/api/tasks/t2/")).status_code == 404
