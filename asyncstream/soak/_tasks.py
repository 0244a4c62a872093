"""The soak's tasks: they read the producer's stream and add a state per path.

Each task ``expand_paths`` its inputs (a few inline paths, then the stream) and
adds a state chosen from the path alone (:func:`decide`), some of them failures
with messages: as the sync shim in a thread of its own, or as the async core in
the soak's event loop (with ``async with`` or the seed's detached style). What
it did is kept in a :class:`TaskOutcome` for the checker.
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from .._paths import PathObject, State
from .._retry import RetryPolicy
from .._stream_results import DeliveryReport
from ..streamstatus import AsyncStreamTaskResults, StreamTaskResults
from ..utils.inputs import expand_paths
from ._chaos import DumpGate
from ._check import Added

TaskMode = Literal["sync", "async", "detached"]
FAST_RETRY = RetryPolicy(initial=0.02, maximum=0.5)


def decide(task_index: int, path: str) -> tuple[State, list[str] | None]:
    """The state (and failure messages) task ``task_index`` gives ``path``."""
    h = zlib.crc32(f"{task_index}:{path}".encode())
    r = h % 100
    if r < 8:
        messages = [f"E{h % 997}: cannot act on {path}"]
        if r < 2:
            messages.append("retry later")
        return "failures", messages
    if r < 18:
        return "skipped", None
    if r < 21:
        return "aborted", None
    if r < 23:
        return "inprogress", None
    return "processed", None


def expected_object(obj: PathObject, messages: list[str] | None) -> PathObject:
    """The path object the hub must store for ``obj`` added with ``messages``."""
    out = dict(obj)
    if messages is not None:
        out["message"] = list(out.get("message", [])) + messages
    return out


# -- the tasks --------------------------------------------------------------------


class TaskAborted(Exception):
    """A task of the soak stopped itself mid-stream (out of time, or failing)."""


@dataclass(slots=True)
class TaskSpec:
    """One task of a round: its id, how it runs, its inputs and knobs."""

    taskid: str
    index: int
    mode: TaskMode
    inline: list[PathObject]
    stream_url: str
    stream_count: int
    page_size: int
    options: dict[str, Any]
    hub_url: str
    api_key: str | None
    # Stop after this many adds: "abort" as a task out of time does (abort(),
    # everything unacknowledged spooled), "raise" as a failing task body does
    # (close(): what was added is still delivered, the task not completed).
    stop_after: int | None = None
    stop_how: Literal["abort", "raise"] = "abort"

    @property
    def paths(self) -> list[Any]:
        ref = {"stream": self.stream_url, "count": self.stream_count}
        return [*self.inline, ref]

    def reader_options(self) -> dict[str, Any]:
        return {
            "hub_url": self.hub_url,
            "api_key": self.api_key,
            "page_size": self.page_size,
            "prefetch": 2,
            "wait": 1.0,
            "idle_timeout": 60.0,
            "retry_policy": FAST_RETRY,
        }


@dataclass(slots=True)
class TaskOutcome:
    """What a task did: its accepted adds, how far it got, how it ended."""

    spec: TaskSpec
    added: list[Added] = field(default_factory=list)
    read_all: bool = False
    reached_dump: bool = False
    payload: dict[str, Any] | None = None
    error: BaseException | None = None
    report: DeliveryReport | None = None
    seconds: float = 0.0
    finished: threading.Event = field(default_factory=threading.Event)


def _record(outcome: TaskOutcome, obj: PathObject) -> tuple[State, list[str] | None]:
    state, messages = decide(outcome.spec.index, str(obj["path"]))
    return state, messages


def run_sync_task(outcome: TaskOutcome, gate: DumpGate, gate_timeout: float) -> None:
    """A Celery-style task body: the sync shim and plain ``for`` (own thread)."""
    spec = outcome.spec
    start = time.monotonic()
    arrived = False
    status: StreamTaskResults | None = None
    try:
        status = StreamTaskResults(
            "soak",
            spec.paths,
            "soak-job",
            "soak.default#soak",
            spec.taskid,
            **spec.options,
        )
        for obj in expand_paths(spec.paths, **spec.reader_options()):
            state, messages = _record(outcome, obj)
            status.add(state, obj, message=messages)
            outcome.added.append(Added(state, expected_object(obj, messages)))
            if spec.stop_after is not None and len(outcome.added) >= spec.stop_after:
                if spec.stop_how == "abort":
                    status.abort()
                raise TaskAborted(f"{spec.stop_how} after {spec.stop_after} adds")
        outcome.read_all = True
        gate.arrive()
        arrived = True
        gate.wait_sync(gate_timeout)
        outcome.reached_dump = True
        outcome.payload = status.dump()
    except BaseException as exc:  # recorded for the checker, never lost
        outcome.error = exc
        if status is not None:
            # Deliver what was added, spool the rest; the first error is reported.
            with contextlib.suppress(Exception):
                status.close()
    finally:
        if not arrived:
            gate.arrive()
        if status is not None:
            outcome.report = status.report
        outcome.seconds = time.monotonic() - start
        outcome.finished.set()


async def _add_all(outcome: TaskOutcome, status: AsyncStreamTaskResults) -> None:
    spec = outcome.spec
    async with expand_paths(spec.paths, **spec.reader_options()) as inputs:
        async for obj in inputs:
            state, messages = _record(outcome, obj)
            await status.add(state, obj, message=messages)
            outcome.added.append(Added(state, expected_object(obj, messages)))
            if spec.stop_after is not None and len(outcome.added) >= spec.stop_after:
                if spec.stop_how == "abort":
                    await status.aabort()
                raise TaskAborted(f"{spec.stop_how} after {spec.stop_after} adds")
    outcome.read_all = True


async def run_async_task(
    outcome: TaskOutcome, gate: DumpGate, gate_timeout: float
) -> None:
    """An ``async def`` task: the async core, managed or detached (seed style)."""
    spec = outcome.spec
    start = time.monotonic()
    arrived = False
    status = AsyncStreamTaskResults(
        "soak",
        spec.paths,
        "soak-job",
        "soak.default#soak",
        spec.taskid,
        **spec.options,
    )
    try:
        if spec.mode == "async":
            async with status:
                await _add_all(outcome, status)
                gate.arrive()
                arrived = True
                await gate.wait(gate_timeout)
                outcome.reached_dump = True
                outcome.payload = await status.dump()
        else:
            try:
                await _add_all(outcome, status)
                gate.arrive()
                arrived = True
                await gate.wait(gate_timeout)
                outcome.reached_dump = True
                outcome.payload = await status.dump()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await status.aclose()
                raise
    except Exception as exc:
        outcome.error = exc
    finally:
        if not arrived:
            gate.arrive()
        outcome.report = status.report
        outcome.seconds = time.monotonic() - start
        outcome.finished.set()
