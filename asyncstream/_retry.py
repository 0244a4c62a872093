"""When to retry a call to the hub, and how long to wait: policy without I/O.

:class:`RetryPolicy` is a small value object that computes capped exponential
backoff with jitter; :func:`retry_call` makes the first attempt itself and hands
the retries to tenacity, which owns the retry loop. Both take the clock, the
sleep and the random source as arguments, so tests assert exact backoff
sequences without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import tenacity

from ._exceptions import HubUnavailableError, InvalidInputError

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[HubUnavailableError, float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, honouring the hub's ``Retry-After``.

    The n-th retry (n from 1) waits ``min(maximum, initial * multiplier**(n-1))``,
    shortened by up to ``jitter`` of itself at random so that many workers do not
    retry in step.

    A ``Retry-After`` from the hub is a floor, never waited less: the wait is the
    larger of it and the backoff above, the backoff capped at
    ``max_refusal_growth`` times the ``Retry-After`` (refused again and again, a
    sender waits longer, but never so much longer than a newcomer that it loses
    every round to them), then lengthened by up to ``jitter`` of itself at
    random. Senders refused together, all told the same ``Retry-After``, come
    back spread over a window as long as ``jitter`` of it, not in step.
    ``retry_call`` cuts every wait to the deadline. ``max_attempts`` of ``None``
    means: only the deadline stops retrying.
    """

    initial: float = 0.05
    multiplier: float = 2.0
    maximum: float = 5.0
    jitter: float = 0.5
    max_attempts: int | None = None
    max_refusal_growth: float = 4.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.multiplier < 1:
            raise InvalidInputError(f"inconsistent backoff settings in {self!r}")
        if self.max_refusal_growth < 1:
            raise InvalidInputError(
                "max_refusal_growth must be at least 1,"
                f" got {self.max_refusal_growth!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise InvalidInputError(
                f"jitter must be between 0 and 1, got {self.jitter!r}"
            )

    def delay(
        self,
        retry: int,
        *,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry),
        ``retry_after`` being what the hub asked for with the last refusal."""
        base = min(self.maximum, self.initial * self.multiplier ** (retry - 1))
        if retry_after is None:
            return base * (1.0 - self.jitter * rand())
        grown = min(base, self.max_refusal_growth * retry_after)
        return max(retry_after, grown, 0.0) * (1.0 + self.jitter * rand())


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: float,
    clock: Clock = time.monotonic,
    sleep: Sleep = anyio.sleep,
    rand: Callable[[], float] = random.random,
    on_retry: OnRetry | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying :class:`HubUnavailableError`.

    ``deadline`` is a ``clock()`` value; no wait runs past it (a longer backoff is
    cut short) and no attempt starts after it. The last error is re-raised as is.
    """

    def wait_after(attempt: int, exc: BaseException | None) -> float:
        retry_after = exc.retry_after if isinstance(exc, HubUnavailableError) else None
        wanted = policy.delay(attempt, retry_after=retry_after, rand=rand)
        return max(0.0, min(wanted, deadline - clock()))

    def stop_after(attempt: int) -> bool:
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            return True
        return clock() >= deadline

    # The first attempt runs outside tenacity: nearly every batch is taken at
    # once, and setting tenacity's loop up costs more CPU than the client's side
    # of the POST. A failure takes the very steps tenacity takes after an
    # attempt (the wait drawn before the stop is checked, then on_retry, then
    # the sleep), so the backoff sequence is the same as tenacity's alone.
    try:
        return await fn()
    except HubUnavailableError as exc:
        first = exc
    delay = wait_after(1, first)
    if stop_after(1):
        raise first
    if on_retry is not None:
        on_retry(first, delay)
    await sleep(delay)

    # Attempts from the second on: tenacity counts them from 1.
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return wait_after(state.attempt_number + 1, exc)

    def stop(state: tenacity.RetryCallState) -> bool:
        return stop_after(state.attempt_number + 1)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(exc, HubUnavailableError):
            on_retry(exc, state.upcoming_sleep)

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(HubUnavailableError),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(fn)
