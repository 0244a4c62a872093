"""One connection pool per hub per event loop, shared by a task's status and inputs."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from asyncstream import AsyncStreamTaskResults, TaskContext, _hub_pools, task_context
from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream._hub_pools import (
    acquire_pool,
    open_pools,
    release_pool,
    ssl_context_for,
)
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


@pytest.fixture
def loaded_authorities(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every load of certificate authorities into an SSL context, from now on."""
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    _hub_pools._tls_context.cache_clear()
    return loads


async def _open_and_release(*urls: str) -> list[httpx.AsyncClient]:
    clients = []
    for url in urls:
        key, client = acquire_pool(HubSettings(url, "k"))
        clients.append(client)
        await release_pool(key)
    return clients


async def test_pools_to_plain_http_hubs_load_no_certificate_authorities(
    loaded_authorities: list[object],
) -> None:
    await _open_and_release("http://127.0.0.1:1", "http://127.0.0.1:2")

    assert loaded_authorities == []
    assert ssl_context_for("http://127.0.0.1:1").cert_store_stats()["x509_ca"] == 0


async def test_https_hubs_share_one_verifying_context_built_on_first_use(
    loaded_authorities: list[object],
) -> None:
    await _open_and_release("https://hub.invalid:1", "https://hub.invalid:2")

    assert len(loaded_authorities) == 1
    context = ssl_context_for("https://hub.invalid:3")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] > 0
    assert ssl_context_for("https://hub.invalid:3", verify=False) is not context


def test_the_plain_http_context_refuses_to_trust_a_tls_peer() -> None:
    # A redirect from an http hub to https must fail, not skip verification.
    context = ssl_context_for("http://127.0.0.1:1")

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
