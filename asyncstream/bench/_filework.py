"""File work under measurement: real files deleted and moved, and a slow-disk model.

Each workload runs in a bench child process (:mod:`._child`) and builds its own
fresh scratch tree first, untimed, in directories of :data:`PER_DIR` files:

* ``files:<op>:raw`` — a plain ``os.unlink``/``os.rename`` loop, no runtime: the
  local ceiling;
* ``files:<op>:<face>`` — the example snapshot-diff handler (``async`` or
  ``sync`` face) run as ``asyncstream run`` runs a task: its input a stream on a
  hub, its results streamed to the results hub (discard or SQLite), timed from
  the call to the return of ``dump()``; ``files:delete:async:gone`` the same
  over files already gone (every path ``skipped``), for memory at large sizes;
* ``latency:<kind>:<concurrency>`` — ``apply_paths`` over an operation that
  waits 2 ms (a GIL-releasing ``time.sleep`` in a thread, or an ``await`` that
  ends as I/O does, on a kernel timer: :mod:`._latency_op`), the results
  streamed to the discard hub with the status's default settings: a model of a
  network or parallel file system, whose bound is ``concurrency / 2 ms``.
* ``latency:plain:<concurrency>`` — the same waits in plain threads, no runtime:
  what the machine's timers and scheduler let the model reach;
* ``latency:loop:<concurrency>`` — the same ``await`` in bare asyncio tasks, no
  runtime, on the loop the runtime runs on (uvloop where installed): what one
  event loop lets the async model reach. Its tasks wake together, so the loop's
  time per operation adds to every 2 ms wait: on a loaded machine this, not
  the bound, is the async rows' ceiling.

Every workload checks that each path got its result and that the files are gone
or moved: a fast figure is never a lost one.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import anyio
import httpx

from .. import _event_loop
from .._apply import apply_paths
from .._config import HubSettings
from .._context import TaskContext
from .._run_task import TaskTarget, call_task
from .._task_invoker import Invocation
from ..demo._spread import spread_subdirectories
from ..streamstatus import AsyncStreamTaskResults
from ._latency_op import OP_SECONDS, TimedOps
from ._workload import QUEUE, Tick, Workload, check_delivered

PER_DIR: Final = 100
FEED_CHUNK: Final = 10_000
OPS: Final = ("delete", "move")
FACES: Final = ("async", "sync")
CONCURRENCIES: Final = (1, 16, 64)


def _name(root: str, i: int, prefix: str = "f") -> str:
    return f"{root}/d{i // PER_DIR:05d}/{prefix}{i}"


def _build(replica: str, n: int) -> None:
    """``n`` empty files under ``replica``, :data:`PER_DIR` per directory."""
    for i in range(n):
        if i % PER_DIR == 0:
            os.makedirs(f"{replica}/d{i // PER_DIR:05d}")
        os.close(os.open(_name(replica, i), os.O_CREAT | os.O_WRONLY, 0o644))


def _left(replica: str, prefix: str) -> int:
    """How many files under ``replica`` have names starting with ``prefix``."""
    count = 0
    for directory in os.scandir(replica):
        count += sum(1 for e in os.scandir(directory) if e.name.startswith(prefix))
    return count


def _objects(op: str, source: str, start: int, stop: int) -> list[dict[str, Any]]:
    if op == "delete":
        return [{"path": _name(source, i)} for i in range(start, stop)]
    return [
        {"path": _name(source, i, "m"), "from": _name(source, i)}
        for i in range(start, stop)
    ]


def _feed(w: Workload, op: str, source: str) -> dict[str, Any]:
    """The task's input as a closed stream on the streams hub; its reference."""
    with httpx.Client(base_url=w.streams_url or "", headers=w.headers, timeout=60) as c:
        stream = c.post("/api/streams/", json={}).raise_for_status().json()
        for start in range(0, w.n, FEED_CHUNK):
            paths = _objects(op, source, start, min(w.n, start + FEED_CHUNK))
            c.post(stream["url"], json={"paths": paths}).raise_for_status()
        c.post(f"/api/streams/{stream['id']}/close").raise_for_status()
    # httpx binds each response to its stream, a cycle that keeps the request
    # (a body of FEED_CHUNK paths) until a full collection: one per chunk, so
    # more of it at bigger sizes. It is this setup's, not the task's memory.
    gc.collect()
    return {"stream": f"{w.streams_url}{stream['url']}", "count": w.n}


class _Scratch:
    """A fresh scratch directory with a replica tree, removed on exit."""

    def __init__(self, n: int) -> None:
        self.root = tempfile.mkdtemp(prefix="asyncstream-bench-files-")
        self.source = f"{self.root}/source"
        self.replica = f"{self.root}/replica"
        os.makedirs(self.replica)
        # Its directories spread over the disk: a tree built where the last row
        # just deleted its own would take minutes (see demo._spread).
        spread_subdirectories(self.replica)
        _build(self.replica, n)

    def __enter__(self) -> _Scratch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _check_files(op: str, scratch: _Scratch, n: int) -> None:
    left, arrived = _left(scratch.replica, "f"), _left(scratch.replica, "m")
    if left or (op == "move" and arrived != n):
        raise RuntimeError(f"{op}: {left} files left in place, {arrived} moved")


def raw_loop(op: str) -> Callable[[Workload, Tick], float]:
    """``os.unlink``/``os.rename`` over every file, in a plain loop."""

    def run(w: Workload, tick: Tick) -> float:
        with _Scratch(w.n) as scratch:
            olds = [_name(scratch.replica, i) for i in range(w.n)]
            news = [_name(scratch.replica, i, "m") for i in range(w.n)]
            start = time.perf_counter()
            if op == "delete":
                for path in olds:
                    os.unlink(path)
            else:
                for old, new in zip(olds, news, strict=True):
                    os.rename(old, new)
            seconds = time.perf_counter() - start
            tick(w.n)
            _check_files(op, scratch, w.n)
            return seconds

    return run


