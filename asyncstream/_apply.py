"""``apply_paths``: a task's per-path work applied to its input, concurrently.

A task body names what to do to one path and hands it, with its input and its
status, to :func:`apply_paths`; the runtime does the rest at the speed of the file
system: blocking work in worker threads, a chunk of paths per thread hand-off,
``async def`` work with bounded concurrency, one result per path added to the
status, memory bounded all the way::

    def delete_one(item):                       # blocking: runs in worker threads
        os.unlink(item["path"])
        return "processed"

    async def delete_handler(status, *, paths, **fields):
        await apply_paths(delete_one, expand_paths(paths), status)
        return await status.dump()

    def delete_handler_sync(status, *, paths, **fields):    # a plain task body
        apply_paths(delete_one, expand_paths(paths), status).run()
        return status.dump()
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Self

from . import _portal
from ._context import current_task_context
from ._detached import DetachedContext
from ._exceptions import UsageError
from ._path_leftovers import give_late, outcomes_after, taken_of_run
from ._path_outcomes import (
    AsyncPathFunction,
    ChunkOutcomes,
    PathFunction,
    PathOutcome,
    state_runs,
)
from ._path_settings import (
    DEFAULT_CHUNK_SIZE,
    LOCAL_DISK_CONCURRENCY,
    NETWORK_FS_CONCURRENCY,
    concurrency_setting,
    is_async_function,
    positive,
)
from ._path_workers import Inputs, PathWorkers
from ._paths import PathObject, State
from ._payload import empty_summary

logger = logging.getLogger("asyncstream.apply")

__all__ = [
    "LOCAL_DISK_CONCURRENCY",
    "NETWORK_FS_CONCURRENCY",
    "AppliedPaths",
    "PathOutcome",
    "apply_paths",
]


class AppliedPaths:
    """A per-path function applied to a task's input; see :func:`apply_paths`.

    ``await`` it (async) or call :meth:`run` (sync) to apply the function to every
    path; or iterate it, ``async for`` or ``for``, to see each :class:`PathOutcome`
    after it was added to the status. ``async with`` (or ``with``) around the loop
    stops the workers the moment the block is left; a bare loop stops them when it
    ends, breaks or raises. It can be used once.
    """

    def __init__(
        self,
        fn: PathFunction | AsyncPathFunction,
        inputs: Inputs,
        status: Any,
        *,
        concurrency: int,
        chunk_size: int,
        ordered: bool,
    ) -> None:
        self._fn = fn
        self._inputs = inputs
        self._status = status
        self._concurrency = concurrency
        self._chunk_size = chunk_size
        self._ordered = ordered
        self._workers: PathWorkers | None = None
        self._summary = empty_summary()
        self._sync_add: bool | None = None  # is status.add plain? asked once
        # A run that stops early still reports every path worked on: the part
        # of the chunk being recorded that the status did not take, the rest
        # of the chunk being iterated (its next position), then what the
        # engine holds; handed to the status without awaiting, once.
        self._untaken: ChunkOutcomes | None = None
        self._iterating: tuple[ChunkOutcomes, int] | None = None
        self._kept = False

    def __repr__(self) -> str:
        counts = " ".join(f"{s}={n}" for s, n in self._summary.items() if n)
        workers = repr(self._workers) if self._workers else "unopened"
        return f"<AppliedPaths {workers} {counts or 'nothing done'}>"

    @property
    def summary(self) -> dict[State, int]:
        """How many paths ended in each state so far."""
        return dict(self._summary)

    def _open(self) -> PathWorkers:
        if self._workers is not None:
            raise UsageError(f"{self!r} was already started: it runs once")
        self._workers = PathWorkers(
            self._fn,
            self._inputs,
            is_async=is_async_function(self._fn),
            concurrency=self._concurrency,
            chunk_size=self._chunk_size,
            ordered=self._ordered,
            context=current_task_context(),
        )
        return self._workers

    # -- async -------------------------------------------------------------------

    def _adds_plainly(self, status: Any) -> bool:
        """Is ``status.add`` a plain function (not a coroutine)? Asked once."""
        if status is not self._status:
            return not inspect.iscoroutinefunction(status.add)
        if self._sync_add is None:
            self._sync_add = not inspect.iscoroutinefunction(status.add)
        return self._sync_add

    async def _record(self, chunk: ChunkOutcomes, status: Any) -> None:
        summary = self._summary
        if status is None:
            _count(summary, chunk)
            return
        if self._adds_plainly(status):
            self._record_sync(chunk, status)
            return
        add, add_many = status.add, getattr(status, "add_many", None)
        done = taken = 0  # paths of the chunk recorded; of the current run
        run: PathOutcome | tuple[State, list[PathObject]] | None = None
        try:
            for run in state_runs(chunk):
                if isinstance(run, PathOutcome):
                    await add(run.state, run.path, message=run.message)
                    summary[run.state] += 1
                    done += 1
                    continue
                state, items = run
                if add_many is not None:
                    await add_many(state, _bare(items))
                else:
                    for taken, item in enumerate(items):  # noqa: B007
                        await add(state, item)
                    taken = 0
                summary[state] += len(items)
                done += len(items)
        except BaseException:
            self._stopped_at(chunk, done, run, taken, add_many, status)
            raise

    def _stopped_at(
        self,
        chunk: ChunkOutcomes,
        done: int,
        run: PathOutcome | tuple[State, list[PathObject]] | None,
        added: int,
        add_many: Any,
        status: Any,
    ) -> None:
        """The status raised while taking ``run`` of ``chunk`` (``done`` paths
        of it recorded before): count what it took of the run, and keep the
        rest for :meth:`_keep_unrecorded`."""
        taken = taken_of_run(run, added, add_many, status)
        if taken and isinstance(run, tuple):
            self._summary[run[0]] += taken
        self._untaken = outcomes_after(chunk, done + taken)

    async def _run(self) -> dict[State, int]:
        return await self._drive(self._open(), self._status)

    async def _drive(self, workers: PathWorkers, status: Any) -> dict[State, int]:
        try:
            async with workers:
                while (chunk := await workers.next_chunk()) is not None:
                    await self._record(chunk, status)
        except BaseException:
            self._keep_unrecorded(workers, status)
            raise
        return self.summary

    def __await__(self) -> Any:
        """Apply the function to every path; return the count per state."""
        return self._run().__await__()

    async def __aenter__(self) -> Self:
        await self._open().__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._workers is not None:
            try:
                await self._workers.__aexit__(exc_type, exc, tb)
            finally:
                self._keep_unrecorded(self._workers, self._status)

    def __aiter__(self) -> AsyncIterator[PathOutcome]:
        return self._iterate_async()

    async def _iterate_async(self) -> AsyncIterator[PathOutcome]:
        detached: DetachedContext | None = None
        if self._workers is None:
            # A bare 'async for' has no block to host the workers' task group:
            # a host task of its own holds it until the loop is closed.
            workers = self._open()
            workers.raise_on_exit = False
            detached = DetachedContext(workers, repr(self))
            await detached.open()
        else:
            workers = self._workers
        try:
            while (chunk := await workers.next_chunk()) is not None:
                for at, outcome in enumerate(chunk.outcomes(), 1):
                    self._iterating = chunk, at
                    await self._record(_single(outcome), self._status)
                    yield outcome
                self._iterating = None
        finally:
            if detached is not None:
                try:
                    await detached.close()
                finally:
                    self._keep_unrecorded(workers, self._status)

    # -- sync ----------------------------------------------------------------------

    def _record_sync(self, chunk: ChunkOutcomes, status: Any) -> None:
        summary = self._summary
        if status is None:
            _count(summary, chunk)
            return
        add, add_many = status.add, getattr(status, "add_many", None)
        done = taken = 0  # paths of the chunk recorded; of the current run
        run: PathOutcome | tuple[State, list[PathObject]] | None = None
        try:
            for run in state_runs(chunk):
                if isinstance(run, PathOutcome):
                    add(run.state, run.path, message=run.message)
                    summary[run.state] += 1
                    done += 1
                    continue
                state, items = run
                if add_many is not None:
                    add_many(state, _bare(items))
                else:
                    for taken, item in enumerate(items):  # noqa: B007
                        add(state, item)
                    taken = 0
                summary[state] += len(items)
                done += len(items)
        except BaseException:
            self._stopped_at(chunk, done, run, taken, add_many, status)
            raise

    def _check_sync_status(self) -> None:
        add = getattr(self._status, "add", None)
        if add is not None and inspect.iscoroutinefunction(add):
            raise UsageError(
                f"{type(self._status).__name__}.add is a coroutine: from sync code"
                " pass the sync status (StreamTaskResults, FileActionStatus), or"
                " 'await' apply_paths(...) in async code"
            )

    def run(self) -> dict[State, int]:
        """Apply the function to every path from sync code; return the count per
        state.

        With the runtime's own statuses (or none) the whole run, outcomes added
        to the status included, happens on the event-loop thread while this one
        waits, as in an ``async def`` task: a thread that took each chunk's
        outcomes across and added them itself took the GIL from the workers
        (the example delete handler 119k paths/s against the async face's 146k).
        Any other status (one of the task's own, or a subclass or wrapper with
        an ``add`` of its own) is added to here, the outcomes crossing a chunk
        at a time.
        """
        self._check_sync_status()
        # Opened here, before the status hands anything over: a second run is
        # refused first, and the workers take this thread's task context.
        workers = self._open()
        status = self._status
        if status is not None:
            hook = _loop_side(status)
            if hook is None:
                for _ in self._iterate_sync(record_each=False, workers=workers):
                    pass
                return self.summary
            status = hook()
        return _portal.call(self._drive, workers, status)

    def __iter__(self) -> Iterator[PathOutcome]:
        return self._iterate_sync(record_each=True)

    def _iterate_sync(
        self, *, record_each: bool, workers: PathWorkers | None = None
    ) -> Iterator[PathOutcome]:
        self._check_sync_status()
        if workers is None:
            workers = self._open()
        try:
            with _portal.wrap_async_context(workers):
                while (chunk := _portal.call(workers.next_chunk)) is not None:
                    if not record_each:
                        self._record_sync(chunk, self._status)
                        continue
                    for at, outcome in enumerate(chunk.outcomes(), 1):
                        self._iterating = chunk, at
                        self._record_sync(_single(outcome), self._status)
                        yield outcome
                    self._iterating = None
        finally:
            self._keep_unrecorded(workers, self._status)

    # -- a run that stopped early ----------------------------------------------------

    def _keep_unrecorded(self, workers: PathWorkers, status: Any) -> None:
        """Hand the status every outcome of work done that it did not take,
        without awaiting (this runs while a cancellation or the run's error
        propagates); once the workers have stopped. Never raises."""
        if self._kept:
            return
        self._kept = True
        chunks = [self._untaken] if self._untaken else []
        if self._iterating is not None:
            chunks.append(outcomes_after(*self._iterating))
        chunks += workers.unrecorded()
        self._untaken = self._iterating = None
        outcomes = [o for chunk in chunks for o in chunk.outcomes()]
        if not outcomes:
            return
        for outcome in outcomes:
            self._summary[outcome.state] += 1
        try:
            give_late(status, outcomes)
        except Exception:
            logger.exception(
                "%d outcomes of paths worked on could not be given to %r",
                len(outcomes),
                status,
            )


def _loop_side(status: Any) -> Callable[[], Any] | None:
    """``status``'s hook giving what to add to on the event-loop thread (see
    :meth:`AppliedPaths.run`), or ``None``: then the task's thread adds.

    Only the runtime's statuses have the hook, and it holds only where their
    own ``add`` and ``add_many`` are the ones called: not for a subclass that
    overrides either, nor for an object whose ``add`` was replaced, nor for a
    wrapper that forwards attributes to a status (the hook is looked up on the
    class, never through the object).
    """
    cls = type(status)
    owner = next((c for c in cls.__mro__ if "_on_loop_thread" in vars(c)), None)
    if owner is None:
        return None
    own = getattr(status, "__dict__", {})
    for name in ("add", "add_many"):
        if name in own or getattr(cls, name) is not getattr(owner, name):
            return None
    bound: Callable[[], Any] = vars(owner)["_on_loop_thread"].__get__(status)
    return bound


def _count(summary: dict[State, int], chunk: ChunkOutcomes) -> None:
    for entry in chunk.settled:
        summary[entry.state if isinstance(entry, PathOutcome) else entry] += 1


def _bare(items: list[PathObject]) -> list[str | PathObject]:
    """The path string of each object that is nothing else: ``add_many`` takes
    a string the fastest way (no copy, no check of an object's values) and
    records the same ``{"path": ...}``."""
    return [obj["path"] if len(obj) == 1 else obj for obj in items]


def _single(outcome: PathOutcome) -> ChunkOutcomes:
    return ChunkOutcomes([outcome.path], [outcome])


def apply_paths(
    fn: PathFunction | AsyncPathFunction,
    inputs: Inputs,
    status: Any = None,
    *,
    concurrency: int | None = None,
    ordered: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> AppliedPaths:
    """Apply ``fn`` to every path of ``inputs`` and add each outcome to ``status``.

    ``fn(path_object)`` does the work for one path and returns its state
    (``"processed"``, ``"skipped"``...) or a :class:`PathOutcome` (to report an
    updated path object or a message). An exception it raises makes the path a
    ``failures`` result whose message is the exception's; a return value that is
    not a state stops the run with :class:`InvalidStateError`.

    * A plain (blocking) ``fn`` runs in ``concurrency`` worker threads, each
      taking chunks of up to ``chunk_size`` paths itself, with no hop through
      the event loop per path or per chunk.
    * An ``async def fn`` runs on the event loop, ``concurrency`` paths at once.

    ``concurrency`` defaults to the setting ``ASYNCSTREAM_PATH_CONCURRENCY``
    (environment, or ``asyncstream_path_concurrency`` in the Celery app's
    configuration), else :data:`LOCAL_DISK_CONCURRENCY` (1), right for local
    disks. On network and parallel file systems, where each operation waits on
    the network, use :data:`NETWORK_FS_CONCURRENCY` (64) or more.

    ``inputs`` is ``expand_paths(paths)`` (read page by page, a bounded number of
    pages ahead), or any async iterable of paths and path objects, or an iterable
    that does not block (a list): it is read on the event loop.
    ``status`` is the task's status object, sync or async; with ``None`` nothing is
    added, and the task adds results itself from the outcomes. Outcomes keep the
    input's order; with ``ordered=False`` they come as completed, so that one slow
    path does not hold back the outcomes of those after it.

    Memory stays bounded however long the input: about a thousand paths (64 per
    worker at high concurrency) are buffered, being worked on, or waiting to be
    added, and ``status.add`` waiting
    for the hub holds back the workers and the reading. Use it as::

        summary = await apply_paths(fn, expand_paths(paths), status)   # async
        summary = apply_paths(fn, expand_paths(paths), status).run()    # sync
        async for outcome in apply_paths(fn, inputs, status): ...       # or for

    Leaving early (a ``break``, an exception, cancellation) stops the workers: a
    thread stops before its next path and is waited for, so nothing is left
    running. The outcomes of the paths worked on by then that the status had
    not taken are still given to it, without waiting (the runtime's statuses
    deliver them at their close, or spool them once delivery failed), and the
    exception goes on unchanged: no path worked on goes unreported. (An
    ``async def`` function cancelled in the middle of a path has no outcome
    for it.)
    """
    return AppliedPaths(
        fn,
        inputs,
        status,
        concurrency=concurrency_setting(concurrency),
        chunk_size=positive("chunk_size", chunk_size),
        ordered=bool(ordered),
    )
