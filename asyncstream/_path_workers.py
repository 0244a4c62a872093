"""The engine behind ``apply_paths``: a per-path function run over a stream of paths.

:class:`PathWorkers` reads the input in one task (the *feed*) into a bounded buffer
and runs ``concurrency`` workers that take from it:

* a blocking function runs in worker threads, a *chunk* of paths per thread
  hand-off: a worker takes every path the buffer holds, up to its chunk size, so a
  full buffer makes full chunks and a trickling input makes small ones, never
  waits for a chunk to fill;
* an ``async def`` function runs in ``concurrency`` worker tasks, a path each.

Outcomes come back a chunk at a time from :meth:`PathWorkers.next_chunk`, in
input order (``ordered``) or as completed. Everything in between is bounded: the
input buffer, the chunks being worked on, the outcomes waiting to be taken (and,
ordered, the chunks held back for an earlier one), so a task reading a stream
of millions holds a few thousand paths at most.

It is an async context manager because the workers live in a task group that
one task enters and leaves: the consumer's own (async face) or a task on the
process's event-loop thread (sync face, through the portal). Leaving it stops
the feed and the workers; a thread in the middle of a chunk stops before its
next path, and leaving waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
)
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import Any, Self, TypeAlias, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._context import TaskContext, task_context
from ._exceptions import InvalidStateError
from ._paths import PathObject, State, check_state, to_path_object
from .utils.inputs import ExpandedPaths

# Paths the input buffer holds; a worker's chunk is at most its share of it.
BUFFER_PATHS = 1024


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """What became of one path: its state, its path object, why it failed.

    A per-path function may return one (to give an updated path object or a
    message) instead of a bare state; ``error`` is the exception that made a
    path a failure, its traceback dropped.
    """

    state: State
    path: PathObject
    message: str | list[str] | None = None
    error: Exception | None = None


PathFunction: TypeAlias = Callable[[PathObject], "str | PathOutcome"]
AsyncPathFunction: TypeAlias = Callable[[PathObject], Awaitable["str | PathOutcome"]]
Inputs: TypeAlias = AsyncIterable[Any] | Iterable[Any]


def _message(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def settle(fn: Any, item: PathObject, result: object) -> PathOutcome:
    """The outcome of ``item`` from what ``fn`` returned; a bad value raises."""
    if type(result) is str or isinstance(result, str):  # the common case first
        return PathOutcome(check_state(result), item)
    if isinstance(result, PathOutcome):
        check_state(result.state)
        return result
    raise InvalidStateError(
        f"{getattr(fn, '__qualname__', fn)!r} returned {result!r:.200} for"
        f" {item.get('path')!r:.200}: return a state such as 'processed', or a"
        " PathOutcome"
    )


def failed(item: PathObject, exc: Exception) -> PathOutcome:
    """The ``failures`` outcome of a path whose function raised ``exc``."""
    return PathOutcome("failures", item, _message(exc), exc.with_traceback(None))


def run_chunk(
    fn: PathFunction, chunk: list[PathObject], stop: threading.Event
) -> list[PathOutcome]:
    """Apply ``fn`` to each path of ``chunk`` in this (worker) thread."""
    outcomes = []
    for item in chunk:
        if stop.is_set():  # the engine is closing: leave the rest undone
            break
        try:
            result = fn(item)
        except Exception as exc:
            outcomes.append(failed(item, exc))
        else:
            outcomes.append(settle(fn, item, result))
    return outcomes


async def _apply_async(fn: AsyncPathFunction, item: PathObject) -> PathOutcome:
    try:
        result = await fn(item)
    except Exception as exc:
        return failed(item, exc)
    return settle(fn, item, result)


class PathWorkers:
    """Run ``fn`` over ``inputs`` with ``concurrency`` workers; see the module."""

    def __init__(
        self,
        fn: PathFunction | AsyncPathFunction,
        inputs: Inputs,
        *,
        is_async: bool,
        concurrency: int,
        chunk_size: int,
        ordered: bool,
        context: TaskContext | None = None,
    ) -> None:
        self._fn = fn
        self._inputs = inputs
        self._is_async = is_async
        self.concurrency = concurrency
        # Each worker's share of the buffer, so that every thread has work.
        self.chunk_size = max(1, min(chunk_size, BUFFER_PATHS // concurrency))
        self._ordered = ordered
        self._context = context
        self._stop = threading.Event()
        self._limiter = anyio.CapacityLimiter(concurrency)
        # Ordered: chunks taken but not yet handed out, held back at most.
        self._window = anyio.Semaphore(2 * concurrency)
        self._taken = 0  # sequence number of the next chunk taken
        # One worker takes at a time: a stream hands items to its waiting
        # receivers in turn, so two workers waiting at once would interleave the
        # input between their chunks and the sequence numbers would not follow it.
        self._taking = anyio.Lock(fast_acquire=True)
        self._next_out = 0  # the next one to hand out, in order
        self._held: dict[int, list[PathOutcome]] = {}
        self._stack: AsyncExitStack | None = None
        self._failure: Exception | None = None
        self._reported = False
        # False when nobody would see an error raised on leaving (a host task).
        self.raise_on_exit = True
        self._outcomes: MemoryObjectReceiveStream[tuple[int, list[PathOutcome]]]
        self.paths_done = 0

    def __repr__(self) -> str:
        kind = "async" if self._is_async else "threads"
        state = "open" if self._stack is not None else "closed"
        return (
            f"<PathWorkers {getattr(self._fn, '__qualname__', self._fn)!r} {kind}"
            f" concurrency={self.concurrency} chunk={self.chunk_size} {state}"
            f" done={self.paths_done}>"
        )

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            if self._context is not None:
                stack.enter_context(task_context(self._context))
            group = await stack.enter_async_context(anyio.create_task_group())
            # Leaving cancels the group first, so a normal exit and a break look
            # alike: nothing is left running once the block is left.
            stack.callback(self._stop_all, group)
            done_in, self._outcomes = anyio.create_memory_object_stream[
                tuple[int, list[PathOutcome]]
            ](self.concurrency)
            group.start_soon(self._run, done_in)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await stack.aclose()
        finally:
            self._outcomes.close()
        if self._failure is not None and self.raise_on_exit and exc_info[1] is None:
            self._reported = True
            raise self._failure

    def _stop_all(self, group: TaskGroup) -> None:
        self._stop.set()
        group.cancel_scope.cancel()

    async def _run(
        self, done: MemoryObjectSendStream[tuple[int, list[PathOutcome]]]
    ) -> None:
        # The feed and the workers in a group of their own: one that fails
        # cancels them, never the task that reads the outcomes, which learns of
        # the failure from next_chunk() once the outcome stream has ended.
        paths_in, paths_out = anyio.create_memory_object_stream[PathObject](
            BUFFER_PATHS
        )
        worker = self._async_worker if self._is_async else self._thread_worker
        # Each task closes its own ends; these are closed again here for the
        # tasks that were cancelled before they ever ran.
        ends: list[Any] = [paths_in, paths_out, done]
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._feed, paths_in)
                for _ in range(self.concurrency):
                    ends += [paths_out.clone(), done.clone()]
                    group.start_soon(worker, ends[-2], ends[-1])
                paths_out.close()
                done.close()
        except Exception as exc:
            self._stop.set()
            self._failure = _first_error(exc)
        finally:
            for end in ends:
                end.close()

    async def _feed(self, paths: MemoryObjectSendStream[PathObject]) -> None:
        async with paths, aclosing(_path_objects(self._inputs)) as inputs:
            async for item in inputs:
                try:
                    paths.send_nowait(item)
                except anyio.WouldBlock:
                    await paths.send(item)

    async def _take(self, paths: MemoryObjectReceiveStream[PathObject]) -> list[Any]:
        """The next chunk of paths (at least one, never waiting for more); [] at
        the end of the input."""
        try:
            chunk = [await paths.receive()]
        except anyio.EndOfStream:
            return []
        # A fair share of what is buffered, so that a short input still keeps
        # every thread busy, and a full buffer makes full chunks.
        share = 1 + paths.statistics().current_buffer_used // self.concurrency
        want = min(self.chunk_size, share)
        try:
            while len(chunk) < want:
                chunk.append(paths.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            pass
        return chunk

    async def _thread_worker(
        self,
        paths: MemoryObjectReceiveStream[PathObject],
        done: MemoryObjectSendStream[tuple[int, list[PathOutcome]]],
    ) -> None:
        fn = cast(PathFunction, self._fn)
        async with paths, done:
            while True:
                if self._ordered:
                    await _acquire(self._window)
                async with self._taking:
                    chunk = await self._take(paths)
                    if not chunk:
                        return
                    seq, self._taken = self._taken, self._taken + 1
                outcomes = await anyio.to_thread.run_sync(
                    run_chunk, fn, chunk, self._stop, limiter=self._limiter
                )
                await _send(done, (seq, outcomes))

    async def _async_worker(
        self,
        paths: MemoryObjectReceiveStream[PathObject],
        done: MemoryObjectSendStream[tuple[int, list[PathOutcome]]],
    ) -> None:
        fn = cast(AsyncPathFunction, self._fn)
        async with paths, done:
            while True:
                if self._ordered:
                    await _acquire(self._window)
                async with self._taking:
                    try:
                        item = await _receive(paths)
                    except anyio.EndOfStream:
                        return
                    seq, self._taken = self._taken, self._taken + 1
                await _send(done, (seq, [await _apply_async(fn, item)]))

    async def next_chunk(self) -> list[PathOutcome] | None:
        """The outcomes of the next chunk of paths, or ``None`` once all are out."""
        while True:
            if self._ordered:
                outcomes = await self._next_in_order()
            else:
                outcomes = await self._next_completed()
            if outcomes is None or outcomes:
                if outcomes:
                    self.paths_done += len(outcomes)
                return outcomes

    def _ended(self) -> None:
        """The outcome stream has ended: raise what stopped it, if anything."""
        if self._failure is not None and not self._reported:
            self._reported = True
            raise self._failure

    async def _next_completed(self) -> list[PathOutcome] | None:
        try:
            outcomes: list[PathOutcome] = (await _receive(self._outcomes))[1]
            return outcomes
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._ended()
            return None

    async def _next_in_order(self) -> list[PathOutcome] | None:
        while self._next_out not in self._held:
            try:
                seq, outcomes = await _receive(self._outcomes)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._ended()
                return None  # ended early: chunks held back never come
            self._held[seq] = outcomes
        outcomes = self._held.pop(self._next_out)
        self._next_out += 1
        self._window.release()
        return outcomes


async def _acquire(window: anyio.Semaphore) -> None:
    # anyio's acquire() always yields to the loop; a free slot needs no yield.
    try:
        window.acquire_nowait()
    except anyio.WouldBlock:
        await window.acquire()


async def _send(stream: MemoryObjectSendStream[Any], item: Any) -> None:
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)


async def _receive(stream: MemoryObjectReceiveStream[Any]) -> Any:
    try:
        return stream.receive_nowait()
    except anyio.WouldBlock:
        return await stream.receive()


def _first_error(exc: Exception) -> Exception:
    """The error that stopped the workers, out of the task group's wrapping."""
    while isinstance(exc, ExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _path_objects(inputs: Inputs) -> AsyncGenerator[PathObject]:
    """``inputs`` as path objects; an async iterator is closed when this ends.

    The paths of ``expand_paths`` are path objects already; anything else is
    checked (and strings made path objects) as ``status.add`` would.
    """
    if not isinstance(inputs, AsyncIterable):
        for item in inputs:
            yield to_path_object(item)
        return
    checked = isinstance(inputs, ExpandedPaths)
    iterator = aiter(inputs)
    try:
        async for item in iterator:
            yield item if checked else to_path_object(item)
    finally:
        # Closed here, not whenever the garbage collector gets to it: closing
        # stops the prefetch of expand_paths and its connections.
        if hasattr(iterator, "aclose"):
            await iterator.aclose()
