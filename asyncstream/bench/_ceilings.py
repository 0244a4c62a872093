"""The raw ceilings: what bare httpx gets from the hub, with no runtime at all.

Results are posted as pre-encoded batches, ``in_flight`` at once, to the same
endpoint the sender uses; pages are read cursor after cursor as a reader must.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from .._hub_client import encode_json
from ._workload import POOL, QUEUE, Tick, Workload, check_delivered


def raw_post(w: Workload, tick: Tick) -> float:
    """Pre-encoded batches, ``in_flight`` at once, with a bare httpx client."""
    prefix = b'{"jobid":1,"task":"bench","queue":"' + QUEUE.encode() + b'","seq":'

    def suffix(count: int) -> bytes:
        items = [{"path": POOL[i]} for i in range(count)]
        return b',"items":' + encode_json({"processed": items}) + b"}"

    full, last = suffix(w.batch_size), suffix(w.n % w.batch_size or w.batch_size)
    batches = -(-w.n // w.batch_size)

    async def main() -> float:
        limits = httpx.Limits(max_connections=w.in_flight)
        headers = {**w.headers, "Content-Type": "application/json"}
        async with httpx.AsyncClient(
            base_url=w.results_url or "", headers=headers, limits=limits, timeout=60
        ) as client:
            seqs = iter(range(batches))
            url = f"/api/tasks/{w.taskid}/results/"
            sent = 0

            async def sender() -> None:
                nonlocal sent
                for seq in seqs:
                    body = (
                        prefix
                        + str(seq).encode()
                        + (last if seq == batches - 1 else full)
                    )
                    key = {"Idempotency-Key": f"{w.taskid}:{seq}"}
                    response = await client.post(url, content=body, headers=key)
                    count = response.raise_for_status().json()["accepted"]
                    sent += count
                    tick(count)

            start = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(w.in_flight)))
            seconds = time.perf_counter() - start
        check_delivered(w, sent)
        return seconds

    return asyncio.run(main())


def raw_get(w: Workload, tick: Tick) -> float:
    """Pages of every stream reference, cursor after cursor, with bare httpx."""

    async def main() -> float:
        read = 0
        async with httpx.AsyncClient(
            base_url=w.streams_url or "", headers=w.headers, timeout=60
        ) as client:
            start = time.perf_counter()
            for ref in w.refs:
                params: dict[str, Any] = {"page_size": w.page_size}
                while True:
                    response = await client.get(ref["stream"], params=params)
                    page = response.raise_for_status().json()
                    read += len(page["results"])
                    tick(len(page["results"]))
                    if page["next"] is None:
                        break
                    params["cursor"] = page["next"]
            seconds = time.perf_counter() - start
        check_delivered(w, read)
        return seconds

    return asyncio.run(main())
