"""Deadlines: a point in time on one clock, built in one place.

A :class:`Deadline` keeps the clock it was read from, so whoever checks it (the
retry loop, a cancel scope, a page fetch) measures against that same clock;
tests inject a fake clock and the deadlines follow it. Every deadline of the
runtime is built here, by :meth:`Deadline.after` or :meth:`Deadline.at`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ._exceptions import InvalidInputError
from ._retry import Clock

__all__ = ["Deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """The moment ``when`` on ``clock``; past it, retries stop and waits end."""

    when: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Clock = time.monotonic) -> Deadline:
        """``seconds`` from now on ``clock``."""
        if math.isnan(seconds) or seconds < 0:
            raise InvalidInputError(
                f"a deadline must be 0 seconds away or more, got {seconds!r}"
            )
        return cls(clock() + seconds, clock)

    @classmethod
    def at(cls, when: float, *, clock: Clock = time.monotonic) -> Deadline:
        """The moment ``when``, a value ``clock`` returned or will return."""
        return cls(when, clock)

    def remaining(self) -> float:
        """Seconds left (0 once passed), as ``anyio.fail_after`` takes them."""
        return max(0.0, self.when - self.clock())

    @property
    def expired(self) -> bool:
        """True once the clock has reached the deadline."""
        return self.clock() >= self.when

    def __repr__(self) -> str:
        return f"<Deadline in {self.when - self.clock():.3f}s>"
