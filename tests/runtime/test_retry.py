"""RetryPolicy and retry_call: exact backoff through an injected clock and sleep."""

from __future__ import annotations

import itertools
import random

import pytest

from asyncstream._exceptions import HubRejectedError, HubUnavailableError
from asyncstream._retry import RetryPolicy, retry_call
from tests.runtime._sender_fakes import FakeTime


def test_delay_is_capped_exponential_with_jitter_taken_off() -> None:
    policy = RetryPolicy(initial=0.1, multiplier=3.0, maximum=1.0, jitter=0.5)
    no_jitter = [policy.delay(n, rand=lambda: 0.0) for n in range(1, 5)]
    assert no_jitter == pytest.approx([0.1, 0.3, 0.9, 1.0])
    full_jitter = [policy.delay(n, rand=lambda: 1.0) for n in range(1, 5)]
    assert full_jitter == pytest.approx([0.05, 0.15, 0.45, 0.5])


def test_retry_after_is_a_floor_spread_upward_by_jitter() -> None:
    policy = RetryPolicy(initial=0.1, multiplier=2.0, maximum=5.0, jitter=0.5)
    spread = [policy.delay(1, retry_after=2.0, rand=lambda r=r: r) for r in (0, 0.5, 1)]
    assert spread == pytest.approx([2.0, 2.5, 3.0])  # never sooner than asked
    # A long Retry-After is kept past ``maximum``: the hub knows its load.
    assert policy.delay(1, retry_after=30.0, rand=lambda: 0.0) == 30.0
    # Zero (or less) is the hub's "now": no growth on top of it either.
    assert policy.delay(3, retry_after=0.0, rand=lambda: 1.0) == 0.0
    assert policy.delay(1, retry_after=-1.0, rand=lambda: 0.0) == 0.0


def test_repeated_refusals_grow_past_a_short_retry_after_within_a_bound() -> None:
    policy = RetryPolicy(initial=0.1, multiplier=2.0, maximum=2.0, jitter=0.5)
    waits = [policy.delay(n, retry_after=0.25, rand=lambda: 0.0) for n in range(1, 8)]
    # The backoff (0.1, 0.2, 0.4, 0.8, 1.6, 2.0) passes the hub's 0.25 s, up to
    # max_refusal_growth (4) times it.
    assert waits == pytest.approx([0.25, 0.25, 0.4, 0.8, 1.0, 1.0, 1.0])
    unbounded = RetryPolicy(
        initial=0.1, multiplier=2.0, maximum=2.0, max_refusal_growth=100.0
    )
    assert unbounded.delay(7, retry_after=0.25, rand=lambda: 0.0) == 2.0


def test_senders_refused_together_come_back_spread_out() -> None:
    policy = RetryPolicy()
    rand = random.Random(12).random
    waits = sorted(policy.delay(1, retry_after=1.0, rand=rand) for _ in range(40))
    assert waits[0] >= 1.0
    assert waits[-1] <= 1.5
    assert waits[-1] - waits[0] > 0.4  # over most of the jitter window
    assert len(set(waits)) == 40  # no two in step


@pytest.mark.parametrize(
    "settings",
    [
        {"initial": -1.0},
        {"initial": 2.0, "maximum": 1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"max_refusal_growth": 0.5},
    ],
)
def test_inconsistent_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"jitter|inconsistent|growth"):
        RetryPolicy(**settings)  # type: ignore[arg-type]


async def test_retry_call_retries_until_success_and_reports_each_retry() -> None:
    time = FakeTime()
    calls: list[float] = []
    seen: list[tuple[int | None, float]] = []

    async def flaky() -> str:
        calls.append(time.now)
        if len(calls) < 4:
            raise HubUnavailableError("busy", status_code=503)
        return "ok"

    result = await retry_call(
        flaky,
        policy=RetryPolicy(initial=1.0, multiplier=2.0, maximum=3.0, jitter=0.0),
        deadline=time.now + 100,
        clock=time.clock,
        sleep=time.sleep,
        on_retry=lambda exc, delay: seen.append((exc.status_code, delay)),
    )
    assert result == "ok"
    assert time.sleeps == [1.0, 2.0, 3.0]
    assert seen == [(503, 1.0), (503, 2.0), (503, 3.0)]
    assert [c - calls[0] for c in calls] == [0.0, 1.0, 3.0, 6.0]


async def test_retry_after_is_honoured_and_the_deadline_cuts_it_short() -> None:
    time = FakeTime()
    start = time.now

    async def overloaded() -> None:
        raise HubUnavailableError("busy", status_code=429, retry_after=4.0)

    with pytest.raises(HubUnavailableError, match="busy"):
        await retry_call(
            overloaded,
            policy=RetryPolicy(),
            deadline=start + 10.0,
            clock=time.clock,
            sleep=time.sleep,
            rand=lambda: 0.0,
        )
    assert time.sleeps == [4.0, 4.0, 2.0]  # the third wait cut to the deadline
    assert time.now == start + 10.0


async def test_refusals_back_off_with_jitter_and_growth_until_the_deadline() -> None:
    time = FakeTime()
    start = time.now
    draws = itertools.chain([0.0, 1.0, 0.5, 0.2, 0.8], itertools.repeat(0.0))
    attempts: list[float] = []

    async def refused() -> None:
        attempts.append(time.now - start)
        raise HubUnavailableError("busy", status_code=503, retry_after=1.0)

    with pytest.raises(HubUnavailableError, match="busy"):
        await retry_call(
            refused,
            policy=RetryPolicy(initial=0.1, multiplier=2.0, maximum=5.0, jitter=0.5),
            deadline=start + 8.0,
            clock=time.clock,
            sleep=time.sleep,
            rand=lambda: next(draws),
        )
    # max(1.0, 0.1 * 2**(n-1)) * (1 + 0.5 * draw): Retry-After is the floor of
    # the first four (1.0, 1.5, 1.25, 1.1), then the backoff passes it (1.6 *
    # 1.4 = 2.24); the sixth (3.2) is cut to the 0.91 s left, and no attempt
    # starts after the deadline.
    assert time.sleeps == pytest.approx([1.0, 1.5, 1.25, 1.1, 2.24, 0.91])
    assert attempts == pytest.approx([0.0, 1.0, 2.5, 3.75, 4.85, 7.09, 8.0])


async def test_rejections_are_not_retried_and_max_attempts_stops() -> None:
    time = FakeTime()
    attempts = 0

    async def rejected() -> None:
        nonlocal attempts
        attempts += 1
        raise HubRejectedError("no", status_code=422)

    with pytest.raises(HubRejectedError):
        await retry_call(
            rejected, policy=RetryPolicy(), deadline=time.now + 60, sleep=time.sleep
        )
    assert attempts == 1
    assert time.sleeps == []

    async def down() -> None:
        nonlocal attempts
        attempts += 1
        raise HubUnavailableError("down")

    attempts = 0
    with pytest.raises(HubUnavailableError):
        await retry_call(
            down,
            policy=RetryPolicy(max_attempts=3, jitter=0.0),
            deadline=time.now + 60,
            clock=time.clock,
            sleep=time.sleep,
        )
    assert attempts == 3
