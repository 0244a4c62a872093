"""Run a custom task locally, end to end, as a worker of the hub would.

:func:`run_task` creates an input stream at the hub, feeds it from an iterator of
path objects while the task already reads it, calls the task with a stream
reference as its ``paths`` (in a worker thread, see :mod:`.._run_task`), and polls
the hub's task summary for progress. Results the task streamed are at the hub
already; a payload returned in memory (``stream_results=False``) is stored at the
hub afterwards, as a hub does with a worker's return value, so the results of a
run are always read in one place.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from .._context import TaskContext
from .._deadline import Deadline
from .._exceptions import AsyncStreamError, HubError, StreamError
from .._hub_client import HubClient
from .._paths import STATES, PathObject, State
from .._run_task import TaskRaisedError, TaskTarget, call_task
from .._task_invoker import Invocation
from ._hub import HubLocation
from ._interrupt import TaskInterrupt
from ._returned import (
    REQUEST_DEADLINE,
    describe,
    has_details,
    is_payload,
    store_payload,
)

DEFAULT_QUEUE = "local.default#custom"


class TaskResultError(AsyncStreamError):
    """The task returned without a payload and streamed nothing."""


class RunObserver(Protocol):
    """Told how the run goes, e.g. to draw a progress bar. Called on the loop."""

    def fed(self, total: int) -> None:
        """``total`` paths are in the input stream so far."""

    def feed_done(self, total: int) -> None:
        """The input stream is complete with ``total`` paths."""

    def acknowledged(self, total: int) -> None:
        """The hub holds ``total`` results of the task so far."""


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run did: counts per state at the hub, time taken, where to look."""

    target: TaskTarget
    hub: HubLocation
    taskid: str
    jobid: Any
    queue_name: str
    stream_results: bool
    fed: int
    summary: dict[State, int]
    batches: int
    seconds: float
    payload: Any = field(repr=False, default=None)

    @property
    def total(self) -> int:
        """Results stored at the hub, all states together."""
        return sum(self.summary.values())

    @property
    def not_done(self) -> int:
        """Results in a state other than processed or skipped."""
        return self.total - self.summary["processed"] - self.summary["skipped"]

    @property
    def unreported(self) -> int:
        """Paths fed that got no result at all."""
        return max(0, self.fed - self.total)

    @property
    def ok(self) -> bool:
        """True when every path fed was processed or skipped."""
        return self.not_done == 0 and self.unreported == 0

    @property
    def rate(self) -> float:
        """Results per second over the whole run."""
        return self.total / self.seconds if self.seconds > 0 else 0.0

    @property
    def results_url(self) -> str:
        """Where the hub serves this task's results."""
        return self.hub.results_url(self.taskid)


def new_jobid() -> int:
    """A numeric job id, as the hub gives, unlikely to repeat between runs."""
    return uuid.uuid4().int % 10**9


def _summary_of(task: Mapping[str, Any]) -> dict[State, int]:
    counts = task.get("summary") or {}
    return {state: int(counts.get(state, 0)) for state in STATES}


async def _task_or_none(client: HubClient, taskid: str) -> dict[str, Any] | None:
    try:
        return await client.get_task(taskid)
    except HubError as exc:
        if exc.status_code == 404:
            return None
        raise


def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _stream_reference(url: str, count: int | None) -> dict[str, Any]:
    return {"stream": url} if count is None else {"stream": url, "count": count}


