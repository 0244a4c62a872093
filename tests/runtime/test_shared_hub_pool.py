"""One connection pool per hub per event loop, shared by a task's status and inputs."""

from __future__ import annotations

from asyncstream import AsyncStreamTaskResults, TaskContext, task_context
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream._hub_pools import open_pools
from asyncstream.hub import running_hub
from asyncstream.utils.inputs import expand_paths


async def test_status_inputs_and_caller_share_one_pool_per_hub() -> None:
    async with running_hub(store="sqlite", api_key="k") as hub:
        settings = HubSettings(hub.url, hub.api_key)
        async with HubClient(settings) as producer:
            stream = await producer.create_stream(
                [{"path": f"/d/{i}"} for i in range(5)]
            )
            await producer.close_stream(stream["id"])
            assert open_pools(settings) == 1
            context = TaskContext("t-pool", None, "pool", 1, hub=settings)
            with task_context(context):
                # No hub_url anywhere: both find the hub in the task context.
                async with AsyncStreamTaskResults(
                    "pool", [], 1, None, "t-pool"
                ) as status:
                    async with expand_paths([{"stream": stream["url"]}]) as inputs:
                        async for item in inputs:
                            await status.add("processed", item)
                        assert open_pools(settings) == 1
                    payload = await status.dump()
        assert open_pools(settings) == 0  # the last user closed it
    assert payload["status"]["summary"]["processed"] == 5


async def test_a_deadline_follows_the_clock_it_was_built_on() -> None:
    from asyncstream._deadline import Deadline

    now = [100.0]
    deadline = Deadline.after(5.0, clock=lambda: now[0])
    assert deadline.remaining() == 5.0
    assert not deadline.expired
    now[0] = 105.0
    assert deadline.remaining() == 0.0
    assert deadline.expired
