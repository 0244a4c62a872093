"""The task invoker: one path for Celery and ``asyncstream run`` alike."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncstream import TaskContext, _hub_pools
from asyncstream._config import ENV_API_KEY, ENV_HUB_URL, HubSettings
from asyncstream._exceptions import HubRejectedError
from asyncstream._hub_client import HubClient
from asyncstream._hub_pools import open_pools
from asyncstream._spool import read_spool
from asyncstream._task_invoker import Invocation, TaskInvoker
from asyncstream.hub import RunningHub, running_hub
from asyncstream.utils.inputs import expand_paths


def sync_task(status: Any, *, paths: list[Any], **fields: Any) -> Any:
    for item in expand_paths(paths):
        status.add("processed", item)
    return status.dump()


async def async_task(status: Any, *, paths: list[Any], **fields: Any) -> Any:
    async with expand_paths(paths) as inputs:
        async for item in inputs:
            await status.add("processed", item)
    return await status.dump()


def interrupted_task(status: Any, **fields: Any) -> Any:
    for i in range(7):
        status.add("processed", f"/data/{i}")
    raise KeyboardInterrupt


async def stream_of(hub: RunningHub, total: int) -> str:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
        stream = await client.create_stream([{"path": f"/d/{i}"} for i in range(total)])
        await client.close_stream(stream["id"])
    return str(stream["url"])


async def task_at(hub: RunningHub, taskid: str) -> dict[str, Any] | None:
    async with HubClient(HubSettings(hub.url, hub.api_key)) as client:
        try:
            return await client.get_task(taskid)
        except HubRejectedError as exc:
            if exc.status_code == 404:
                return None
            raise


@pytest.mark.parametrize("fn", [sync_task, async_task])
async def test_the_task_finds_its_hub_in_the_context_not_the_environment(
    fn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_HUB_URL, raising=False)
    monkeypatch.delenv(ENV_API_KEY, raising=False)
    async with running_hub(store="sqlite", api_key="k") as hub:
        url = await stream_of(hub, 30)
        settings = HubSettings(hub.url, hub.api_key)
        taskid = f"ctx-{fn.__name__}"
        invocation = Invocation(
            TaskContext(taskid, "q#custom", "t", 4, hub=settings),
            [{"stream": url}],
            stream_results=True,
        )
        environ = dict(os.environ)
        payload = await anyio.to_thread.run_sync(TaskInvoker().invoke, fn, invocation)
        assert dict(os.environ) == environ
        assert payload["status"]["summary"]["processed"] == 30
        task = await task_at(hub, taskid)
    assert task is not None
    assert task["state"] == "completed"
    assert task["summary"]["processed"] == 30
    assert open_pools(settings) == 0  # the task's pool closed with it


async def test_an_interrupted_task_is_aborted_and_its_results_spooled(
    tmp_path: Path,
) -> None:
    async with running_hub(store="sqlite", api_key="k") as hub:
        invocation = Invocation(
            TaskContext("int-1", None, "t", 1, hub=HubSettings(hub.url, hub.api_key)),
            [],
            stream_results=True,
            status_options={"spool_dir": str(tmp_path), "batch_size": 100},
        )
        with pytest.raises(KeyboardInterrupt):
            await anyio.to_thread.run_sync(
                TaskInvoker().invoke, interrupted_task, invocation
            )
        task = await task_at(hub, "int-1")
    # Aborted, not closed: nothing more was sent, what was held is spooled.
    assert task is None
    (spooled,) = await anyio.to_thread.run_sync(lambda: list(tmp_path.glob("*.jsonl")))
    assert read_spool(spooled).items == 7


def test_a_forked_child_does_not_inherit_the_pools() -> None:
    settings = HubSettings("http://127.0.0.1:9")

    def fork_and_check() -> int:
        # Forked while another thread holds the registry's lock, as a prefork
        # worker may be: the child must neither block on it nor see the pools.
        with _hub_pools._lock:
            pid = os.fork()
            if pid == 0:
                os._exit(0 if open_pools() == 0 else 1)
        for _ in range(200):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            threading.Event().wait(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return -1  # the child hung on its parent's lock

    async def hold_a_pool_and_fork() -> int:
        async with HubClient(settings):
            assert open_pools(settings) == 1
            return await anyio.to_thread.run_sync(fork_and_check)

    assert anyio.run(hold_a_pool_and_fork) == 0
