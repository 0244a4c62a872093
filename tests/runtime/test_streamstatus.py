"""StreamTaskResults and AsyncStreamTaskResults over a fake hub (MockTransport)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from asyncstream import _portal
from asyncstream._async_status import (
    AsyncFileActionStatus,
    async_status_for_task,
    status_for_task,
)
from asyncstream._batching import BatchPolicy
from asyncstream._exceptions import (
    BackpressureTimeout,
    DeliveryError,
    HubRejectedError,
    InvalidInputError,
    InvalidStateError,
    PathTypeError,
    UsageError,
)
from asyncstream._paths import STATES
from asyncstream._result_buffer import PendingResults
from asyncstream._retry import RetryPolicy
from asyncstream._sender_add import SenderAdds
from asyncstream._spool import read_spool, resend_spool
from asyncstream.status import FileActionStatus
from asyncstream.streamstatus import (
    AsyncStreamTaskResults,
    DeliveryReport,
    StreamTaskResults,
)
from tests.runtime._sender_fakes import API_KEY, HUB_URL, FakeHub, status_503


def read_text(path: str | Path) -> str:
    return Path(path).read_text()


STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
INPUTS: list[Any] = [
    {"path": "/data/a"},
    {"stream": "/api/streams/s1/paths/", "count": 1000},
]


def options(hub: FakeHub, **more: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hub_url": HUB_URL,
        "api_key": API_KEY,
        "transport": hub.transport(),
        "batch_size": 10,
        "linger": 60.0,
        "retry_policy": RetryPolicy(initial=0.001, maximum=0.005),
        "started": STARTED,
    }
    return base | more


def results(n: int) -> list[tuple[str, Any, Any]]:
    """n results: every 7th a failure with a message, every 5th skipped."""
    out: list[tuple[str, Any, Any]] = []
    for i in range(n):
        if i % 7 == 3:
            out.append(("failures", f"/data/f{i}", f"error {i}"))
        elif i % 5 == 0:
            out.append(("skipped", {"path": f"/data/f{i}", "size": i}, None))
        else:
            out.append(("processed", f"/data/f{i}", None))
    return out


def stalled_hub() -> tuple[FakeHub, threading.Event]:
    """A fake hub whose every request waits until the returned event is set."""
    hub = FakeHub()
    stall = threading.Event()

    async def stalled(request: httpx.Request, number: int) -> None:
        await anyio.to_thread.run_sync(stall.wait)

    hub.intercept = stalled
    return hub, stall


def expected_summary(n: int) -> dict[str, int]:
    summary = dict.fromkeys(STATES, 0)
    for state, _, _ in results(n):
        summary[state] += 1
    return summary


async def test_dump_returns_the_contract_payload_with_a_delivery_report() -> None:
    hub = FakeHub()
    async with AsyncStreamTaskResults(
        "my-plugin", INPUTS, 100, "london.q#custom", "t1", **options(hub)
    ) as status:
        for state, path, message in results(25):
            await status.add(state, path, message=message)
        payload = await status.dump()
    assert payload == {
        "jobid": 100,
        "paths": [],
        "status": {
            "task": "my-plugin",
            "input_paths": INPUTS,  # the stream reference is kept, not expanded
            "input_total": 1001,
            "summary": expected_summary(25),
            "details": {state: [] for state in STATES},
            "started": "2024-05-01T12:00:00+00:00",
            "streamed": {"items": 25, "batches": 3, "retries": 0},
        },
    }
    assert json.loads(json.dumps(payload)) == payload
    assert status.report == DeliveryReport(items=25, batches=3, retries=0)
    assert hub.summary("t1") == expected_summary(25)
    identity = {"task": "my-plugin", "jobid": 100, "queue": "london.q#custom"}
    assert hub.completions == [
        {"taskid": "t1", "batches": 3, "payload": payload, **identity}
    ]
    first_failure = json.loads(hub.batches["t1"][0])["items"]["failures"][0]
    assert first_failure == {"path": "/data/f3", "message": ["error 3"]}


async def test_async_usage_without_async_with_opens_and_closes_itself() -> None:
    hub = FakeHub()
    status = AsyncStreamTaskResults("p", [], 1, None, "t2", **options(hub))
    for state, path, message in results(15):
        await status.add(state, path, message=message)
    payload = await status.dump()
    assert status.dumped
    assert payload["status"]["summary"] == expected_summary(15)
    detached = status._life.detached
    assert detached is not None
    assert detached.closed  # nothing left behind
    assert "closed" in repr(status) or "dumped" in repr(status)
    assert await status.dump() == payload  # a second dump: the same payload
    assert len(hub.completions) == 1
    with pytest.raises(UsageError, match="after dump"):
        await status.add("processed", "/data/late")


async def test_a_clean_exit_without_dump_dumps_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = FakeHub()
    async with AsyncStreamTaskResults("p", [], 1, None, "t3", **options(hub)) as status:
        await status.add("processed", "/data/a")
    assert "without dump()" in caplog.text
    assert status.dumped
    assert hub.completions[0]["batches"] == 1


async def test_an_error_exit_delivers_what_was_added_but_does_not_complete() -> None:
    hub = FakeHub()
    status = AsyncStreamTaskResults("p", [], 1, None, "t4", **options(hub))

    async def failing_task() -> None:
        async with status:
            for i in range(13):
                await status.add("processed", f"/data/f{i}")
            raise RuntimeError("task broke")

    with pytest.raises(RuntimeError, match="task broke"):
        await failing_task()
    assert hub.summary("t4")["processed"] == 13
    assert hub.completions == []


def test_sync_add_validates_at_once_naming_the_bad_value() -> None:
    hub = FakeHub()
    status = StreamTaskResults("p", [], 1, None, "t5", **options(hub))
    with pytest.raises(InvalidStateError, match="'finished'"):
        status.add("finished", "/data/a")
    with pytest.raises(PathTypeError, match="42"):
        status.add("processed", 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="non-empty string 'path'"):
        status.add("processed", {"size": 3})
    status.add("processed", "/data/a")
    assert status.dump()["status"]["summary"]["processed"] == 1


def test_sync_add_crosses_threads_once_per_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = FakeHub()
    crossings: list[str] = []
    real_call, real_post = _portal.call, _portal.post

    def counting_call(fn: Any, *args: Any) -> Any:
        crossings.append(f"call {fn.__name__}")
        return real_call(fn, *args)

    def counting_post(fn: Any, *args: Any) -> bool:
        crossings.append(f"post {fn.__name__}")
        return real_post(fn, *args)

    monkeypatch.setattr(_portal, "call", counting_call)
    monkeypatch.setattr(_portal, "post", counting_post)
    status = StreamTaskResults("p", [], 1, None, "t6", **options(hub))
    for state, path, message in results(25):
        status.add(state, path, message=message)
    # 10 + 10; 5 still buffered. The first hand-over opens the core and waits;
    # the next fits the budget and is posted, with no wait for the loop thread.
    assert crossings == ["call add_pending", "post add_pending_now"]
    payload = status.dump()
    assert crossings[2:] == ["post add_pending_now", "call dump"]
    assert payload["status"]["streamed"] == {"items": 25, "batches": 3, "retries": 0}
    sizes = [sum(map(len, json.loads(b)["items"].values())) for b in hub.bodies]
    assert sorted(sizes) == [5, 10, 10]  # two whole batches, then the rest at dump
    assert hub.summary("t6") == expected_summary(25)
    with pytest.raises(UsageError, match="after dump"):
        status.add("processed", "/data/late")
    assert status.dump() == payload


def test_posted_batches_count_against_the_budget_until_taken() -> None:
    # The loop thread is kept busy, so that posted batches stay untaken; the
    # thread must count them itself, or it would post past max_pending_items.
    hub, stall = stalled_hub()
    status = StreamTaskResults(
        "p",
        [],
        1,
        None,
        "t12",
        **options(hub, max_pending_items=40, max_inflight_batches=1, add_timeout=0.2),
    )
    for i in range(11):  # the first hand-over opens the core, and waits
        status.add("processed", f"/data/f{i}")
    loop_busy, release_loop = threading.Event(), threading.Event()

    def hold_the_loop() -> None:
        loop_busy.set()
        release_loop.wait(10)

    assert _portal.post(hold_the_loop)
    try:
        assert loop_busy.wait(10)
        outcome = _add_while_the_loop_is_held(status, release_loop)
    finally:
        release_loop.set()
    # The budget took the three posted batches; the fifth found no room.
    assert len(outcome) == 1
    assert isinstance(outcome[0], BackpressureTimeout)
    stats = status.statistics()
    assert stats.items_outstanding == 40
    assert stats.items_pending == 10  # the fifth batch, still in this thread
    stall.set()
    payload = status.dump()  # the 51st add() raised: not recorded
    assert payload["status"]["summary"]["processed"] == 50
    assert hub.summary("t12")["processed"] == 50


def _add_while_the_loop_is_held(
    status: StreamTaskResults, release_loop: threading.Event
) -> list[BaseException | None]:
    outcome: list[BaseException | None] = []

    def produce() -> None:
        try:
            for i in range(11, 61):
                status.add("processed", f"/data/f{i}")
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=produce)
    worker.start()
    # One batch taken, three (30 results) posted and not taken: the fifth
    # hand-over (at the 51st add) waits for the loop thread, not posted.
    deadline = time.monotonic() + 10
    while worker.is_alive() and worker.ident not in _portal._waiting:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert worker.ident in _portal._waiting
    assert len(status._posted) == 3
    assert not any(p.taken for p, _ in status._posted)
    release_loop.set()
    worker.join(10)
    return outcome


async def test_a_batch_posted_after_delivery_failed_is_spooled(
    tmp_path: Path,
) -> None:
    hub = FakeHub()

    async def rejected(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(400, json={"detail": "no"})

    hub.intercept = rejected
    status = AsyncStreamTaskResults(
        "p", [], 1, None, "t13", **options(hub, spool_dir=str(tmp_path))
    )
    async with status:
        for i in range(10):
            await status.add("processed", f"/data/f{i}")  # a batch, rejected
        with anyio.fail_after(10):
            # The sender offers no event for its failure: statistics() is polled.
            while status.statistics().state != "failed":  # noqa: ASYNC110
                await anyio.sleep(0.001)
        # Posted by a thread that found room just before the failure.
        late = PendingResults({"processed": ["/data/late0", "/data/late1"]}, 2, 60)
        status.add_pending_now(late)
        assert late.taken
        with pytest.raises(HubRejectedError):
            await status.dump()
    assert status.summary["processed"] == 12
    spool = read_spool(tmp_path / "t13.jsonl")
    assert [b.seq for b in spool.batches] == [0, 1]
    assert json.loads(spool.batches[1].body)["items"] == {
        "processed": [{"path": "/data/late0"}, {"path": "/data/late1"}]
    }


async def test_sync_and_async_give_the_same_payload_and_hub_state() -> None:
    hub = FakeHub()

    def run_sync() -> dict[str, Any]:
        status = StreamTaskResults("p", INPUTS, 9, "q", "sync", **options(hub))
        for state, path, message in results(47):
            status.add(state, path, message=message)
        return status.dump()

    sync_payload = await anyio.to_thread.run_sync(run_sync)
    async with AsyncStreamTaskResults(
        "p", INPUTS, 9, "q", "async", **options(hub)
    ) as s:
        for state, path, message in results(47):
            await s.add(state, path, message=message)
        async_payload = await s.dump()
    assert sync_payload == async_payload
    assert hub.paths("sync") == hub.paths("async")
    assert hub.batches["sync"] == hub.batches["async"]  # byte for byte
    assert [c["payload"] for c in hub.completions] == [sync_payload, async_payload]


def test_sync_add_blocks_while_the_budget_is_full() -> None:
    hub, stall = stalled_hub()
    status = StreamTaskResults(
        "p",
        [],
        1,
        None,
        "t7",
        **options(hub, max_pending_items=20, max_inflight_batches=1),
    )
    done = threading.Event()

    def produce() -> None:
        for i in range(60):
            status.add("processed", f"/data/f{i}")
        done.set()

    worker = threading.Thread(target=produce)
    worker.start()
    deadline = time.monotonic() + 10
    # A hand-over may wait for a moment while the sender picks up the batch
    # before it: wait for the steady state where the 31st add() is blocked.
    while (
        status.statistics().adds_waiting == 0 or sum(status.summary.values()) < 30
    ) and time.monotonic() < deadline:
        time.sleep(0.005)
    # Blocked: 20 results in the budget (one batch in flight, one queued) and
    # 10 in the calling thread's buffer; the 31st add() waits for the hub.
    assert status.statistics().adds_waiting == 1
    assert sum(status.summary.values()) == 30
    assert not done.is_set()
    stall.set()
    worker.join(10)
    assert done.is_set()
    assert status.dump()["status"]["summary"]["processed"] == 60
    assert hub.summary("t7")["processed"] == 60


def test_sync_add_timeout_raises_and_keeps_the_buffered_results() -> None:
    hub, stall = stalled_hub()
    status = StreamTaskResults(
        "p",
        [],
        1,
        None,
        "t8",
        **options(hub, batch_size=5, max_pending_items=5, add_timeout=0.05),
    )
    for i in range(10):
        status.add("processed", f"/data/f{i}")  # 5 handed over, 5 buffered
    with pytest.raises(BackpressureTimeout):
        status.add("processed", "/data/f10")  # not recorded
    stall.set()
    status.add("processed", "/data/f10")
    payload = status.dump()
    assert payload["status"]["summary"]["processed"] == 11
    assert sorted(p for _, p in hub.paths("t8")) == sorted(
        f"/data/f{i}" for i in range(11)
    )


def test_sync_add_after_a_failed_delivery_raises_it_again(tmp_path: Path) -> None:
    hub = FakeHub()

    async def rejected(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(400, json={"detail": "no"})

    hub.intercept = rejected
    status = StreamTaskResults(
        "p", [], 1, None, "t11", **options(hub, spool_dir=str(tmp_path))
    )
    for i in range(15):
        status.add("processed", f"/data/f{i}")
    with pytest.raises(HubRejectedError) as failed:
        status.dump()
    # The results the core took before delivery failed are counted once.
    assert status.summary["processed"] == 15
    with pytest.raises(HubRejectedError) as again:
        status.add("processed", "/data/late")  # with nothing due to hand over
    assert again.value is failed.value


def test_a_posted_batch_the_core_fails_to_take_fails_the_task_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hub = FakeHub()
    status = StreamTaskResults(
        "p", [], 1, None, "t14", **options(hub, spool_dir=str(tmp_path))
    )
    for i in range(11):  # the first batch handed over (and waited for)
        status.add("processed", f"/data/f{i}")

    def broken(self: SenderAdds, batch: object) -> None:
        raise RuntimeError("a bug")

    # Fails after the results were marked taken (and the budget charged): the
    # batch must still reach the spool.
    monkeypatch.setattr(SenderAdds, "_enqueue", broken)
    with _loop_held():
        # Two batches posted, run once the loop is released: the first fails
        # to be queued, the second finds the sender failed.
        for i in range(11, 31):
            status.add("processed", f"/data/f{i}")
        assert [p.taken for p, _ in status._posted] == [False, False]
    with pytest.raises(DeliveryError, match="RuntimeError\\('a bug'\\)"):
        status.dump()
    assert "taking a posted batch failed" in caplog.text
    assert status.summary["processed"] == 31
    spooled = {
        item["path"]
        for spool_file in tmp_path.glob("t14*.jsonl")
        for batch in read_spool(spool_file).batches
        for item in json.loads(batch.body)["items"]["processed"]
    }
    acked = {path for _, path in hub.paths("t14")}
    # Every result reached the hub or the spool: the two posted batches (and
    # the last one, handed over at dump) are in the spool.
    assert {f"/data/f{i}" for i in range(10, 31)} <= spooled
    assert spooled | acked == {f"/data/f{i}" for i in range(31)}


async def test_a_posted_batch_that_cannot_be_cut_is_spooled_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = FakeHub()
    status = AsyncStreamTaskResults(
        "p", [], 1, None, "t15", **options(hub, spool_dir=str(tmp_path))
    )
    real_cut = BatchPolicy.cut_pending
    failures = iter([RuntimeError("a bug")])

    def cut_fails_once(self: BatchPolicy, pending: PendingResults) -> Any:
        for exc in failures:
            raise exc
        return real_cut(self, pending)

    monkeypatch.setattr(BatchPolicy, "cut_pending", cut_fails_once)
    async with status:
        posted = PendingResults({"processed": ["/data/a", "/data/b"]}, 2, 60)
        status.add_pending_now(posted)  # does not raise: fails the task
        assert posted.taken
        with pytest.raises(DeliveryError, match="a bug"):
            await status.add("processed", "/data/c")
    assert status.summary["processed"] == 2
    spool = read_spool(tmp_path / "t15.jsonl")
    assert [json.loads(b.body)["items"] for b in spool.batches] == [
        {"processed": [{"path": "/data/a"}, {"path": "/data/b"}]}
    ]
    assert hub.paths("t15") == []


async def test_results_being_cut_from_the_core_buffer_still_count_for_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, stall = stalled_hub()
    status = AsyncStreamTaskResults(
        "p", [], 1, None, "t16", **options(hub, max_pending_items=15)
    )
    real_cut = BatchPolicy.cut_pending
    answers: list[bool] = []

    def cut_and_ask(self: BatchPolicy, pending: PendingResults) -> Any:
        # What a sync caller's thread sees while the loop thread is here,
        # cutting its own buffer: 10 results on their way to the budget.
        answers.append(status.room_beside(0, 0, 10, 100))
        return real_cut(self, pending)

    async with status:
        try:
            monkeypatch.setattr(BatchPolicy, "cut_pending", cut_and_ask)
            await status.add_many("processed", [f"/data/f{i}" for i in range(10)])
            monkeypatch.setattr(BatchPolicy, "cut_pending", real_cut)
            assert answers == [False]  # 10 + 10 > 15: no room
            assert status.room_beside(0, 0, 5, 100)
            assert not status.room_beside(0, 0, 6, 100)
        finally:
            stall.set()
        await status.dump()


def test_posted_batches_count_at_their_body_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub, stall = stalled_hub()
    status = StreamTaskResults(
        "p",
        [],
        1,
        None,
        "t17",
        **options(
            hub,
            batch_size=2,
            max_pending_bytes=1000,
            max_batch_bytes=500,
            add_timeout=0.05,
        ),
    )
    for i in range(3):  # the first hand-over opens the core, and waits
        status.add("processed", f"/data/f{i}")
    loop_busy, release_loop = threading.Event(), threading.Event()
    posts = 0
    real_post, real_call = _portal.post, _portal.call

    def counted_post(fn: Any, *args: Any) -> bool:
        nonlocal posts
        posts += 1
        return real_post(fn, *args)

    def call_releasing(fn: Any, *args: Any) -> Any:
        # The first hand-over that found no room: every batch posted before
        # it is still untaken, and is let go now.
        release_loop.set()
        return real_call(fn, *args)

    def hold_the_loop() -> None:
        loop_busy.set()
        release_loop.wait(10)

    assert _portal.post(hold_the_loop)
    try:
        assert loop_busy.wait(10)
        monkeypatch.setattr(_portal, "post", counted_post)
        monkeypatch.setattr(_portal, "call", call_releasing)
        with pytest.raises(BackpressureTimeout):
            _add_paths(status, range(3, 1000))
        assert posts >= 3
        stats = status.statistics()
        # The budget's bound, past by at most the envelope of the results
        # the core's buffer held (counted there at their items' size).
        envelope = status._buffer.envelope.overhead
        assert stats.bytes_outstanding <= stats.max_pending_bytes + envelope
    finally:
        release_loop.set()
        stall.set()
    status.dump()


def test_a_hand_over_interrupted_after_its_post_leaves_the_batch_to_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = FakeHub()
    status = StreamTaskResults(
        "p", [], 1, None, "t18", **options(hub, spool_dir=str(tmp_path))
    )
    _add_paths(status, range(11))  # the first hand-over opens the core
    real_post = _portal.post

    def post_then_interrupted(fn: Any, *args: Any) -> bool:
        monkeypatch.setattr(_portal, "post", real_post)
        assert real_post(fn, *args)
        raise KeyboardInterrupt  # a signal (a time limit) just after the post

    with _loop_held():
        monkeypatch.setattr(_portal, "post", post_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            _add_paths(status, range(11, 30))
        [(posted, _)] = status._posted
        assert not posted.taken
        # Posted: the core's to take, not this thread's to hand over again
        # (nor to merge more results into).
        assert status._handing is None
        count = posted.count
        _add_paths(status, range(30, 33))
    status.abort()
    assert posted.taken
    assert posted.count == count
    spooled = [
        item["path"]
        for spool_file in tmp_path.glob("t18*.jsonl")
        for batch in read_spool(spool_file).batches
        for item in json.loads(batch.body)["items"]["processed"]
    ]
    acked = [path for _, path in hub.paths("t18")]
    recorded = status.summary["processed"]
    assert len(set(spooled) | set(acked)) == recorded
    assert {f"/data/f{i}" for i in (*range(20), 30, 31, 32)} <= {*spooled, *acked}


async def test_a_batch_taken_while_its_hand_over_waited_is_not_taken_again() -> None:
    hub, stall = stalled_hub()
    status = AsyncStreamTaskResults(
        "p", [], 1, None, "t19", **options(hub, max_pending_items=11)
    )
    async with status:
        try:
            # A batch in flight: no room for two more.
            await status.add_many("processed", [f"/data/f{i}" for i in range(10)])
            batch = PendingResults({"processed": ["/data/a", "/data/b"]}, 2, 60)
            async with anyio.create_task_group() as tg:
                tg.start_soon(status.add_pending, batch)
                while not status.statistics().adds_waiting:
                    await anyio.lowlevel.checkpoint()
                status.add_pending_now(batch)  # the same batch, posted too
                assert batch.taken
                stall.set()  # room: the waiting hand-over goes on
        finally:
            stall.set()
        payload = await status.dump()
    assert payload["status"]["summary"]["processed"] == 12
    assert hub.summary("t19")["processed"] == 12


def _add_paths(status: StreamTaskResults, numbers: Iterable[int]) -> None:
    for i in numbers:
        status.add("processed", f"/data/f{i}")


@contextlib.contextmanager
def _loop_held() -> Iterator[None]:
    """Keep the event-loop thread busy in the block: what is posted to it
    meanwhile runs once the block is left."""
    loop_busy, release_loop = threading.Event(), threading.Event()

    def hold_the_loop() -> None:
        loop_busy.set()
        release_loop.wait(10)

    assert _portal.post(hold_the_loop)
    try:
        assert loop_busy.wait(10)
        yield
    finally:
        release_loop.set()


async def test_a_repeated_handover_is_taken_once() -> None:
    hub = FakeHub()
    status = AsyncStreamTaskResults("p", [], 1, None, "t9", **options(hub))
    batch = PendingResults({"processed": [{"path": "/data/a"}, {"path": "/data/b"}]}, 2)
    await status.add_pending(batch)
    await status.add_pending(batch)  # an interrupted call, repeated
    payload = await status.dump()
    assert payload["status"]["summary"]["processed"] == 2
    assert hub.summary("t9")["processed"] == 2


async def test_undelivered_batches_are_spooled_and_resend_delivers_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hub = FakeHub()
    down = True

    async def maybe_down(request: httpx.Request, number: int) -> httpx.Response | None:
        return status_503() if down else None

    hub.intercept = maybe_down
    status = AsyncStreamTaskResults(
        "p",
        INPUTS,
        5,
        "q",
        "t10",
        **options(hub, delivery_timeout=0.2, spool_dir=str(tmp_path)),
    )
    for state, path, message in results(25):
        await status.add(state, path, message=message)
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    error = info.value
    assert error.undelivered_seqs == (0, 1, 2)
    assert error.undelivered_items == 25
    assert error.spool_path == str(tmp_path / "t10.jsonl")
    assert "3 batches (25 results, seqs [0, 1, 2])" in str(error)
    assert f"asyncstream resend {error.spool_path}" in str(error)
    with pytest.raises(DeliveryError):
        await status.add("processed", "/data/late")  # failed: says so again

    spool_text = read_text(error.spool_path)
    lines = spool_text.splitlines()
    header = json.loads(lines[0])
    assert header["taskid"] == "t10"
    assert header["batches"] == 3
    assert header["payload"]["status"]["summary"] == expected_summary(25)
    spooled = [json.loads(line) for line in lines[1:]]
    assert [b["seq"] for b in spooled] == [0, 1, 2]
    # exactly the bytes that were sent, so the hub sees the same key and body
    sent = {json.loads(b)["seq"]: b for b in hub.bodies}
    assert [b["body"].encode() for b in spooled] == [sent[s] for s in range(3)]
    assert API_KEY not in spool_text
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(status)

    down = False
    hub.batches["t10"] = {1: sent[1]}  # one batch had in fact reached the hub
    spool = read_spool(error.spool_path)
    report = await resend_spool(spool, hub.client())
    assert (report.batches, report.items, report.duplicates) == (3, 25, 1)
    assert report.completed
    assert hub.summary("t10") == expected_summary(25)
    assert hub.completions[0]["payload"] == header["payload"]


async def test_a_completion_answered_409_names_the_missing_seqs() -> None:
    hub = FakeHub()

    async def lose_batch_1(request: httpx.Request, number: int) -> None:
        if request.url.path.endswith("/complete"):
            hub.batches["t11"].pop(1)

    hub.intercept = lose_batch_1
    async with AsyncStreamTaskResults("p", [], 1, None, "t11", **options(hub)) as s:
        for i in range(25):
            await s.add("processed", f"/data/f{i}")
        with pytest.raises(
            DeliveryError, match=r"no longer holds batches \[1\]"
        ) as info:
            await s.dump()
    assert info.value.undelivered_seqs == (1,)


async def test_credentials_stay_out_of_errors_and_reprs(tmp_path: Path) -> None:
    hub = FakeHub()

    async def down(request: httpx.Request, number: int) -> httpx.Response:
        return status_503()

    hub.intercept = down
    status = AsyncStreamTaskResults(
        "p",
        [],
        1,
        None,
        "t12",
        **options(
            hub,
            hub_url="http://user:pa55word@hub.test",
            delivery_timeout=0.05,
            spool_dir=str(tmp_path),
        ),
    )
    await status.add("processed", "/data/a")
    with pytest.raises(DeliveryError) as info:
        await status.dump()
    for text in (
        str(info.value),
        repr(status),
        read_text(tmp_path / "t12.jsonl"),
    ):
        assert "pa55word" not in text
        assert API_KEY not in text


async def test_aabort_spools_without_waiting_for_the_hub(tmp_path: Path) -> None:
    hub = FakeHub()

    async def never(request: httpx.Request, number: int) -> None:
        await anyio.sleep_forever()

    hub.intercept = never
    status = AsyncStreamTaskResults(
        "p", [], 1, None, "t13", **options(hub, spool_dir=str(tmp_path))
    )
    for i in range(15):
        await status.add("processed", f"/data/f{i}")
    await status.aabort()
    assert isinstance(status.error, DeliveryError)
    spool = read_spool(tmp_path / "t13.jsonl")
    assert spool.items == 15
    assert spool.payload is None  # the task did not finish: resend won't complete it


def test_choice_helpers_pick_the_class_the_seed_would() -> None:
    hub = FakeHub()
    assert isinstance(status_for_task(False, "p", [], 1, None), FileActionStatus)
    streamed = status_for_task(True, "p", [], 1, None, taskid="t14", **options(hub))
    assert isinstance(streamed, StreamTaskResults)
    streamed.close()
    with pytest.raises(InvalidInputError, match="bind=True"):
        status_for_task(True, "p", [], 1, None)
    with pytest.raises(InvalidInputError, match="taskid"):
        async_status_for_task(True, "p", [], 1, None, taskid="")


async def test_async_file_action_status_has_the_async_interface() -> None:
    status = async_status_for_task(False, "p", ["/data/a"], 1, "q")
    assert isinstance(status, AsyncFileActionStatus)
    async with status:
        await status.add("failures", "/data/a", message="broken")
        payload = await status.dump()
    assert status.dumped
    assert payload["status"]["details"]["failures"] == [
        {"path": "/data/a", "message": ["broken"]}
    ]
    assert payload["status"]["input_total"] == 1


async def _stream_n(n: int) -> int:
    """Stream n results through a hub that acknowledges and forgets; peak bytes."""

    async def ack(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"accepted": 0, "duplicate": False})

    knobs = options(FakeHub(), batch_size=500, max_pending_items=2000, linger=1.0)
    knobs["transport"] = httpx.MockTransport(ack)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    async with AsyncStreamTaskResults("p", [], 1, None, f"mem{n}", **knobs) as status:
        for i in range(n):
            await status.add("processed", f"/data/dir{i % 97}/file{i:09d}")
        payload = await status.dump()
    assert payload["status"]["streamed"]["items"] == n
    return tracemalloc.get_traced_memory()[1] - base


async def test_memory_does_not_grow_with_the_number_of_results() -> None:
    tracemalloc.start()
    try:
        await _stream_n(2_000)  # warm up: imports, pools, caches
        # Both runs hold five and fifty times the budget of 2,000 pending results:
        # a peak that grew with N by even 50 bytes a result would exceed the
        # bounds below.
        small = await _stream_n(10_000)
        large = await _stream_n(100_000)
    finally:
        tracemalloc.stop()
    print(f"peak: 10k results {small / 1e6:.2f} MB, 100k results {large / 1e6:.2f} MB")
    # 10x the results within a small constant of the same peak (O(budget), not O(N))
    assert large < small * 1.5 + 200_000
    assert large < 5_000_000
