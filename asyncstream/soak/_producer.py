"""The soak's input: a producer that appends to a stream while tasks read it.

The producer creates an input stream and appends chunks while the tasks already
read it. Each append names its offset, so one whose answer was lost is simply
sent again: the hub stores it once and answers ``duplicate``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from .._paths import PathObject


def input_paths(round_no: int, count: int, rng: random.Random) -> list[PathObject]:
    """The producer's paths for a round: unique, some with extra keys."""
    paths: list[PathObject] = []
    for i in range(count):
        obj: PathObject = {"path": f"/soak/r{round_no:04d}/d{i // 100:03d}/f{i:06d}"}
        if rng.random() < 0.3:
            obj["size"] = rng.randint(0, 1 << 40)
        if rng.random() < 0.05:
            obj["owner"] = f"üser-{i % 7}"
        paths.append(obj)
    return paths


def chunk_sizes(rng: random.Random, total: int) -> list[int]:
    """Chunk sizes summing to ``total``: a first chunk, then 10-25 appends."""
    first = rng.randint(1, max(1, total // 10))
    rest = total - first
    n = rng.randint(10, 25)
    sizes = [first]
    for i in range(n):
        size = rest // (n - i)
        sizes.append(size)
        rest -= size
    return [s for s in sizes if s > 0] or [total]


class ProducerError(Exception):
    """The producer could not build its stream in time."""


@dataclass(slots=True)
class Producer:
    """Creates a stream and appends ``paths`` to it in chunks, then closes it."""

    client: httpx.AsyncClient
    paths: list[PathObject]
    chunks: list[int]
    pause: tuple[float, float]
    rng: random.Random
    deadline: float
    stream_id: str | None = None
    appended: list[PathObject] = field(default_factory=list)
    retries: int = 0
    ambiguous: int = 0  # appends the hub had already stored (answer lost)
    created: anyio.Event = field(default_factory=anyio.Event)
    error: Exception | None = None

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response | None:
        """One attempt: the response, or ``None`` if none came (maybe committed)."""
        try:
            response = await self.client.request(method, url, **kw)
        except httpx.TransportError:
            return None
        if response.status_code in (408, 429) or response.status_code >= 500:
            return response
        response.raise_for_status()
        return response

    async def _backoff(self, response: httpx.Response | None) -> None:
        if time.monotonic() > self.deadline:
            raise ProducerError(f"stream {self.stream_id}: hub unavailable too long")
        self.retries += 1
        after = response.headers.get("Retry-After") if response is not None else None
        await anyio.sleep(float(after) if after else 0.05)

    async def _create(self, first: list[PathObject]) -> None:
        while True:
            response = await self._request(
                "POST", "/api/streams/", json={"paths": first}
            )
            if response is not None and response.status_code == 201:
                # A create whose answer was lost leaves an unused stream: harmless.
                self.stream_id = str(response.json()["id"])
                self.appended += first
                self.created.set()
                return
            await self._backoff(response)

    async def _append(self, chunk: list[PathObject]) -> None:
        assert self.stream_id is not None
        before = len(self.appended)
        body = {"paths": chunk, "offset": before}
        while True:
            response = await self._request(
                "POST", f"/api/streams/{self.stream_id}/paths/", json=body
            )
            if response is not None and response.status_code == 200:
                answer = response.json()
                self.ambiguous += bool(answer["duplicate"])
                if answer["count"] < before + len(chunk):
                    raise ProducerError(
                        f"stream {self.stream_id}: append answered count"
                        f" {answer['count']}, expected {before + len(chunk)} or more"
                    )
                break
            await self._backoff(response)
        self.appended += chunk

    async def _close(self) -> None:
        while True:
            response = await self._request(
                "POST", f"/api/streams/{self.stream_id}/close", content=b"{}"
            )
            if response is not None and response.status_code == 200:
                return
            await self._backoff(response)

    async def run(self) -> None:
        """Create, append every chunk (pausing between them), close.

        An error is kept in ``error`` (the checker reports it), not raised.
        """
        try:
            offset = self.chunks[0]
            await self._create(self.paths[:offset])
            for size in self.chunks[1:]:
                await anyio.sleep(self.rng.uniform(*self.pause))
                await self._append(self.paths[offset : offset + size])
                offset += size
            await self._close()
        except (ProducerError, httpx.HTTPError) as exc:
            self.error = exc
        finally:
            self.created.set()
