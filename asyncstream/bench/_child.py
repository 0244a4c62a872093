"""One measurement in a fresh process: ``python -m asyncstream.bench._child``.

A fresh process per row and size makes peak RSS (``ru_maxrss``) that row's own.
The spec comes as JSON on stdin (it carries the hub key, which the process list
must not show); progress and the result go to stdout as JSON lines::

    {"progress": 4096}
    {"result": {"seconds": ..., "rss_peak": ..., "traced_peak": ...}}

tracemalloc slows allocation-heavy code, so by default it runs on a second pass
of the same workload (``trace="separate"``), after peak RSS was read; ``--quick``
traces the timed pass itself (``"inline"``).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from dataclasses import replace
from typing import Any, TextIO

from ._workload import Workload
from ._workloads import WORKLOADS

PROGRESS_EVERY = 0.2  # seconds between two progress lines


class ProgressWriter:
    """``tick(n)``: count paths done, write a progress line now and then."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._pending = 0
        self._last = time.monotonic()

    def __call__(self, n: int) -> None:
        self._pending += n
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY:
            self._last = now
            self.flush()

    def flush(self) -> None:
        """Write what was counted since the last line."""
        if self._pending:
            self.write({"progress": self._pending})
            self._pending = 0

    def write(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


def _rss_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _rss_peak() -> int:
    # Linux keeps ru_maxrss across exec, so a child's would never read below the
    # RSS of the parent that forked it; VmHWM belongs to this process image alone.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux


def measure(spec: dict[str, Any], tick: ProgressWriter) -> dict[str, Any]:
    """Run the spec's workload (and its tracing pass); return the figures."""
    run = WORKLOADS[spec["workload"]]
    workload = Workload(**spec["workload_args"])
    trace = spec.get("trace", "separate")
    rss_start = _rss_now() if sys.platform == "linux" else 0
    load_before = os.getloadavg()
    if trace == "inline":
        tracemalloc.start()
    seconds = run(workload, tick)
    rss_peak = _rss_peak()
    traced_peak: int | None = None
    if trace == "inline":
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elif trace == "separate":
        gc.collect()
        tracemalloc.start()
        run(replace(workload, taskid=workload.taskid + "-traced"), tick)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    tick.flush()
    return {
        "paths": workload.n,
        "seconds": seconds,
        "rss_start": rss_start,
        "rss_peak": rss_peak,
        "traced_peak": traced_peak,
        "trace": trace,
        "load": [load_before, os.getloadavg()],
    }


def main() -> None:
    """Read the spec from stdin, measure, print the result line."""
    spec = json.loads(sys.stdin.read())
    writer = ProgressWriter(sys.stdout)
    writer.write({"result": measure(spec, writer)})


if __name__ == "__main__":
    main()
