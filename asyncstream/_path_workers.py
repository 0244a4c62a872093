"""The engine behind ``apply_paths``: a per-path function run over a stream of paths.

:class:`PathWorkers` reads the input in one task (the *feed*) into a bounded buffer
and runs ``concurrency`` workers that take from it:

* a blocking function runs in ``concurrency`` worker threads, each started once
  and taking chunk after chunk from a buffer it shares with the feed
  (:mod:`._path_handoff`), without going through the event loop between two
  chunks: a worker takes a fair share of the paths the buffer holds, up to its
  chunk size, so a full buffer makes full chunks and a trickling input makes
  small ones, never waits for a chunk to fill;
* an ``async def`` function runs in ``concurrency`` worker tasks, each taking a
  chunk the same way and awaiting its paths one after the other, so that
  ``concurrency`` paths are in flight.

The buffer and the outcomes work a chunk at a time too (:mod:`._path_buffer`,
:mod:`._path_outcomes`): the engine costs little per path next to a system call.

Outcomes come back from :meth:`PathWorkers.next_chunk`, every chunk already
done in one go, in input order (``ordered``) or as completed. Everything in
between is bounded: the input buffer, the chunks being worked on, the outcomes
waiting to be taken (and, ordered, the chunks held back for an earlier one), so
a task reading a stream of millions holds a few thousand paths at most.

It is an async context manager because the workers live in a task group that
one task enters and leaves: the consumer's own (async face) or a task on the
process's event-loop thread (sync face, through the portal). Leaving it stops
the feed and the workers; a thread in the middle of a chunk stops before its
next path, and leaving waits for it. What was settled by then and not handed
out (work done, wherever its outcome was on its way) is kept:
:meth:`PathWorkers.unrecorded` gives it once the block is left.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterable, Iterable
from contextlib import AsyncExitStack, aclosing, suppress
from itertools import islice
from typing import Any, Self, TypeAlias, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._context import TaskContext, task_context
from ._path_buffer import PathBuffer
from ._path_handoff import SharedPathBuffer
from ._path_outcomes import (
    AsyncPathFunction,
    ChunkOutcomes,
    PathFunction,
    run_chunk_async,
)
from ._path_outcomes import run_chunk as run_chunk
from ._path_settings import BUFFER_PATHS as BUFFER_PATHS
from ._path_settings import buffer_paths
from ._paths import to_path_object
from .utils.inputs import ExpandedPaths

# Paths of a plain iterable converted and put into the buffer at a time.
FEED = 256

Inputs: TypeAlias = AsyncIterable[Any] | Iterable[Any]
_Done: TypeAlias = MemoryObjectSendStream[tuple[int, ChunkOutcomes]]
_Buffer: TypeAlias = PathBuffer | SharedPathBuffer


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
        self.buffer_paths = buffer_paths(concurrency)
        # Each worker's share of the buffer, so that every thread has work.
        self.chunk_size = max(1, min(chunk_size, self.buffer_paths // concurrency))
        self._ordered = ordered
        self._context = context
        self._stop = threading.Event()
        self._shared: SharedPathBuffer | None = None  # the threads' buffer
        # Outcomes of threads, waiting for the loop to pass them on; the loop
        # is woken once for all that finish before it gets to them.
        self._finished: list[tuple[int, ChunkOutcomes]] = []
        self._finished_lock = threading.Lock()
        self._deliver_to: _Done | None = None
        self._limiter = anyio.CapacityLimiter(concurrency)
        # Ordered: chunks taken but not yet handed out, held back at most.
        self._window = anyio.Semaphore(2 * concurrency)
        # Sequence number of the next chunk taken. A chunk is taken and numbered
        # without a pause in between, so the numbers follow the input.
        self._taken = 0
        self._next_out = 0  # the next one to hand out, in order
        self._held: dict[int, ChunkOutcomes] = {}
        # Every chunk with outcomes not handed out yet, by sequence number: what
        # a run that stops early leaves settled (files worked on) and must
        # still be reported, wherever it is on its way (see unrecorded()).
        self._unsent: dict[int, ChunkOutcomes] = {}
        self._stack: AsyncExitStack | None = None
        self._failure: Exception | None = None
        self._reported = False
        # False when nobody would see an error raised on leaving (a host task).
        self.raise_on_exit = True
        self._outcomes: MemoryObjectReceiveStream[tuple[int, ChunkOutcomes]]
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
            # Threads are bounded by the credits of their buffer, and cannot
            # wait on a stream of the loop's: theirs never refuses a chunk.
            room = self.concurrency if self._is_async else math.inf
            done_in, self._outcomes = anyio.create_memory_object_stream[
                tuple[int, ChunkOutcomes]
            ](room)
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

    def unrecorded(self) -> list[ChunkOutcomes]:
        """Outcomes settled but never handed out by :meth:`next_chunk`, in input
        order (as completed chunks were taken): the work was done, the result
        must still be reported. Complete once the workers have stopped (the
        block is left: threads are joined by then); empty after a full run.
        """
        return [self._unsent[seq] for seq in sorted(self._unsent) if self._unsent[seq]]

    def _stop_all(self, group: TaskGroup) -> None:
        self._halt()
        group.cancel_scope.cancel()

    def _halt(self) -> None:
        """Stop the threads: before their next path, and from waiting for one.
        Cancelling their tasks cannot: a task waits for its thread to return."""
        self._stop.set()
        if self._shared is not None:
            self._shared.halt()

    async def _run(self, done: _Done) -> None:
        # The feed and the workers in a group of their own: one that fails
        # cancels them, never the task that reads the outcomes, which learns of
        # the failure from next_chunk() once the outcome stream has ended.
        buffer: _Buffer
        if self._is_async:
            buffer = PathBuffer(self.buffer_paths)
        else:
            buffer = self._shared = SharedPathBuffer(
                self.buffer_paths,
                credits=2 * self.concurrency,  # as the window of async workers
                chunk_size=self.chunk_size,
                share_of=self.concurrency,
            )
            # Closed once every thread returned: what they finished is passed
            # on by then (scheduled before their return is reported).
            self._deliver_to = done.clone()
        # Each worker closes its own end; these are closed again here for the
        # workers that were cancelled before they ever ran.
        ends = [done]
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._feed, buffer)
                for _ in range(self.concurrency):
                    if isinstance(buffer, SharedPathBuffer):
                        group.start_soon(self._thread_worker, buffer)
                    else:
                        ends.append(done.clone())
                        group.start_soon(self._worker, buffer, ends[-1])
                done.close()
        except Exception as exc:
            self._halt()
            self._failure = _first_error(exc)
        finally:
            for end in ends:
                end.close()
            if self._deliver_to is not None:
                self._deliver_to.close()

    async def _feed(self, buffer: _Buffer) -> None:
        try:
            inputs = self._inputs
            if not isinstance(inputs, AsyncIterable):
                # Does not block (a list): read on the loop, a chunk at a time.
                iterator = iter(inputs)
                while chunk := [to_path_object(i) for i in islice(iterator, FEED)]:
                    await buffer.put_many(chunk)
                return
            await _feed_async(inputs, buffer)
        except BaseException:
            self._halt()  # the threads would wait for the rest of the input
            raise
        finally:
            buffer.close()

    async def _worker(self, buffer: PathBuffer, done: _Done) -> None:
        fn = cast(AsyncPathFunction, self._fn)
        async with done:
            while True:
                if self._ordered:
                    await _acquire(self._window)
                chunk = await buffer.take(self.chunk_size, self.concurrency)
                if not chunk:
                    return
                seq, self._taken = self._taken, self._taken + 1
                # Filled as paths settle: a cancelled chunk keeps what it did.
                outcomes = self._unsent[seq] = ChunkOutcomes(chunk, [])
                await run_chunk_async(fn, chunk, outcomes.settled)
                await _send(done, (seq, outcomes))

    async def _thread_worker(self, buffer: SharedPathBuffer) -> None:
        # One hand-off for the whole run: the thread takes its chunks itself.
        await anyio.to_thread.run_sync(
            self._work_in_thread,
            buffer,
            asyncio.get_running_loop(),
            limiter=self._limiter,
        )

    def _work_in_thread(
        self, buffer: SharedPathBuffer, loop: asyncio.AbstractEventLoop
    ) -> None:
        fn, stop = cast(PathFunction, self._fn), self._stop
        finished, lock = self._finished, self._finished_lock
        unsent = self._unsent
        try:
            while taken := buffer.take():
                seq, chunk = taken
                outcomes = ChunkOutcomes(chunk, run_chunk(fn, chunk, stop))
                with lock:
                    unsent[seq] = outcomes
                    finished.append((seq, outcomes))
                    first = len(finished) == 1
                if first:
                    loop.call_soon_threadsafe(self._deliver)
        except BaseException:
            self._halt()  # the other threads, which no cancellation reaches
            raise

    def _deliver(self) -> None:
        """On the loop: pass on what the threads finished (dropped once the
        consumer has left)."""
        with self._finished_lock:
            finished = self._finished.copy()
            self._finished.clear()
        assert self._deliver_to is not None
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            for item in finished:
                self._deliver_to.send_nowait(item)

    async def next_chunk(self) -> ChunkOutcomes | None:
        """The outcomes of the next paths, or ``None`` once all are out: the next
        chunk's and those of the chunks done by then (up to ``buffer_paths``
        paths), so that the status gets runs longer than a chunk (64 paths at
        64 workers), without waiting for a chunk that is not done."""
        while True:
            outcomes = await self._next_one()
            if outcomes is None:
                return None
            while len(outcomes) < self.buffer_paths and (more := self._next_done()):
                outcomes = outcomes.joined(more)
            if outcomes:
                self.paths_done += len(outcomes)
                return outcomes

    async def _next_one(self) -> ChunkOutcomes | None:
        if self._ordered:
            return await self._next_in_order()
        return await self._next_completed()

    def _next_done(self) -> ChunkOutcomes | None:
        """The next chunk's outcomes if they are there now; ``None`` if not (or
        once the stream has ended: the next wait finds that out)."""
        try:
            if not self._ordered:
                seq, outcomes = self._outcomes.receive_nowait()
                self._gave_out(seq)
                return outcomes
            while self._next_out not in self._held:
                seq, outcomes = self._outcomes.receive_nowait()
                self._held[seq] = outcomes
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            return None
        return self._hand_out()

    def _gave_out(self, seq: int) -> None:
        """A chunk's outcomes went out as completed: the threads may take one
        more (``async def`` workers are held back by the outcome stream)."""
        del self._unsent[seq]
        if self._shared is not None:
            self._shared.give_back()

    def _ended(self) -> None:
        """The outcome stream has ended: raise what stopped it, if anything."""
        if self._failure is not None and not self._reported:
            self._reported = True
            raise self._failure

    async def _next_completed(self) -> ChunkOutcomes | None:
        try:
            received: tuple[int, ChunkOutcomes] = await _receive(self._outcomes)
            self._gave_out(received[0])
            return received[1]
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._ended()
            return None

    async def _next_in_order(self) -> ChunkOutcomes | None:
        while self._next_out not in self._held:
            try:
                seq, outcomes = await _receive(self._outcomes)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._ended()
                return None  # ended early: chunks held back never come
            self._held[seq] = outcomes
        return self._hand_out()

    def _hand_out(self) -> ChunkOutcomes:
        """The held chunk next in order, its place in the window freed."""
        seq = self._next_out
        outcomes = self._held.pop(seq)
        del self._unsent[seq]
        self._next_out = seq + 1
        if self._shared is not None:
            self._shared.give_back()
        else:
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


async def _feed_async(inputs: AsyncIterable[Any], buffer: _Buffer) -> None:
    """Put the paths of ``inputs`` into ``buffer``; close ``inputs`` at the end.

    The paths of ``expand_paths`` are path objects already, taken a page at a
    time; anything else is checked (and strings made path objects) as
    ``status.add`` would.
    """
    if isinstance(inputs, ExpandedPaths):
        async with aclosing(inputs._pages_async()) as pages:
            async for page in pages:
                await buffer.put_many(page)
        return
    iterator = aiter(inputs)
    try:
        async for item in iterator:
            path = to_path_object(item)
            if not buffer.put_nowait(path):
                await buffer.put(path)
    finally:
        # Closed here, not whenever the garbage collector gets to it: closing
        # stops the prefetch of expand_paths and its connections.
        if hasattr(iterator, "aclose"):
            await iterator.aclose()