def _handler(op: str, face: str) -> TaskTarget:
    from ..demo import snapdiff

    name = f"{op}_handler" if face == "async" else f"{op}_handler_sync"
    spec = f"asyncstream.demo.snapdiff:{name}"
    return TaskTarget(spec, getattr(snapdiff, name), face, name)  # type: ignore[arg-type]


def handler_run(
    op: str, face: str, *, files: bool = True
) -> Callable[[Workload, Tick], float]:
    """The example handler through the runtime, input streamed, results streamed.

    Without ``files`` the tree is not built: every path is already gone and
    ``skipped``, a re-run's case, which measures the pipeline's memory at sizes
    whose trees would take long to build.
    """

    def run(w: Workload, tick: Tick) -> float:
        target = _handler(op, face)
        with _Scratch(w.n if files else 0) as scratch:
            reference = _feed(w, op, scratch.source)
            # The task's hub (its context) serves the input stream; the results go
            # to the hub under test, named to the status as a setting.
            streams = HubSettings(w.streams_url or "", w.api_key)
            call = Invocation(
                TaskContext(w.taskid, QUEUE, target.name, 1, hub=streams),
                [reference],
                stream_results=True,
                fields={"source_root": scratch.source, "replica_root": scratch.replica},
                status_options={"hub_url": w.results_url, "api_key": w.api_key},
            )
            start = time.perf_counter()
            payload = call_task(target, call)
            seconds = time.perf_counter() - start
            tick(w.n)
            summary = payload["status"]["summary"]
            check_delivered(w, summary["processed" if files else "skipped"])
            if files:
                _check_files(op, scratch, w.n)
            return seconds

    return run


def _sleep_op(item: dict[str, Any]) -> str:
    time.sleep(OP_SECONDS)  # releases the GIL, as a system call waiting would
    return "processed"


def plain_sleeps(concurrency: int) -> Callable[[Workload, Tick], float]:
    """``concurrency`` plain threads waiting 2 ms per operation, no runtime at all.

    The latency model's bound assumes each wait takes 2 ms; on a loaded machine
    a thread wakes late, and this row says how late: what the model could reach
    here with no runtime in the way.
    """

    def run(w: Workload, tick: Tick) -> float:
        per_thread = -(-w.n // concurrency)

        def worker() -> None:
            for _ in range(per_thread):
                time.sleep(OP_SECONDS)

        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        tick(per_thread * concurrency)
        return seconds

    return run


def bare_loop_sleeps(concurrency: int) -> Callable[[Workload, Tick], float]:
    """``concurrency`` asyncio tasks awaiting the 2 ms operation, no runtime at all:
    the async rows' ceiling on this machine, as plain threads are the threads'."""

    async def main(n: int) -> float:
        per_task = -(-n // concurrency)

        with TimedOps() as op:

            async def worker() -> None:
                for _ in range(per_task):
                    await op({})

            start = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(concurrency):
                    group.start_soon(worker)
            return time.perf_counter() - start

    def run(w: Workload, tick: Tick) -> float:
        # On the runtime's loop, as the rows it qualifies: with another loop it
        # would measure the difference between the loops, not the runtime.
        seconds = _event_loop.run(main, w.n)
        tick(-(-w.n // concurrency) * concurrency)
        return seconds

    return run


def _names(n: int) -> Iterator[str]:
    return (f"/remote/fs/dir{i % 97:02d}/file{i}" for i in range(n))


def latency_model(kind: str, concurrency: int) -> Callable[[Workload, Tick], float]:
    """``apply_paths`` over 2 ms operations at ``concurrency``, to the discard hub.

    The status has the runtime's default settings, as the handler rows' have (a
    task's under ``asyncstream run``), not the sender rows' batches of 500: a
    results POST costs the 2 ms waits more than its share of the loop (threads
    woken while it runs queue for the GIL, and the hub takes a core), so four
    times as many of them held the threads row at 0.78-0.80x of its bound
    against 0.81-0.85x.
    """

    async def main(w: Workload) -> float:
        start = time.perf_counter()
        status = AsyncStreamTaskResults(
            "bench", [], 1, QUEUE, w.taskid, hub_url=w.results_url, api_key=w.api_key
        )
        async with status:
            with TimedOps() as timed:  # opens a timer only when one is awaited
                op: Any = _sleep_op if kind == "threads" else timed
                await apply_paths(op, _names(w.n), status, concurrency=concurrency)
            await status.dump()
        check_delivered(w, status.statistics().items_acked)
        return time.perf_counter() - start

    def run(w: Workload, tick: Tick) -> float:
        # On the loop the runtime runs its own on (uvloop where installed).
        seconds = _event_loop.run(main, w)
        tick(w.n)
        return seconds

    return run


FILE_WORKLOADS: dict[str, Callable[[Workload, Tick], float]] = {
    **{f"files:{op}:raw": raw_loop(op) for op in OPS},
    **{f"files:{op}:{face}": handler_run(op, face) for op in OPS for face in FACES},
    "files:delete:async:gone": handler_run("delete", "async", files=False),
    **{
        f"latency:{kind}:{c}": latency_model(kind, c)
        for kind in ("threads", "async")
        for c in CONCURRENCIES
    },
    **{f"latency:plain:{c}": plain_sleeps(c) for c in CONCURRENCIES},
    **{f"latency:loop:{c}": bare_loop_sleeps(c) for c in CONCURRENCIES},
}
