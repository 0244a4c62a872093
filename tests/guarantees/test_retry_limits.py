"""The retry policy at its limits: the deadline bounds every wait, the injected
random source is the only source of jitter, and the gentlest settings are valid."""

from __future__ import annotations

import pytest

from asyncstream import HubUnavailableError
from asyncstream._retry import RetryPolicy, retry_call
from tests.runtime._sender_fakes import FakeTime


async def always_busy() -> None:
    raise HubUnavailableError("busy", status_code=503)


async def test_no_wait_before_a_retry_runs_past_the_deadline() -> None:
    time = FakeTime()
    start = time.now
    with pytest.raises(HubUnavailableError):
        await retry_call(
            always_busy,
            policy=RetryPolicy(initial=0.5, maximum=0.5, jitter=0.0),
            deadline=time.now + 0.3,
            clock=time.clock,
            sleep=time.sleep,
        )
    assert time.sleeps == [pytest.approx(0.3)]  # cut short, then no attempt after
    assert time.now - start == pytest.approx(0.3)


async def test_jitter_comes_from_the_injected_random_source() -> None:
    time = FakeTime()
    with pytest.raises(HubUnavailableError):
        await retry_call(
            always_busy,
            policy=RetryPolicy(initial=1.0, multiplier=1.0, maximum=1.0, jitter=0.5),
            deadline=time.now + 2.5,
            clock=time.clock,
            sleep=time.sleep,
            rand=lambda: 1.0,
        )
    assert time.sleeps[:4] == pytest.approx([0.5] * 4)


def test_the_gentlest_settings_are_valid() -> None:
    policy = RetryPolicy(initial=0.0, multiplier=1.0, maximum=0.0, jitter=1.0)
    assert policy.delay(3, rand=lambda: 0.5) == 0.0
    same = RetryPolicy(initial=0.2, multiplier=1.0, maximum=0.2, jitter=0.0)
    assert [same.delay(n) for n in (1, 2, 3)] == [0.2, 0.2, 0.2]
