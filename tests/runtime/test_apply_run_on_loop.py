"""``apply_paths(...).run()`` from a plain task body: with the runtime's statuses
the whole run, the outcomes' recording included, happens on the event-loop thread
while the task's thread waits; results keep their order around it; a status of
the task's own is still added to in the task's thread; an interrupt stops it."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import pytest

from asyncstream import FileActionStatus, StreamTaskResults, _portal, apply_paths
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

    def task_body() -> None:
        status = FileActionStatus("t", [], 1, "q")
        try:
            apply_paths(slow, [f"/p{i}" for i in range(1000)], status).run()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=task_body)
    thread.start()
    assert started.wait(5)
    _portal.interrupt_thread(thread.ident or 0)
    time.sleep(0.05)
    release.set()  # the path in the middle ends; no other one starts
    thread.join(5)

    assert not thread.is_alive()
    assert outcome
    assert isinstance(outcome[0], KeyboardInterrupt)
    assert calls == 1
