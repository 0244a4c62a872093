"""One worker process of a load run: ``python -m asyncstream.bench._load_worker``.

It plays a Celery worker with many task threads: ``tasks`` streaming tasks at
once, each adding ``results`` results through ``StreamTaskResults`` (one thread
per task) or ``AsyncStreamTaskResults`` (one event loop). The spec comes as JSON
on stdin (it carries the hub key, which the process list must not show). The
worker prints ``{"ready": true}``, waits for a line on stdin so that every worker
of the run starts at once, then prints one line per task::

    {"task": "<taskid>", "sent": 50000, "seconds": 12.3, "retries": 4,
     "error": null}
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio

from .._paths import STATES
from .._stream_results import AsyncStreamTaskResults
from ..streamstatus import StreamTaskResults

Emit = Callable[[dict[str, Any]], None]


def result_path(taskid: str, i: int) -> str:
    """The ``i``-th path a load task reports (distinct within the task)."""
    return f"/mmfs1/load/{taskid}/d{i % 101:03d}/file{i}.dat"


def _options(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "hub_url": spec["url"],
        "api_key": spec.get("api_key"),
        "delivery_timeout": float(spec["deadline"]),
        "spool_dir": spec["spool_dir"],
    }


def _outcome(
    taskid: str, sent: int, start: float, retries: int, error: BaseException | None
) -> dict[str, Any]:
    return {
        "task": taskid,
        "sent": sent,
        "seconds": time.monotonic() - start,
        "retries": retries,
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


def run_thread_task(spec: dict[str, Any], taskid: str, emit: Emit) -> None:
    """One task through the sync face, as a task thread would run it."""
    n, start, sent = int(spec["results"]), time.monotonic(), 0
    status = StreamTaskResults(
        "load", [], spec["jobid"], "load", taskid, **_options(spec)
    )
    error: BaseException | None = None
    try:
        with status:
            for i in range(n):
                status.add(STATES[i % 2], result_path(taskid, i))
                sent += 1
            status.dump()
    except Exception as exc:  # reported, not raised: the run counts failures
        error = exc
    emit(_outcome(taskid, sent, start, status.report.retries, error))


async def run_async_task(spec: dict[str, Any], taskid: str, emit: Emit) -> None:
    """One task through the async core."""
    n, start, sent = int(spec["results"]), time.monotonic(), 0
    status = AsyncStreamTaskResults(
        "load", [], spec["jobid"], "load", taskid, **_options(spec)
    )
    error: BaseException | None = None
    try:
        async with status:
            for i in range(n):
                await status.add(STATES[i % 2], result_path(taskid, i))
                sent += 1
            await status.dump()
    except Exception as exc:
        error = exc
    emit(_outcome(taskid, sent, start, status.report.retries, error))


def run_worker(spec: dict[str, Any], emit: Emit) -> None:
    """Run every task of this worker at once; return when all have ended."""
    taskids = [f"{spec['prefix']}-t{t:03d}" for t in range(int(spec["tasks"]))]
    if spec.get("mode", "threads") == "async":

        async def run_all() -> None:
            async with anyio.create_task_group() as group:
                for taskid in taskids:
                    group.start_soon(run_async_task, spec, taskid, emit)

        anyio.run(run_all)
        return
    threads = [
        threading.Thread(target=run_thread_task, args=(spec, taskid, emit))
        for taskid in taskids
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    """Read the spec line, say ready, wait for the go line, run, report."""
    spec = json.loads(sys.stdin.readline())
    if spec.get("nice"):
        # On the hub's own machine, workers must not take the CPU the hub needs
        # to serve them, as clients on other machines would not.
        os.nice(int(spec["nice"]))
    lock = threading.Lock()

    def emit(message: dict[str, Any]) -> None:
        with lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    emit({"ready": True})
    sys.stdin.readline()
    run_worker(spec, emit)


if __name__ == "__main__":
    main()