@contextlib.contextmanager
def _first_error() -> Iterator[None]:
    """Raise the one error that explains a failed run, not a group of them.

    The task's own exception wins over a feed error it may have caused, unless
    the task failed only because the feed cut its input short (a StreamError):
    the feed's error then says why.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        task = next((e for e in leaves if isinstance(e, TaskRaisedError)), None)
        chosen: BaseException = task or leaves[0]
        if task is not None and isinstance(task.__cause__, StreamError):
            chosen = next((e for e in leaves if e is not task), task)
        raise chosen  # noqa: B904 (keep the error's own cause)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def _poll(
    client: HubClient, taskid: str, observer: RunObserver, interval: float
) -> None:
    while True:
        await anyio.sleep(interval)
        # Progress is best effort: a slow answer must not fail the run.
        with contextlib.suppress(HubError):
            task = await _task_or_none(client, taskid)
            if task is not None:
                observer.acknowledged(sum(_summary_of(task).values()))


async def run_task(
    target: TaskTarget,
    sources: Iterator[PathObject],
    hub: HubLocation,
    *,
    jobid: Any,
    stream_results: bool = True,
    fields: Mapping[str, Any] | None = None,
    queue_name: str = DEFAULT_QUEUE,
    taskid: str | None = None,
    observer: RunObserver | None = None,
    poll_interval: float = 0.25,
    input_total: int | None = None,
    interrupt: TaskInterrupt | None = None,
) -> RunReport:
    """Feed ``sources`` to the task through a hub stream, run it, report.

    ``input_total`` is how many path objects ``sources`` holds, when known: the
    stream reference carries it as its ``count``, as a hub's would, so that the
    task's payload reports it as ``input_total``.

    Raises :class:`~._run_task.TaskRaisedError` when the task raised, and errors
    of the asyncstream tree when the hub fails.
    """
    from ._feed import feed_stream

    taskid = taskid or str(uuid.uuid4())
    fed = 0

    def on_chunk(n: int) -> None:
        nonlocal fed
        fed += n
        if observer is not None:
            observer.fed(fed)

    # The task finds the run's hub in its context, as a worker's task would
    # find its own in the configuration.
    context = TaskContext(taskid, queue_name, target.name, jobid, hub=hub.settings)
    async with HubClient(hub.settings) as client:

        def deadline() -> Deadline:
            return client.deadline(REQUEST_DEADLINE)

        stream = await client.create_stream(deadline=deadline())
        invocation = Invocation(
            context,
            [_stream_reference(stream["url"], input_total)],
            stream_results=stream_results,
            fields=dict(fields or {}),
        )
        started = time.monotonic()

        async def feed() -> None:
            total = await feed_stream(
                client, stream["id"], sources, deadline=deadline, on_chunk=on_chunk
            )
            if observer is not None:
                observer.feed_done(total)

        payload: Any = None
        with _first_error():
            async with anyio.create_task_group() as group:
                group.start_soon(feed)
                if observer is not None:
                    group.start_soon(_poll, client, taskid, observer, poll_interval)
                try:
                    # Run through ``interrupt`` when given, so that Ctrl-C can
                    # reach the task in its thread.
                    runner = interrupt.call if interrupt is not None else _direct
                    payload = await anyio.to_thread.run_sync(
                        runner, call_task, target, invocation
                    )
                finally:
                    # Whether it returned or raised, the task reads no more: stop
                    # polling; a feed still running has no reader left.
                    group.cancel_scope.cancel()
        task = await _task_or_none(client, taskid)
        if not is_payload(payload) and task is not None and task.get("finished"):
            # Its results are at the hub, but what it returned is not the
            # payload a worker would hand back: a bug to say, as --no-stream does.
            raise TaskResultError(
                f"task {target.name!r} returned {describe(payload)} instead of"
                " its payload: end it with 'return status.dump()'"
            )
        if task is None or not task.get("finished"):
            if not has_details(payload):
                raise TaskResultError(
                    f"task {target.name!r} returned {type(payload).__name__} and"
                    " streamed no results: end it with 'return status.dump()'"
                )
            await store_payload(client, context.identity, payload)
            task = await client.get_task(taskid)
        # Until every result is at the hub, as a streaming task is measured.
        seconds = time.monotonic() - started
    summary = _summary_of(task)
    if observer is not None:
        observer.acknowledged(sum(summary.values()))
    return RunReport(
        target=target,
        hub=hub,
        taskid=taskid,
        jobid=jobid,
        queue_name=queue_name,
        stream_results=stream_results,
        fed=fed,
        summary=summary,
        batches=int(task.get("batches", 0)),
        seconds=seconds,
        payload=payload,
    )
