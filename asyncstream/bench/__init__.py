"""``asyncstream bench``: streaming throughput and memory against raw ceilings.

Every row is measured in a child process of its own against hubs running in
processes of their own, on loopback: raw httpx ceilings, ``StreamTaskResults``
(async and through the sync shim), ``expand_paths`` (prefetch on and off, with
and without 20 ms per page), end to end, and the baselines a user would write
otherwise. The runner is :func:`asyncstream.bench._runner.run_bench`.

A tool for testing asyncstream itself: it runs from a source checkout, and the
wheel leaves it out. Only the pure parts are imported here: every measurement
imports this package in a fresh child process, which must not pay for the hub
server and rich.
"""

from __future__ import annotations

from ._results import BenchResults, Measurement, TargetResult, evaluate_targets
from ._rows import DEFAULT_SIZES, QUICK_SIZES, ROWS, Caps, RowSpec

__all__ = [
    "DEFAULT_SIZES",
    "QUICK_SIZES",
    "ROWS",
    "BenchResults",
    "Caps",
    "Measurement",
    "RowSpec",
    "TargetResult",
    "evaluate_targets",
]
