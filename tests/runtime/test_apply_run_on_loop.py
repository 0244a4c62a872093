"""``apply_paths(...).run()`` from a plain task body: with the runtime's statuses
the whole run, the outcomes' recording included, happens on the event-loop thread
while the task's thread waits; results keep their order around it; a status of
the task's own is still added to in the task's thread; an interrupt stops it."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import pytest

from asyncstream import (
    FileActionStatus,
    StreamTaskResults,
    UsageError,
    _portal,
    apply_paths,
)
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream.hub import RunningHub, running_hub


@pytest.fixture
async def hub() -> AsyncIterator[RunningHub]:
    async with running_hub(store="sqlite") as running:
        yield running


def _processed(item: dict[str, Any]) -> str:
    return "processed"


async def _stored_paths(hub: RunningHub, taskid: str) -> list[str]:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
        page = await client.get_results(taskid, page_size=1000)
    return [result["path"] for result in page["results"]]


async def test_results_keep_their_order_around_a_run(hub: RunningHub) -> None:
    names = [f"/data/f{i}" for i in range(700)]
    options = {"hub_url": hub.url, "api_key": hub.api_key, "batch_size": 100}

    def task_body() -> dict[str, Any]:
        status = StreamTaskResults("t", [], 1, "q", "run-order", **options)
        status.add("skipped", "/before")  # buffered in this thread
        apply_paths(_processed, names, status).run()
        status.add("skipped", "/after")
        return status.dump()

    payload = await anyio.to_thread.run_sync(task_body)

    assert payload["status"]["summary"]["processed"] == 700
    assert payload["status"]["summary"]["skipped"] == 2
    assert await _stored_paths(hub, "run-order") == ["/before", *names, "/after"]


async def test_the_outcomes_are_recorded_on_the_loop_thread(hub: RunningHub) -> None:
    adders: set[int] = set()
    options = {"hub_url": hub.url, "api_key": hub.api_key}

    def task_body() -> tuple[int, dict[str, Any]]:
        status = StreamTaskResults("t", [], 1, "q", "run-thread", **options)
        core = status._core
        real = core.add_many

        async def spied(state: str, items: Iterable[Any]) -> None:
            adders.add(threading.get_ident())
            await real(state, items)

        core.add_many = spied  # type: ignore[method-assign]
        apply_paths(_processed, [f"/p{i}" for i in range(300)], status).run()
        return threading.get_ident(), status.dump()

    caller, payload = await anyio.to_thread.run_sync(task_body)

    assert payload["status"]["summary"]["processed"] == 300
    assert adders
    assert caller not in adders


def test_the_in_memory_status_is_filled_on_the_loop_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    adders: set[int] = set()
    real = FileActionStatus.add_many

    def spied(self: FileActionStatus, key: str, items: Iterable[Any]) -> None:
        adders.add(threading.get_ident())
        real(self, key, items)

    monkeypatch.setattr(FileActionStatus, "add_many", spied)
    status = FileActionStatus("t", [], 1, "q")
    apply_paths(_processed, [f"/p{i}" for i in range(300)], status).run()

    assert status.summary["processed"] == 300
    assert adders
    assert threading.get_ident() not in adders


def test_a_wrapper_with_an_add_of_its_own_is_added_to_through_it() -> None:
    class Logged:
        """Counts what it is given, the rest forwarded to the status inside."""

        def __init__(self, inner: FileActionStatus) -> None:
            self.inner, self.added = inner, 0

        def add(self, key: str, path: Any, *, message: Any = None) -> None:
            self.added += 1
            self.inner.add(key, path, message=message)

        def add_many(self, key: str, items: Iterable[Any]) -> None:
            items = list(items)
            self.added += len(items)
            self.inner.add_many(key, items)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    wrapped = Logged(FileActionStatus("t", [], 1, "q"))
    apply_paths(_processed, [f"/p{i}" for i in range(10)], wrapped).run()
    assert wrapped.added == 10


async def test_a_second_run_is_refused_before_anything_is_handed_over(
    hub: RunningHub,
) -> None:
    def task_body() -> None:
        status = StreamTaskResults(
            "t", [], 1, "q", "run-twice", hub_url=hub.url, api_key=hub.api_key
        )
        work = apply_paths(_processed, ["/a"], status)
        work.run()
        status.add("skipped", "/buffered")
        with pytest.raises(UsageError, match="runs once"):
            work.run()
        assert status._buffered == 1  # still in this thread: nothing handed over
        status.dump()
        with pytest.raises(UsageError, match="after dump"):
            apply_paths(_processed, ["/b"], status).run()

    await anyio.to_thread.run_sync(task_body)


def test_a_status_of_the_tasks_own_is_added_to_in_the_tasks_thread() -> None:
    class Counting(FileActionStatus):
        def __init__(self) -> None:
            super().__init__("t", [], 1, "q")
            self.threads: set[int] = set()

        def add_many(self, key: str, items: Iterable[Any]) -> None:
            self.threads.add(threading.get_ident())
            super().add_many(key, items)

    own, plain = Counting(), FileActionStatus("t", [], 1, "q")
    names = [f"/p{i}" for i in range(300)]

    assert apply_paths(_processed, names, own).run() == own.summary
    assert own.threads == {threading.get_ident()}
    assert apply_paths(_processed, names, plain).run() == plain.summary
    assert plain.summary["processed"] == 300


def test_an_add_many_replaced_on_the_object_is_called_in_the_tasks_thread() -> None:
    status = FileActionStatus("t", [], 1, "q")
    threads: set[int] = set()
    real = status.add_many

    def spied(key: str, items: Iterable[Any]) -> None:
        threads.add(threading.get_ident())
        real(key, items)

    status.add_many = spied  # type: ignore[method-assign]
    apply_paths(_processed, [f"/p{i}" for i in range(300)], status).run()

    assert status.summary["processed"] == 300
    assert threads == {threading.get_ident()}


def test_an_interrupt_stops_the_run_and_its_workers() -> None:
    started, release = threading.Event(), threading.Event()
    calls = 0

    def slow(item: dict[str, Any]) -> str:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(5)
        return "processed"

    outcome: list[BaseException] = []
    status = FileActionStatus("t", [], 1, "q")
    work = apply_paths(slow, [f"/p{i}" for i in range(1000)], status)

    def task_body() -> None:
        try:
            work.run()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=task_body)
    thread.start()
    assert started.wait(5)
    _portal.interrupt_thread(thread.ident or 0)
    # The engine tells its threads to stop once the interrupt has reached it;
    # then the path in the middle may end, and no other one starts.
    assert work._workers is not None
    assert work._workers._stop.wait(5)
    release.set()
    thread.join(5)

    assert not thread.is_alive()
    assert outcome
    assert isinstance(outcome[0], KeyboardInterrupt)
    assert calls == 1


def test_an_interrupt_reaches_the_task_while_a_path_never_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A path on a file server that went away blocks its thread for good: the
    # run cannot unwind, and Ctrl-C must still reach the task, after the grace
    # that an unwinding run gets, as a time limit does.
    monkeypatch.setattr(_portal, "CANCEL_GRACE", 0.3)
    started, release = threading.Event(), threading.Event()

    def stuck(item: dict[str, Any]) -> str:
        started.set()
        release.wait(30)
        return "processed"

    outcome: list[BaseException] = []
    work = apply_paths(stuck, ["/p0", "/p1"], FileActionStatus("t", [], 1, "q"))

    def task_body() -> None:
        try:
            work.run()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=task_body)
    thread.start()
    try:
        assert started.wait(5)
        _portal.interrupt_thread(thread.ident or 0)
        thread.join(3)
        assert not thread.is_alive(), "the interrupt never reached the task"
        assert isinstance(outcome[0], KeyboardInterrupt)
    finally:
        release.set()
        thread.join(5)
