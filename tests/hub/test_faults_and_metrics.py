"""Fault injection at the HTTP layer, and the Prometheus metrics."""

from __future__ import annotations

import time

import httpx
import pytest

from asyncstream.hub import RunningHub, running_hub

from .conftest import batch, key

RESULTS = "/api/tasks/t1/results/"
ITEMS = {"processed": [{"path": "/fs/a"}, {"path": "/fs/b"}]}


async def test_fail_next_answers_503_with_retry_after_then_recovers(
    hub: RunningHub, client: httpx.AsyncClient
) -> None:
    hub.faults.fail_next(2, retry_after=0.25)
    answers = [
        await client.post(RESULTS, json=batch(0, ITEMS), headers=key("t1", 0))
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["Retry-After"] == "0.25"
    assert answers[0].json()["error"] == "injected_fault"
    assert answers[2].json() == {"accepted": 2, "duplicate": False}
    assert hub.faults.injected["fail"] == 2


async def test_fail_next_only_hits_its_path_prefix(
    hub: RunningHub, client: httpx.AsyncClient
) -> None:
    hub.faults.fail_next(1, status=502, path_prefix="/api/tasks/t9/")
    assert (
        await client.post(RESULTS, json=batch(0, ITEMS), headers=key("t1", 0))
    ).status_code == 200
    assert (await client.get("/api/tasks/t9/")).status_code == 502
    assert (await client.get("/api/tasks/t9/")).status_code == 404


async def test_drop_after_commit_loses_the_ack_but_keeps_the_batch(
    hub: RunningHub, client: httpx.AsyncClient
) -> None:
    hub.faults.drop_after_commit(1)
    with pytest.raises(httpx.TransportError):
        await client.post(RESULTS, json=batch(0, ITEMS), headers=key("t1", 0))
    retry = await client.post(RESULTS, json=batch(0, ITEMS), headers=key("t1", 0))
    assert retry.json() == {"accepted": 0, "duplicate": True}
    assert (await client.get("/api/tasks/t1/")).json()["summary"]["processed"] == 2


async def test_delay_holds_requests_then_reset_clears_it(
    hub: RunningHub, client: httpx.AsyncClient
) -> None:
    hub.faults.delay(0.3, n=1)
    start = time.monotonic()
    await client.get("/api/tasks/t1/")
    assert time.monotonic() - start >= 0.3
    hub.faults.delay(5)
    hub.faults.fail_next(3)
    hub.faults.reset()
    start = time.monotonic()
    assert (await client.get("/api/tasks/t1/")).status_code == 404
    assert time.monotonic() - start < 1


async def test_faults_are_off_unless_enabled() -> None:
    async with (
        running_hub(faults=False) as hub,
        httpx.AsyncClient(base_url=hub.url, headers=hub.headers) as client,
    ):
        with pytest.raises(RuntimeError, match="without fault injection"):
            hub.faults.fail_next(1)
        response = await client.post(
            "/api/_faults/", json={"fault": "fail_next", "n": 1}
        )
        assert response.status_code == 404


async def test_fault_endpoint_drives_the_injector(
    hub: RunningHub, client: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=hub.url) as anonymous:
        unauthorised = await anonymous.post("/api/_faults/", json={"fault": "reset"})
    assert unauthorised.status_code == 401
    set_fault = await client.post("/api/_faults/", json={"fault": "fail_next", "n": 1})
    assert set_fault.status_code == 200
    assert (await client.get("/api/tasks/t1/")).status_code == 503
    bad = await client.post("/api/_faults/", json={"fault": "explode"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "body.fault"


async def test_metrics_count_batches_items_duplicates_and_rejections(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(2):
        await client.post(RESULTS, json=batch(0, ITEMS), headers=key("t1", 0))
    await client.post(RESULTS, json=batch(1, {"done": []}), headers=key("t1", 1))
    metrics = await client.get("/metrics")  # a scraper sends the key too
    assert metrics.status_code == 200
    lines = metrics.text.splitlines()
    assert "asyncstream_hub_batches_accepted_total 1.0" in lines
    assert "asyncstream_hub_items_accepted_total 2.0" in lines
    assert "asyncstream_hub_batches_duplicate_total 1.0" in lines
    assert 'asyncstream_hub_rejections_total{reason="invalid_state"} 1.0' in lines
    assert any(
        line.startswith("asyncstream_hub_request_duration_seconds_count")
        and 'route="/api/tasks/{taskid}/results/"' in line
        and 'status="200"' in line
        and line.endswith(" 2.0")
        for line in lines
    )


async def test_openapi_documents_every_endpoint(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]) >= {
        "/api/streams/",
        "/api/streams/{stream_id}/paths/",
        "/api/streams/{stream_id}/close",
        "/api/tasks/{taskid}/results/",
        "/api/tasks/{taskid}/complete",
        "/api/tasks/{taskid}/",
        "/api/jobs/{jobid}/",
        "/api/health/",
    }
    post = spec["paths"]["/api/tasks/{taskid}/results/"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["task", "seq", "items"]
