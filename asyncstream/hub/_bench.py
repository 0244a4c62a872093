"""``asyncstream hub bench``: hub ingest over HTTP against the bare store insert.

Three figures per batch size, measured in the same run on the same machine:

* **hub (sqlite)** - results/s posted over loopback HTTP to a hub in another
  process using the SQLite store: client serialisation, HTTP, parsing,
  validation, the durable commit and the acknowledgement;
* **bare store** - results/s of ``SqliteStore.add_batch`` on pre-built batches in
  this process: the durable commit alone, the floor the hub cannot beat;
* **hub (discard)** - the same HTTP path with a store that keeps nothing: the
  ceiling of HTTP plus validation.

``ratio`` is hub (sqlite) / bare store: the share of the store's speed the hub keeps.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .._paths import PathObject, State
from ._embedded import HubProcess
from ._sqlite import SqliteStore
from ._store import ResultBatch

BATCH_SIZES = (1000, 5000)
IN_FLIGHT = 4  # concurrent batches per client, as a streaming task keeps a few


def _items(batch_size: int, seq: int) -> dict[State, list[PathObject]]:
    base = f"/mmfs1/data/bench-fileset/dir{seq % 97:02d}"
    processed = [{"path": f"{base}/file{seq}-{i}.dat"} for i in range(batch_size - 10)]
    failures = [
        {"path": f"{base}/bad{seq}-{i}.dat", "message": ["permission denied"]}
        for i in range(10)
    ]
    return {"processed": processed, "failures": failures}


async def _post_all(url: str, key: str, taskid: str, bodies: list[bytes]) -> float:
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits
    ) as client:
        queue = list(enumerate(bodies))

        async def sender() -> None:
            while queue:
                seq, body = queue.pop(0)
                response = await client.post(
                    f"/api/tasks/{taskid}/results/",
                    content=body,
                    headers={"Idempotency-Key": f"{taskid}:{seq}"},
                    timeout=60,
                )
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
        return time.perf_counter() - start


async def _store_all(db: Path, batches: list[ResultBatch]) -> float:
    store = SqliteStore(db)
    await store.open()
    try:
        start = time.perf_counter()
        for batch in batches:
            await store.add_batch(batch)
        return time.perf_counter() - start
    finally:
        await store.close()


async def _measure(
    tmp: Path, batch_size: int, n: int, hubs: dict[str, HubProcess]
) -> dict[str, float]:
    taskid = f"bench-{batch_size}"
    item_sets = [_items(batch_size, seq) for seq in range(n)]
    bodies = [
        json.dumps(
            {
                "jobid": 1,
                "task": "bench",
                "queue": "local.bench#custom",
                "seq": seq,
                "items": items,
            }
        ).encode()
        for seq, items in enumerate(item_sets)
    ]
    batches = [
        ResultBatch(
            taskid, seq, 1, "bench", "local.bench#custom", items, f"d{seq}", batch_size
        )
        for seq, items in enumerate(item_sets)
    ]
    total = batch_size * n
    rates = {
        "bare store": total / await _store_all(tmp / f"bare-{batch_size}.db", batches)
    }
    for name, hub in hubs.items():
        seconds = await _post_all(hub.url, hub.api_key or "", taskid, bodies)
        rates[name] = total / seconds
    return rates


def run_bench(*, quick: bool, batches: int | None, echo: Callable[[str], None]) -> None:
    """Run the benchmark and print a table of results/s."""
    n = batches or (4 if quick else 20)
    with tempfile.TemporaryDirectory(prefix="asyncstream-bench-") as tmp_name:
        tmp = Path(tmp_name)
        hubs = {
            "hub (sqlite)": HubProcess(
                tmp / "hub.db",
                api_key="bench-key",
                extra_args=("--log-level", "warning"),
            ),
            "hub (discard)": HubProcess(
                None,
                api_key="bench-key",
                store="discard",
                extra_args=("--log-level", "warning"),
            ),
        }
        for hub in hubs.values():
            hub.start()
        try:
            rows = [
                (size, asyncio.run(_measure(tmp, size, n, hubs)))
                for size in BATCH_SIZES
            ]
        finally:
            for hub in hubs.values():
                hub.stop()
    echo(f"hub ingest, {n} batches per size, {IN_FLIGHT} in flight, loopback HTTP")
    header = (
        f"{'batch':>6} {'hub (sqlite)':>14} {'bare store':>12} {'ratio':>6}"
        f" {'hub (discard)':>14}"
    )
    echo(header)
    echo("-" * len(header))
    for size, rates in rows:
        ratio = rates["hub (sqlite)"] / rates["bare store"]
        echo(
            f"{size:>6} {rates['hub (sqlite)']:>14,.0f} {rates['bare store']:>12,.0f}"
            f" {ratio:>6.2f} {rates['hub (discard)']:>14,.0f}"
        )
    echo("results/s; ratio = hub (sqlite) / bare store")
