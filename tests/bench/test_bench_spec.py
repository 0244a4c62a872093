"""What each bench child is asked to do: the tracing of its passes."""

from __future__ import annotations

from typing import Any

import pytest

from asyncstream.bench import Caps
from asyncstream.bench._rows import plan
from asyncstream.bench._runner import BenchConfig, _spec


class _Streams:
    url = "http://127.0.0.1:1"


class _Hubs:
    """What ``_spec`` reads of the running hubs: the streams hub's address and the
    references that add up to a size."""

    streams = _Streams()

    def references(self, n: int) -> list[dict[str, Any]]:
        return [{"stream": "/api/streams/s/", "count": n}]


@pytest.mark.parametrize("trace", ["separate", "inline", "off"])
def test_every_row_traces_as_the_run_says_latency_rows_included(trace: str) -> None:
    # A latency row once traced its timed pass whatever the setting: tracemalloc
    # slowed its reader about fourfold, so its ratio to the untraced no-latency
    # row measured tracemalloc, not the latency.
    config = BenchConfig(sizes=(1_000_000,), trace=trace)
    runs = plan(config.sizes, Caps())
    assert any(run.row.latency for run in runs)
    for run in runs:
        spec = _spec(config, run, _Hubs(), None)  # type: ignore[arg-type]
        assert spec["trace"] == trace, run.row.key
