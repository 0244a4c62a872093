"""The results endpoints of hub protocol v1 over ``httpx.MockTransport``, and time.

Shared by the sender and streamstatus tests (no tests here). The fake hub keeps
batches by idempotency key exactly as the protocol says (same key and body: a
duplicate; same key, other body: 409), so exactly-once is checked, not assumed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from asyncstream._config import HubSettings
from asyncstream._hub_client import HubClient
from asyncstream._paths import STATES
from asyncstream._retry import RetryPolicy

HUB_URL = "http://hub.test"
API_KEY = "sekrit-key-123"
_RESULTS = re.compile(r"^/api/tasks/(?P<id>[^/]+)/results/$")
_COMPLETE = re.compile(r"^/api/tasks/(?P<id>[^/]+)/complete$")

# Called before a request is served, with the request and its number from 1:
# may stall, raise, or answer instead (return a response).
Intercept = Callable[[httpx.Request, int], Awaitable[httpx.Response | None]]


@dataclass
class FakeHub:
    """Stored batches per task, and a log of what the client sent."""

    batches: dict[str, dict[int, bytes]] = field(default_factory=dict)
    completions: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    intercept: Intercept | None = None
    drop_acks: int = 0  # store the batch, then fail the answer (ack lost)
    started: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **options: Any) -> HubClient:
        options.setdefault("retry_policy", RetryPolicy(initial=0.001, maximum=0.01))
        return HubClient(
            HubSettings(HUB_URL, API_KEY), transport=self.transport(), **options
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.auth.append(request.headers.get("Authorization"))
            if _RESULTS.match(request.url.path):
                self.keys.append(request.headers.get("Idempotency-Key", ""))
                self.bodies.append(request.content)
            if self.intercept is not None:
                answer = await self.intercept(request, self.started)
                if answer is not None:
                    return answer
            return self.serve(request)
        finally:
            self.in_flight -= 1

    def serve(self, request: httpx.Request) -> httpx.Response:
        if match := _RESULTS.match(request.url.path):
            taskid = match["id"]
            key = request.headers["Idempotency-Key"]
            seq = int(key.rpartition(":")[2])
            body = json.loads(request.content)
            assert key == f"{taskid}:{body['seq']}"
            stored = self.batches.setdefault(taskid, {})
            if seq in stored:
                if stored[seq] != request.content:
                    return httpx.Response(409, json={"error": "idempotency_conflict"})
                return httpx.Response(200, json={"accepted": 0, "duplicate": True})
            stored[seq] = request.content
            if self.drop_acks:
                self.drop_acks -= 1
                return httpx.Response(503, headers={"Retry-After": "0"})
            count = sum(len(v) for v in body["items"].values())
            return httpx.Response(200, json={"accepted": count, "duplicate": False})
        if match := _COMPLETE.match(request.url.path):
            taskid = match["id"]
            body = json.loads(request.content)
            present = set(self.batches.get(taskid, {}))
            missing = [s for s in range(body["batches"]) if s not in present]
            if missing:
                return httpx.Response(
                    409,
                    json={
                        "error": "missing_batches",
                        "detail": "m",
                        "missing": missing,
                    },
                )
            self.completions.append({"taskid": taskid, **body})
            return httpx.Response(200, json={"id": taskid, "state": "completed"})
        return httpx.Response(404, json={"detail": "no such endpoint"})

    def summary(self, taskid: str) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for body in self.batches.get(taskid, {}).values():
            for state, items in json.loads(body)["items"].items():
                counts[state] += len(items)
        return counts

    def paths(self, taskid: str) -> list[tuple[str, str]]:
        """(state, path) of every stored result, in seq order."""
        out = []
        for seq in sorted(self.batches.get(taskid, {})):
            for state, items in json.loads(self.batches[taskid][seq])["items"].items():
                out.extend((state, item["path"]) for item in items)
        return out


@dataclass
class FakeTime:
    """A clock that only moves when something sleeps; every sleep is recorded."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds
        await anyio.lowlevel.checkpoint()


def status_503(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(503, json={"detail": "busy"}, headers=headers)
