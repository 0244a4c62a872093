"""The live rate of the run's progress bars: the pace of the last seconds."""

from __future__ import annotations

from asyncstream.run._progress import RATE_WINDOW, LiveRate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_is_the_pace_of_the_last_seconds_not_the_average_since_start() -> None:
    clock = Clock()
    rate = LiveRate(clock)
    assert rate.update(0) == ""
    clock.now += 0.25
    assert rate.update(10) == ""  # too short a span to say anything
    # A slow start: 1,000 paths in 10 s.
    for _ in range(10):
        clock.now += 1
        rate.update(int((clock.now - 100) * 100))
    # Then 20,000 paths/s: the rate shown is that, not the average since start.
    done = 1_000
    for _ in range(int(RATE_WINDOW) + 2):
        clock.now += 1
        done += 20_000
        shown = rate.update(done)
    assert shown == "20,000 paths/s"


def test_rate_drops_to_zero_when_nothing_moves() -> None:
    clock = Clock()
    rate = LiveRate(clock)
    rate.update(0)
    clock.now += 1
    assert rate.update(5_000) == "5,000 paths/s"
    for _ in range(int(RATE_WINDOW) + 1):
        clock.now += 1
        shown = rate.update(5_000)
    assert shown == "0 paths/s"
