"""How long and how hard a soak runs."""

from __future__ import annotations

from dataclasses import dataclass

from ._chaos import FAULT_KINDS


@dataclass(frozen=True, slots=True)
class SoakConfig:
    """How long and how hard to soak.

    ``duration``: start rounds until this many seconds have passed (at least
    ``min_rounds``, at most ``max_rounds``). ``quick``: small rounds, one of each
    fault kind, for CI.
    """

    seed: int = 0
    duration: float = 60.0
    quick: bool = False
    min_rounds: int = len(FAULT_KINDS)
    max_rounds: int = 10_000
    request_timeout: float = 0.5
    delivery_timeout: float = 30.0
    outage_delivery_timeout: float = 1.5
    round_limit: float = 120.0

    @classmethod
    def for_quick(cls, seed: int, duration: float | None) -> SoakConfig:
        return cls(
            seed=seed,
            duration=duration if duration is not None else 0.0,
            quick=True,
            round_limit=45.0,
        )

    @property
    def paths_range(self) -> tuple[int, int]:
        return (300, 900) if self.quick else (1000, 6000)
